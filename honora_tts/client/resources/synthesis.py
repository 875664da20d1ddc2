"""Synthesis of one text: a whole result, or a stream of chunks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from honora_tts.client._base_client import new_request_id
from honora_tts.client._deadline import Deadline
from honora_tts.client._exceptions import InvalidResponse
from honora_tts.client._requests import build_request, output_spec, synthesis_params, validated
from honora_tts.client._response_reader import ResponseReader
from honora_tts.client._voice_upload import VoiceUploader
from honora_tts.client.audio_fetch import AudioFetcher
from honora_tts.client.job_runner import JobRunner, JobTiming
from honora_tts.client.results import JobStatus, SynthesisResult, Timings
from honora_tts.client.streaming import SynthesisStream
from honora_tts.protocol import (
    AudioPayload,
    OutputSpec,
    SynthesisParams,
    SynthesisResponse,
)
from honora_tts.redaction import install_redaction

log = install_redaction(logging.getLogger("honora_tts.client"))


class Synthesis:
    """``synthesize`` and ``synthesize_stream`` of :class:`EndpointClient`."""

    def __init__(
        self,
        jobs: JobRunner,
        audio: AudioFetcher,
        voices: VoiceUploader,
        responses: ResponseReader,
    ) -> None:
        self.jobs = jobs
        self.audio = audio
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
            self.jobs, self.audio, self.responses, job_input, request_id, deadline, output.format
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
        audio = self.audio.fetch(
            payload, request_id=request_id, job_id=status.id, deadline=deadline
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
