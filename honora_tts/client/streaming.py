"""Streaming synthesis: audio chunks as the worker produces them, then the whole result.

A streaming worker yields :class:`~honora_tts.protocol.StreamChunk` items: ``chunk`` items carry
16-bit PCM, one ``final`` item carries the response (version, timings, cache facts). RunPod
hands the items out through ``GET /stream/{job_id}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Self

from honora_tts import envelope
from honora_tts.client._deadline import Deadline
from honora_tts.client._exceptions import InvalidResponse
from honora_tts.client.results import AudioChunk, JobStatus, SynthesisResult, Timings
from honora_tts.protocol import AudioFormat, StreamChunk

if TYPE_CHECKING:
    import numpy as np

    from honora_tts.client._response_reader import ResponseReader
    from honora_tts.client.audio_fetch import AudioFetcher
    from honora_tts.client.job_runner import JobRunner


class SynthesisStream:
    """Iterate for :class:`AudioChunk` objects; ``result`` is set once the stream ends.

    Breaking out of the loop (or :meth:`close`) before the end cancels the job.
    """

    def __init__(
        self,
        jobs: JobRunner,
        audio: AudioFetcher,
        responses: ResponseReader,
        job_input: dict[str, Any],
        request_id: str,
        deadline: Deadline,
        format: AudioFormat,
    ) -> None:
        self._jobs = jobs
        self._audio = audio
        self._responses = responses
        self._input = job_input
        self.request_id = request_id
        self._deadline = deadline
        self._format = format
        self.job_id: str | None = None
        self.result: SynthesisResult | None = None
        self.time_to_first_audio_ms: float | None = None
        self._chunks: list[np.ndarray] = []
        self._sample_rate = 24_000
        self._iterator: Iterator[AudioChunk] | None = None

    def __iter__(self) -> Iterator[AudioChunk]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading; a job that has not finished is cancelled."""
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]

    def collect(self) -> SynthesisResult:
        """Read the whole stream and return the result."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result

    def _run(self) -> Iterator[AudioChunk]:
        jobs = self._jobs
        submit, submit_ms = jobs.submit(self._input, self.request_id, self._deadline)
        self.job_id = submit.id
        final: dict[str, Any] | None = None
        last_seq = -1
        polls = 0
        stream = jobs.stream_polls(submit.id, self.request_id, self._deadline)
        try:
            for poll in stream:
                polls += 0 if poll.final else 1
                for item in poll.outputs:
                    decoded = self._item(item)
                    if decoded is None:
                        continue
                    if decoded.type == "final":
                        final = item
                        continue
                    if decoded.seq <= last_seq:
                        continue
                    last_seq = decoded.seq
                    chunk = self._decode(decoded)
                    if self.time_to_first_audio_ms is None:
                        self.time_to_first_audio_ms = self._deadline.elapsed_ms()
                    yield chunk
        finally:
            stream.close()
        status = jobs.status(submit.id, request_id=self.request_id, deadline=self._deadline)
        if status.status == "COMPLETED" and final is not None and not status.output:
            status = JobStatus(
                id=status.id, status=status.status, delay_ms=status.delay_ms,
                execution_ms=status.execution_ms, output=[final], error=status.error,
                worker_id=status.worker_id, raw=status.raw,
            )
        response = self._responses.read(status, self.request_id)
        self.result = self._assemble(response, status, submit_ms, polls)

    def _item(self, item: Any) -> StreamChunk | None:
        try:
            return envelope.decode_stream_item(item)
        except ValueError as exc:
            raise InvalidResponse(
                f"the stream breaks the protocol: {exc}",
                request_id=self.request_id, job_id=self.job_id,
            ) from exc

    def _decode(self, item: StreamChunk) -> AudioChunk:
        from honora_tts import audio

        try:
            samples = audio.from_pcm16(envelope.chunk_pcm16(item))
        except ValueError as exc:
            raise InvalidResponse(
                f"stream chunk {item.seq} is not base64 16-bit PCM: {exc}",
                request_id=self.request_id, job_id=self.job_id,
            ) from exc
        self._sample_rate = item.sample_rate or self._sample_rate
        self._chunks.append(samples)
        return AudioChunk(
            seq=item.seq, samples=samples, sample_rate=self._sample_rate,
            received_ms=self._deadline.elapsed_ms(),
        )

    def _assemble(
        self, response: Any, status: JobStatus, submit_ms: float, polls: int
    ) -> SynthesisResult:
        from honora_tts import audio

        if response.audio is not None:
            data = self._audio.fetch(
                response.audio, request_id=self.request_id, job_id=status.id,
                deadline=self._deadline,
            )
            fmt, rate, duration = (
                response.audio.format, response.audio.sample_rate, response.audio.duration_s
            )
        else:
            import numpy as np

            samples = (
                np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
            )
            data = audio.encode(samples, self._sample_rate, self._format)
            fmt, rate = self._format, self._sample_rate
            duration = audio.duration_s(samples, self._sample_rate)
        return SynthesisResult(
            audio=data, format=fmt, sample_rate=rate, duration_s=round(duration, 4),
            request_id=self.request_id, job_id=status.id,
            worker_id=status.worker_id or response.version.worker_id,
            version=response.version,
            timings=Timings(
                client_ms=self._deadline.elapsed_ms(), delay_ms=status.delay_ms,
                execution_ms=status.execution_ms, submit_ms=submit_ms, polls=polls,
                stages=response.timings, time_to_first_audio_ms=self.time_to_first_audio_ms,
            ),
            cache=response.cache, audio_sha256=hashlib.sha256(data).hexdigest(),
            language=response.language, text_chars=response.text_chars, pieces=response.pieces,
        )
