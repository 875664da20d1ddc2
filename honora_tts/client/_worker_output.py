"""Reading a finished job: the worker's response, its errors in every format they arrive in, and
the checks that name a stale worker or a crossed answer.

Formats handled:

- plain worker, success: ``output`` is the response object.
- plain worker, failure: ``error`` is ``{"code", "message", "field"}`` (or its JSON text, or its
  Python repr) and ``output`` holds the rest of the response (version, request_id).
- streaming worker: ``output`` is the list of yielded items; the ``final`` item holds the
  response. A failure arrives as ``error`` = JSON text of the structured error with
  ``request_id`` and ``version``.
- a handler exception: ``error`` = JSON text with ``error_type``/``error_message``.
- the batch-only worker (handler v1): ``error`` = "No sections provided", no version.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from honora_tts.client._constants import STALE_SIGNATURE
from honora_tts.client._exceptions import (
    InvalidResponse,
    JobCancelled,
    JobFailed,
    JobTimedOut,
    RequestIdMismatch,
    StaleWorkerError,
)
from honora_tts.client.results import JobStatus
from honora_tts.protocol import SynthesisResponse, VersionRecord

_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class WorkerErrorInfo:
    """A worker error, normalised."""

    code: str
    message: str
    field: str | None = None
    request_id: str | None = None
    version: dict[str, Any] | None = None


def parse_worker_error(raw: Any) -> WorkerErrorInfo | None:
    """Normalise ``error`` from a job object, whatever shape it came in."""
    if raw is None or raw == "" or raw == {}:
        return None
    value = raw
    if isinstance(raw, str):
        value = _structured(raw)
    if isinstance(value, dict):
        inner = value.get("error")
        if isinstance(inner, (dict, str)) and "code" not in value and "error_type" not in value:
            nested = parse_worker_error(inner)
            if nested is not None:
                return WorkerErrorInfo(
                    code=nested.code, message=nested.message, field=nested.field,
                    request_id=nested.request_id or _text(value.get("request_id")),
                    version=nested.version or _dict(value.get("version")),
                )
        if "code" in value or "message" in value:
            return WorkerErrorInfo(
                code=str(value.get("code") or "worker_error"),
                message=_clip(str(value.get("message") or value)),
                field=_text(value.get("field")),
                request_id=_text(value.get("request_id")),
                version=_dict(value.get("version")),
            )
        if "error_type" in value or "error_message" in value:
            return WorkerErrorInfo(
                code="handler_exception",
                message=_clip(f"{value.get('error_type', '')}: {value.get('error_message', '')}"
                              .strip(": ")),
            )
        return WorkerErrorInfo(code="worker_error", message=_clip(json.dumps(value)[:1000]))
    return WorkerErrorInfo(code="worker_error", message=_clip(str(raw)))


def _structured(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return text
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def unwrap_response(output: Any) -> dict[str, Any] | None:
    """The response object inside ``output`` (plain dict, or a streaming worker's final item)."""
    if isinstance(output, dict):
        if output.get("type") == "final" and isinstance(output.get("response"), dict):
            return output["response"]
        return output
    if isinstance(output, list):
        for item in reversed(output):
            if isinstance(item, dict) and item.get("type") == "final":
                response = item.get("response")
                return response if isinstance(response, dict) else None
    return None


def stream_chunks(output: Any) -> list[dict[str, Any]]:
    """The ``chunk`` items of a streaming worker's aggregated output."""
    if not isinstance(output, list):
        return []
    return [i for i in output if isinstance(i, dict) and i.get("type") == "chunk"]


def _mentions_stale_signature(value: Any) -> bool:
    if isinstance(value, str):
        return STALE_SIGNATURE.lower() in value.lower()
    if isinstance(value, dict):
        return any(_mentions_stale_signature(v) for k, v in value.items() if k != "audio")
    if isinstance(value, list):
        return any(_mentions_stale_signature(v) for v in value[:50])
    return False


def _version(raw: Any) -> VersionRecord | None:
    if not isinstance(raw, dict):
        return None
    try:
        return VersionRecord.model_validate(raw)
    except ValidationError:
        return None


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


def interpret(
    job: JobStatus,
    *,
    request_id: str,
    min_handler_version: int,
) -> SynthesisResponse:
    """The worker's response for a final job, or the typed error that explains the job."""
    ids = {"request_id": request_id, "job_id": job.id or None}
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
    error = parse_worker_error(job.error)
    not_a_response = job.status != "COMPLETED" or unwrap_response(job.output) is None
    if _mentions_stale_signature(job.error) or (
        not_a_response and _mentions_stale_signature(job.output)
    ):
        raise StaleWorkerError(
            f'"{STALE_SIGNATURE}" (the batch-only worker, handler version 1)',
            worker_id=job.worker_id, min_handler_version=min_handler_version,
            status=job.status, **ids,
        )
    response = unwrap_response(job.output)
    if job.status == "FAILED":
        raw_version = (response or {}).get("version") or (error.version if error else None)
        version = _version(raw_version)
        worker_id = job.worker_id or (version.worker_id if version else None)
        if version is not None:
            check_version(version, min_handler_version=min_handler_version,
                          worker_id=worker_id, **ids)
        echoed = (response or {}).get("request_id") or (error.request_id if error else None)
        if version is not None and echoed and echoed != request_id:
            raise RequestIdMismatch(
                f"the failed job answers request {echoed!r}, not the one sent", **ids
            )
        if error is None:
            error = WorkerErrorInfo(code="worker_error", message="the job failed without detail")
        if version is None and error.code == "worker_error":
            error = WorkerErrorInfo(
                code="worker_lost",
                message=f"{error.message} (no answer from the handler: the worker may have "
                "crashed or been stopped)",
            )
        raise JobFailed(error.code, error.message, field=error.field, version=version,
                        worker_id=worker_id, status=job.status, **ids)
    if job.status != "COMPLETED":
        raise InvalidResponse(f"the job is not finished (status {job.status})", **ids)
    if response is None:
        raise StaleWorkerError(
            f"output that is not a honora response ({type(job.output).__name__})",
            worker_id=job.worker_id, min_handler_version=min_handler_version,
            status=job.status, **ids,
        )
    version = _version(response.get("version"))
    worker_id = job.worker_id or (version.worker_id if version else None)
    check_version(version, min_handler_version=min_handler_version, worker_id=worker_id, **ids)
    echoed = response.get("request_id")
    if echoed != request_id:
        raise RequestIdMismatch(
            f"the response answers request {echoed!r}, not the one sent. Another job's result "
            "came back: check that no proxy or cache sits between the client and the endpoint.",
            **ids,
        )
    try:
        parsed = SynthesisResponse.model_validate(response)
    except ValidationError as exc:
        raise InvalidResponse(
            f"the worker's response does not match the protocol: {exc.errors()[0]['msg']}",
            **ids,
        ) from exc
    if parsed.error is not None:
        raise JobFailed(parsed.error.code.value, parsed.error.message, field=parsed.error.field,
                        version=parsed.version, worker_id=worker_id, status=job.status, **ids)
    return parsed
