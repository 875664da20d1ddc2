"""Synthesis of one text: a whole result (:class:`Synthesis`), or a stream of chunks
(:class:`SynthesisStream`), and the audio of an answer (:func:`fetch_audio`).

A streaming worker yields :class:`~honora_tts.protocol.StreamChunk` items: ``chunk`` items carry
16-bit PCM, one ``final`` item carries the response (version, timings, cache facts). RunPod
hands the items out through ``GET /stream/{job_id}``.

Audio comes base64 inside the answer, or as a URL fetched through the transport
(:meth:`BaseClient.download`: its retry policy, the deadline, and the cap on decompressed
bytes); either way the bytes are checked against the worker's sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Self

from honora_tts import envelope
from honora_tts.client._base_client import BaseClient, Deadline, new_request_id
from honora_tts.client._exceptions import InvalidResponse, ResponseTooLarge
from honora_tts.client._requests import build_request, output_spec, synthesis_params, validated
from honora_tts.client._response_reader import ResponseReader
from honora_tts.client._voice_upload import VoiceUploader
from honora_tts.client.job_runner import JobRunner, JobTiming
from honora_tts.client.results import AudioChunk, JobStatus, SynthesisResult, Timings
from honora_tts.protocol import (
    AudioFormat,
    AudioPayload,
    OutputSpec,
    StreamChunk,
    SynthesisParams,
    SynthesisResponse,
)
from honora_tts.redaction import install_redaction

if TYPE_CHECKING:
    import numpy as np

log = install_redaction(logging.getLogger("honora_tts.client"))


def fetch_audio(
    transport: BaseClient, payload: AudioPayload, *, request_id: str, job_id: str,
    deadline: Deadline,
) -> bytes:
    """The audio bytes of ``payload``; raises :class:`InvalidResponse` when they cannot be read
    or do not match the worker's sha256, :class:`ResponseTooLarge` past the client's cap."""
    ids = {"request_id": request_id, "job_id": job_id}
    if payload.delivery == "base64":
        text = payload.base64 or ""
        limit = transport.max_response_bytes
        if len(text) // 4 * 3 > limit:
            raise ResponseTooLarge("the base64 audio", limit, **ids)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse(f"the audio is not valid base64: {exc}", **ids) from exc
    elif payload.url:
        data = transport.download(
            payload.url, deadline=deadline, request_id=request_id, job_id=job_id
        )
    else:
        raise InvalidResponse("the audio payload has neither base64 nor a URL", **ids)
    if payload.sha256 and hashlib.sha256(data).hexdigest() != payload.sha256:
        raise InvalidResponse(
            f"the audio's sha256 does not match the worker's ({len(data)} bytes received, "
            f"{payload.bytes} sent): it was damaged on the way. Send the request again.",
            **ids,
        )
    return data


class Synthesis:
    """``synthesize`` and ``synthesize_stream`` of :class:`EndpointClient`."""

    def __init__(
        self, jobs: JobRunner, voices: VoiceUploader, responses: ResponseReader
    ) -> None:
        self.jobs = jobs
        self.voices = voices
        self.responses = responses

    def synthesize(
        self,
        text: str,
        voice: Any = None,
        language: str = "en",
        *,
        voice_sha256: str | None = None,
        format: str = "wav",
        sample_rate: int | None = None,
        delivery: str = "auto",
        params: SynthesisParams | Mapping[str, Any] | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> SynthesisResult:
        """One job for ``text``; see :meth:`EndpointClient.synthesize`."""
        deadline = self.jobs.deadline(deadline_s)
        request_id = request_id or new_request_id()
        job_input = self._job_input(
            request_id, text, voice, voice_sha256, language,
            output_spec(format, sample_rate, delivery), params,
        )
        status, timing = self.jobs.execute(job_input, request_id, deadline)
        response = self.responses.read(status, request_id)
        if response.audio is None:
            raise InvalidResponse("the worker answered without audio", request_id=request_id,
                                  job_id=status.id)
        result = self.result(
            response, response.audio, status, timing, deadline, request_id,
            timings=response.timings, cache=response.cache, text_chars=response.text_chars,
            pieces=response.pieces,
        )
        log.info(
            "request %s job %s: %.2fs of %s audio from worker %s in %.0f ms "
            "(queue %s ms, execution %s ms)", request_id, status.id, result.duration_s,
            result.format, result.worker_id, result.timings.client_ms, status.delay_ms,
            status.execution_ms,
        )
        return result

    def synthesize_stream(
        self,
        text: str,
        voice: Any = None,
        language: str = "en",
        *,
        voice_sha256: str | None = None,
        format: str = "wav",
        params: SynthesisParams | Mapping[str, Any] | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> SynthesisStream:
        """A streaming job for ``text``; see :meth:`EndpointClient.synthesize_stream`."""
        deadline = self.jobs.deadline(deadline_s)
        request_id = request_id or new_request_id()
        output = output_spec(format, None, "base64")
        job_input = self._job_input(
            request_id, text, voice, voice_sha256, language, output, params, stream=True,
        )
        return SynthesisStream(
            self.jobs, self.responses, job_input, request_id, deadline, output.format
        )

    def _job_input(
        self,
        request_id: str,
        text: str,
        voice: Any,
        voice_sha256: str | None,
        language: str,
        output: OutputSpec,
        params: SynthesisParams | Mapping[str, Any] | None,
        *,
        stream: bool = False,
    ) -> dict[str, Any]:
        """The validated job input of a request (its voice uploaded once, by content)."""
        reference = self.voices.resolve(voice, voice_sha256)
        request = build_request(
            request_id=request_id, text=text, voice_url=reference.url,
            voice_sha256=reference.sha256, language=language, stream=stream, output=output,
            params=synthesis_params(params),
        )
        return validated(request.to_input(), request_id)

    def result(
        self,
        response: SynthesisResponse,
        payload: AudioPayload,
        status: JobStatus,
        timing: JobTiming,
        deadline: Deadline,
        request_id: str,
        **details: Any,
    ) -> SynthesisResult:
        """A :class:`SynthesisResult` for one audio of ``response`` (fetched and verified)."""
        audio = fetch_audio(
            self.jobs.transport, payload, request_id=request_id, job_id=status.id,
            deadline=deadline,
        )
        return SynthesisResult(
            audio=audio,
            format=payload.format,
            sample_rate=payload.sample_rate,
            duration_s=payload.duration_s,
            request_id=request_id,
            job_id=status.id,
            worker_id=status.worker_id or response.version.worker_id,
            version=response.version,
            timings=Timings(
                client_ms=deadline.elapsed_ms(), delay_ms=status.delay_ms,
                execution_ms=status.execution_ms, submit_ms=timing.submit_ms,
                polls=timing.polls, stages=details.pop("timings", None),
            ),
            audio_sha256=payload.sha256,
            language=response.language,
            **details,
        )


class SynthesisStream:
    """Iterate for :class:`AudioChunk` objects; ``result`` is set once the stream ends.

    Breaking out of the loop (or :meth:`close`) before the end cancels the job.
    """

    def __init__(
        self,
        jobs: JobRunner,
        responses: ResponseReader,
        job_input: dict[str, Any],
        request_id: str,
        deadline: Deadline,
        format: AudioFormat,
    ) -> None:
        self._jobs = jobs
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
            data = fetch_audio(
                self._jobs.transport, response.audio, request_id=self.request_id,
                job_id=status.id, deadline=self._deadline,
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
