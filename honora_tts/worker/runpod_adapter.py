"""RunPod jobs in, service calls, RunPod results out.

:class:`RunPodAdapter` holds the worker's one :class:`~honora_tts.synthesis.SynthesisService`
and its two blocking handlers; :mod:`honora_tts.worker.start` registers one of them, run in the
worker's job pool (:mod:`honora_tts.worker.threaded_handlers`):

- :meth:`~RunPodAdapter.handle`: returns the response object (encoded by
  :mod:`honora_tts.envelope`).
- :meth:`~RunPodAdapter.handle_stream` (``HONORA_STREAMING=1``): a generator, which RunPod
  needs in order to stream. RunPod then turns every job's output into the list of yielded
  items, so a streaming worker is a separate deployment of the same image.

Both take the job's :class:`~honora_tts.cancellation.CancelToken` (set when RunPod stops the
job). Neither raises: every failure becomes a structured error, and the worker goes on to the
next job. Every job is counted once, when it ends (:meth:`RunPodAdapter._job`), whichever
handler ran it and however it ended.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from honora_tts import audio
from honora_tts.cancellation import CancelToken
from honora_tts.envelope import chunk_item, final_item, job_answer, stream_error_item
from honora_tts.protocol import (
    ErrorCode,
    ErrorInfo,
    ParsedRequest,
    SynthesisResponse,
    WorkerError,
    parse_request,
)
from honora_tts.synthesis import StreamedChunk, SynthesisService
from honora_tts.version import version_record

log = logging.getLogger("honora_tts.worker")


@dataclass
class _Job:
    """One job while it runs: its ids and, once known, whether it failed."""

    job_id: str | None
    request_id: str
    raw: Any
    cancel: CancelToken
    failed: bool | None = None


class RunPodAdapter:
    """Turns RunPod jobs into :class:`SynthesisService` calls and counts them."""

    def __init__(
        self, service: SynthesisService, *, streaming: bool = False, concurrency: int = 1
    ) -> None:
        self.service = service
        self.streaming = streaming
        #: Jobs the worker holds at once (``HONORA_CONCURRENCY``, RunPod's
        #: ``concurrency_modifier``); their decoding shares the model's batch.
        self.concurrency = concurrency
        self.started_at = time.time()
        self.jobs_served = 0
        self.jobs_failed = 0
        self.jobs_cancelled = 0
        self._counter_lock = threading.Lock()

    # ------------------------------------------------------------------ handlers

    def handle(self, job: dict[str, Any], cancel: CancelToken | None = None) -> dict[str, Any]:
        """A job's answer as a JSON-ready dict; never raises. ``cancel`` stops its work."""
        with self._job(job, cancel) as current:
            response = self._respond(current, streaming=False)
            current.failed = response.error is not None
            return job_answer(response)

    def handle_stream(self, job: dict[str, Any],
                      cancel: CancelToken | None = None) -> Generator[dict[str, Any], None, None]:
        """A streaming worker's items; never raises. A streamed request yields ``chunk`` items
        then the ``final`` one; any other request one ``final`` item. A failure adds the
        ``error`` item that fails the job. ``cancel`` stops its work."""
        with self._job(job, cancel) as current:
            parsed = parse_request(current.raw)
            if isinstance(parsed, ParsedRequest) and parsed.request.stream and parsed.request.text:
                response = yield from self._stream(current, parsed)
            else:
                response = self._respond(current, streaming=True, parsed=parsed)
                yield final_item(response)
            current.failed = response.error is not None
            if response.error is not None:
                yield stream_error_item(response)

    # ------------------------------------------------------------------ health and counters

    def health_response(self, job_id: str | None, request_id: str) -> SynthesisResponse:
        """The ``health`` action's answer: the service's facts and this worker's counters."""
        service = self.service
        with self._counter_lock:
            served, failed = self.jobs_served, self.jobs_failed
            cancelled = self.jobs_cancelled
        facts = service.health()
        health = {
            "model_loaded": facts["model_loaded"],
            "model_error": facts["model_error"],
            "model_load_ms": facts["model_load_ms"],
            "cold_start": facts["cold_start"],
            "uptime_s": round(time.time() - self.started_at, 1),
            "jobs_served": served,
            "jobs_failed": failed,
            "jobs_cancelled": cancelled,
            "streaming": self.streaming,
            "concurrency": self.concurrency,
            "voice_cache": facts["voice_cache"],
            "latent_cache": facts["latent_cache"],
            "batching": facts["batching"],
        }
        loaded = service.model_loaded
        return SynthesisResponse(
            request_id=request_id, job_id=job_id,
            status="healthy" if loaded else "error",
            version=version_record(), health=health,
            error=None if loaded else ErrorInfo(
                code=ErrorCode.MODEL_NOT_READY, message=str(service.model_error)
            ),
        )

    @contextmanager
    def _job(self, job: Any, cancel: CancelToken | None) -> Iterator[_Job]:
        """Logging context and the one place a job is counted: served, and failed unless it
        ended with an answer that is not an error (a stream abandoned midway counts as
        failed), and cancelled when its token was."""
        job_id, raw = _job_parts(job)
        current = _Job(job_id=job_id, request_id=_request_id(raw, job_id), raw=raw,
                       cancel=cancel or CancelToken())
        started = time.perf_counter()
        log.info("request %s job %s: started", current.request_id, job_id)
        try:
            yield current
        finally:
            with self._counter_lock:
                self.jobs_served += 1
                self.jobs_failed += int(current.failed is not False)
                self.jobs_cancelled += int(current.cancel.cancelled)
            log.info(
                "request %s job %s: finished in %.0f ms",
                current.request_id, job_id, (time.perf_counter() - started) * 1000,
            )

    # ------------------------------------------------------------------ answers

    def _respond(
        self,
        current: _Job,
        *,
        streaming: bool,
        parsed: ParsedRequest | ErrorInfo | None = None,
    ) -> SynthesisResponse:
        job_id, request_id = current.job_id, current.request_id
        try:
            parsed = parse_request(current.raw) if parsed is None else parsed
            if isinstance(parsed, ErrorInfo):
                return _error_response(job_id, request_id, parsed)
            request = parsed.request
            if request.action == "health":
                return self.health_response(job_id, request_id)
            if request.stream and not streaming:
                raise WorkerError(
                    ErrorCode.STREAMING_UNAVAILABLE,
                    "this worker is not a streaming deployment (HONORA_STREAMING=1); send "
                    "stream=false or use the streaming endpoint",
                    field="stream",
                )
            return self.service.synthesize(parsed, request_id=request_id, job_id=job_id,
                                           cancel=current.cancel)
        except WorkerError as exc:
            return _error_response(job_id, request_id, exc.to_info())
        except Exception as exc:  # noqa: BLE001 - the worker must answer, not crash
            log.error("unexpected failure: %s\n%s", exc, traceback.format_exc())
            return _error_response(
                job_id,
                request_id,
                ErrorInfo(code=ErrorCode.INTERNAL_ERROR, message=f"{type(exc).__name__}: {exc}"),
            )

    def _stream(
        self, current: _Job, parsed: ParsedRequest
    ) -> Generator[dict[str, Any], None, SynthesisResponse]:
        """Chunk items, then the final item; returns the response (its ``error`` set when the
        stream failed)."""
        job_id, request_id = current.job_id, current.request_id
        response: SynthesisResponse | None = None
        try:
            for event in self.service.stream(parsed.request, request_id=request_id, job_id=job_id,
                                             cancel=current.cancel):
                if isinstance(event, StreamedChunk):
                    yield chunk_item(request_id, event.seq, event.sample_rate,
                                     audio.to_pcm16(event.samples), event.elapsed_ms)
                else:
                    response = event
        except Exception as exc:  # noqa: BLE001 - the worker must answer, not crash
            if isinstance(exc, WorkerError):
                info = exc.to_info()
            else:
                log.error("stream failed: %s\n%s", exc, traceback.format_exc())
                info = ErrorInfo(code=ErrorCode.SYNTHESIS_FAILED,
                                 message=f"{type(exc).__name__}: {exc}")
            response = _error_response(job_id, request_id, info)
        if response is None:
            response = _error_response(job_id, request_id, ErrorInfo(
                code=ErrorCode.INTERNAL_ERROR, message="the stream ended without a response"
            ))
        yield final_item(response)
        return response


def _error_response(job_id: str | None, request_id: str, info: ErrorInfo) -> SynthesisResponse:
    log.warning("request failed: %s (%s) %s", info.code.value, info.field or "-", info.message)
    return SynthesisResponse(
        request_id=request_id, job_id=job_id, status="error", version=version_record(),
        error=info,
    )


def _job_parts(job: Any) -> tuple[str | None, Any]:
    if not isinstance(job, dict):
        return None, None
    job_id = job.get("id")
    return (str(job_id) if job_id is not None else None), job.get("input")


def _request_id(raw: Any, job_id: str | None) -> str:
    if isinstance(raw, dict):
        value = raw.get("request_id")
        if isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable():
            return value
    return f"job-{job_id}" if job_id else f"req-{uuid.uuid4().hex[:16]}"
