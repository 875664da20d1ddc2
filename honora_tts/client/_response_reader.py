"""The client's finished-job decision, in one place: a final job (its RunPod state, ``output``
and ``error``, decoded by :mod:`honora_tts.envelope`) becomes the worker's
:class:`~honora_tts.protocol.SynthesisResponse`, or the typed error that explains it.

In order: cancelled and timed-out jobs; the batch-only worker's "No sections provided"
(stale); a failed job (its worker's structured error, with the version and request-id checks
when the worker answered at all; ``worker_lost`` when nothing did); a completed job whose
output is not a honora response (stale), lacks a current version record (stale), answers
another request (mismatch) or breaks the protocol (invalid); else the response, unless it
carries an error of its own.
"""

from __future__ import annotations

from typing import Any

from honora_tts import envelope
from honora_tts.client._exceptions import (
    InvalidResponse,
    JobCancelled,
    JobFailed,
    JobTimedOut,
    RequestIdMismatch,
    StaleWorkerError,
)
from honora_tts.client.results import JobStatus
from honora_tts.protocol import HANDLER_VERSION, SynthesisResponse, VersionRecord


def check_version(
    version: VersionRecord | None,
    *,
    min_handler_version: int,
    worker_id: str | None,
    request_id: str | None,
    job_id: str | None,
) -> VersionRecord:
    """The version record, or StaleWorkerError when it is missing or too old."""
    if version is None:
        raise StaleWorkerError(
            "a response without a version record",
            worker_id=worker_id, min_handler_version=min_handler_version,
            request_id=request_id, job_id=job_id,
        )
    if version.handler_version < min_handler_version:
        raise StaleWorkerError(
            f"handler version {version.handler_version} (git {version.git_sha[:12]}, built "
            f"{version.build_time}); this client needs at least {min_handler_version}",
            version=version, worker_id=worker_id or version.worker_id,
            min_handler_version=min_handler_version, request_id=request_id, job_id=job_id,
        )
    return version


class ResponseReader:
    """Reads finished jobs; ``min_handler_version``: older workers count as stale."""

    def __init__(self, min_handler_version: int = HANDLER_VERSION) -> None:
        self.min_handler_version = min_handler_version

    def read(
        self, job: JobStatus, request_id: str, *, min_handler_version: int | None = None
    ) -> SynthesisResponse:
        """The worker's response for a final ``job``, or the typed error that explains it
        (:class:`JobFailed`, :class:`StaleWorkerError`, :class:`JobCancelled`,
        :class:`JobTimedOut`, :class:`RequestIdMismatch`, :class:`InvalidResponse`)."""
        minimum = self.min_handler_version if min_handler_version is None else min_handler_version
        ids: dict[str, Any] = {"request_id": request_id, "job_id": job.id or None}
        if job.status == "CANCELLED":
            raise JobCancelled(
                "the job was cancelled before it finished (from the RunPod console, another "
                "client, or a queue purge). Send it again if it is still wanted.",
                status=job.status, **ids,
            )
        if job.status == "TIMED_OUT":
            raise JobTimedOut(
                "RunPod stopped the job at its execution timeout. Raise the deadline (policy "
                "executionTimeout) or send less text per job.",
                status=job.status, **ids,
            )
        response = envelope.response_of(job.output)
        not_a_response = job.status != "COMPLETED" or response is None
        if envelope.mentions_stale_signature(job.error) or (
            not_a_response and envelope.mentions_stale_signature(job.output)
        ):
            raise StaleWorkerError(
                f'"{envelope.STALE_SIGNATURE}" (the batch-only worker, handler version 1)',
                worker_id=job.worker_id, min_handler_version=minimum, status=job.status, **ids,
            )
        if job.status == "FAILED":
            raise self._failure(job, response, minimum, request_id)
        if job.status != "COMPLETED":
            raise InvalidResponse(f"the job is not finished (status {job.status})", **ids)
        if response is None:
            raise StaleWorkerError(
                f"output that is not a honora response ({type(job.output).__name__})",
                worker_id=job.worker_id, min_handler_version=minimum, status=job.status, **ids,
            )
        version = envelope.version_of(response.get("version"))
        worker_id = job.worker_id or (version.worker_id if version else None)
        check_version(version, min_handler_version=minimum, worker_id=worker_id, **ids)
        echoed = response.get("request_id")
        if echoed != request_id:
            raise RequestIdMismatch(
                f"the response answers request {echoed!r}, not the one sent. Another job's "
                "result came back: check that no proxy or cache sits between the client and "
                "the endpoint.",
                **ids,
            )
        try:
            parsed = envelope.decode_response(response)
        except ValueError as exc:
            raise InvalidResponse(
                f"the worker's response does not match the protocol: {exc}", **ids
            ) from exc
        if parsed.error is not None:
            raise JobFailed(
                parsed.error.code.value, parsed.error.message, field=parsed.error.field,
                version=parsed.version, worker_id=worker_id, status=job.status, **ids,
            )
        return parsed

    @staticmethod
    def _failure(
        job: JobStatus, response: dict[str, Any] | None, minimum: int, request_id: str
    ) -> JobFailed:
        """Why a FAILED job failed: the worker's structured error when it answered (after the
        version and request-id checks), else what RunPod or localpod recorded."""
        ids: dict[str, Any] = {"request_id": request_id, "job_id": job.id or None}
        error = envelope.decode_error(job.error)
        raw_version = (response or {}).get("version") or (error.version if error else None)
        version = envelope.version_of(raw_version)
        worker_id = job.worker_id or (version.worker_id if version else None)
        if version is not None:
            check_version(version, min_handler_version=minimum, worker_id=worker_id, **ids)
        echoed = (response or {}).get("request_id") or (error.request_id if error else None)
        if version is not None and echoed and echoed != request_id:
            raise RequestIdMismatch(
                f"the failed job answers request {echoed!r}, not the one sent", **ids
            )
        if error is None:
            error = envelope.WorkerFailure(
                code="worker_error", message="the job failed without detail"
            )
        if version is None and error.code == "worker_error":
            error = envelope.WorkerFailure(
                code="worker_lost",
                message=f"{error.message} (no answer from the handler: the worker may have "
                "crashed or been stopped)",
            )
        return JobFailed(error.code, error.message, field=error.field, version=version,
                         worker_id=worker_id, status=job.status, **ids)
