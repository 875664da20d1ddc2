"""Typed errors of the endpoint client. Each message says what happened and what to do.

Every message passes through :func:`~honora_tts.redaction.redact`, so the API key never
appears in one, whatever was interpolated into it.
"""

from __future__ import annotations

from typing import Any

from honora_tts.protocol import VersionRecord
from honora_tts.redaction import redact


class HonoraClientError(Exception):
    """Base of every client error. ``request_id`` and ``job_id`` name the call when known."""

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.job_id = job_id
        ids = [f"{name}={value}" for name, value in
               (("request_id", request_id), ("job_id", job_id)) if value]
        text = f"{message} [{', '.join(ids)}]" if ids else message
        self.message = redact(text)
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(HonoraClientError):
    """The client is not configured (endpoint id, API key, base URL)."""


class EndpointNotConfigured(ConfigurationError):
    """No endpoint was named: ``RUNPOD_ENDPOINT_ID`` is unset and no ``endpoint`` was given."""


class InvalidRequest(HonoraClientError, ValueError):
    """The request was refused by the client before anything was sent. ``code`` is the
    protocol's error code when the worker would have refused it the same way."""

    def __init__(self, message: str, *, code: str | None = None, **ids: Any) -> None:
        self.code = code
        super().__init__(message, **ids)


class PayloadTooLarge(InvalidRequest):
    """The JSON body exceeds RunPod's limit (checked before sending) or RunPod answered 413."""

    def __init__(self, size: int | None, limit: int, route: str, **ids: Any) -> None:
        self.size = size
        self.limit = limit
        self.route = route
        measured = f"{size:,} bytes" if size is not None else "the request"
        super().__init__(
            code="payload_too_large",
            message=f"{measured} exceeds the {limit:,}-byte limit of {route}. Send less text "
            "per job (split into several jobs) and never embed audio: upload voices to a voice "
            "store and send voice_url.",
            **ids,
        )


class APIError(HonoraClientError):
    """An HTTP-level failure talking to the endpoint. ``status_code`` is None without a response."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        **ids: Any,
    ) -> None:
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        super().__init__(message, **ids)


class AuthenticationError(APIError):
    """401/403: the API key is missing, wrong or lacks access to the endpoint."""


class RateLimited(APIError):
    """429 after the retries were spent (or with a Retry-After longer than the client waits)."""


class NotFound(APIError):
    """404: the endpoint id or the job id is unknown (a job's result expires after 30 min)."""


class EndpointUnavailable(APIError):
    """The endpoint could not be reached or answered 5xx, after the retries that were safe."""


class SubmissionUncertain(EndpointUnavailable):
    """A job submission was sent but no answer came back: the job may exist and run.

    It is not re-sent automatically, because that could start a second GPU job.
    """


class VoiceUploadFailed(HonoraClientError):
    """The voice file could not be put in the voice store (see ``honora_tts.voices``)."""


class InvalidResponse(HonoraClientError):
    """The endpoint or the worker answered something the client cannot read."""


class ResponseTooLarge(InvalidResponse):
    """A response body (an API answer or a downloaded audio file) grew past the client's cap on
    decompressed bytes; the client stopped reading it."""

    def __init__(self, what: str, limit: int, **ids: Any) -> None:
        self.limit = limit
        super().__init__(
            f"{what} is larger than the client's cap of {limit:,} bytes (after "
            "decompression); the client stopped reading it. A compressed answer that inflates "
            "this much is a decompression bomb or a misbehaving server. If the endpoint "
            "legitimately sends this much, raise the cap: "
            f"EndpointClient(..., max_response_bytes=N) (now {limit:,}).",
            **ids,
        )


class RequestIdMismatch(InvalidResponse):
    """The response echoes another request id than the one sent."""


class JobError(HonoraClientError):
    """Base of the errors about a job that was accepted by the endpoint."""

    def __init__(self, message: str, *, status: str | None = None, **ids: Any) -> None:
        self.status = status
        super().__init__(message, **ids)


_RESEND = "The job is over, so sending it again cannot duplicate work"
_JOB_FAILED_ADVICE = {
    "worker_died": f"The worker process died (crash, out of memory, or killed). {_RESEND}",
    "worker_lost": f"{_RESEND}",
    "result_lost": f"The worker never reported a result. {_RESEND}",
    "execution_timeout": "Raise the deadline (policy executionTimeout) or send less text",
    "voice_fetch_failed": "Check that the voice store's URL is reachable from the workers",
    "voice_checksum_mismatch": "The stored voice changed: upload it again",
    "model_not_ready": "The worker's model did not load: check the image and its logs",
    "handler_exception": "The handler raised: see the worker's logs for the traceback",
}


class JobFailed(JobError):
    """The worker reported a failure. ``code`` is the worker's stable error code when it sent one
    (see :class:`honora_tts.protocol.ErrorCode`), else a client-side description such as
    ``worker_error``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        version: VersionRecord | None = None,
        worker_id: str | None = None,
        **kw: Any,
    ) -> None:
        self.code = code
        self.worker_message = message
        self.field = field
        self.version = version
        self.worker_id = worker_id
        where = f" (field {field})" if field else ""
        advice = _JOB_FAILED_ADVICE.get(code, "")
        super().__init__(
            f"job failed: {code}{where}: {message}{'. ' + advice if advice else ''}", **kw
        )


class JobTimedOut(JobError):
    """The job did not finish before its deadline (client side) or its execution timeout
    (RunPod's ``TIMED_OUT``). ``cancelled`` says whether the client cancelled it."""

    def __init__(self, message: str, *, cancelled: bool = False, **kw: Any) -> None:
        self.cancelled = cancelled
        super().__init__(message, **kw)


class JobCancelled(JobError):
    """The job was cancelled by someone else (RunPod console, another client, purge)."""


class StaleWorkerError(JobError):
    """The answering worker runs an older build than this client needs.

    ``seen`` says what gave it away: no version record, a handler version below the minimum, or
    the batch-only worker's "No sections provided".
    """

    def __init__(
        self,
        seen: str,
        *,
        version: VersionRecord | None = None,
        worker_id: str | None = None,
        min_handler_version: int | None = None,
        **kw: Any,
    ) -> None:
        self.seen = seen
        self.version = version
        self.worker_id = worker_id
        self.min_handler_version = min_handler_version
        who = f"worker {worker_id}" if worker_id else "a worker"
        super().__init__(
            f"stale worker: {who} answered with {seen}. It runs an old image. Fix: rebuild and "
            "push the image with a unique tag (not :latest), point the endpoint's template at "
            "that tag, then restart the workers (scale to 0 and back, or 'Refresh workers'); "
            "check with `honora-tts census`.",
            **kw,
        )
