"""HTTP transport of the endpoint client: auth, deadlines, bounded bodies, error mapping, retries.

One :class:`BaseClient` serves any base URL (RunPod's job API, its management API, a worker
answering HTTP itself) with the same guarantees:

- **One wall-clock deadline** per call (:class:`Deadline`): every attempt, connect, TLS, headers
  and body together, ends by the caller's deadline (a job's, or :data:`CALL_DEADLINE_S` for a
  call without one), and no single attempt outlasts its connect + write + read timeouts
  together, however slowly a server drips its answer (:mod:`honora_tts.deadline_backend`).
- **Bounded bodies**: at most ``max_response_bytes`` read from any answer or download, after
  decompression (:func:`read_body`), and JSON nested at most :data:`C.MAX_ANSWER_DEPTH` deep
  (:mod:`honora_tts.bounded_json`): anything else is :class:`InvalidResponse`.

Retries follow one rule: re-send only what cannot duplicate work.

- Reads (``GET /status``, ``/stream``, ``/health``) and idempotent posts (``/cancel``) are
  retried on connection failures, timeouts, 429 and 502/503/504.
- Job submissions (``POST /run``, ``/runsync``) are retried only when the request provably did
  not reach RunPod: the connection was never made, or RunPod refused it with 429 (no job is
  created then). A submission whose answer was lost raises :class:`SubmissionUncertain`.

``Retry-After`` is honoured; otherwise the backoff is exponential with jitter (tenacity).
"""

from __future__ import annotations

import email.utils
import io
import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from honora_tts import bounded_json
from honora_tts.client import _constants as C
from honora_tts.client._exceptions import (
    APIError,
    AuthenticationError,
    EndpointUnavailable,
    InvalidResponse,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ResponseTooLarge,
    SubmissionUncertain,
)
from honora_tts.deadline_backend import DeadlineTransport, deadline_scope
from honora_tts.redaction import install_redaction, mask, redact, register_secret
from honora_tts.version import package_version

log = install_redaction(logging.getLogger("honora_tts.client"))

_BODY_SNIPPET_CHARS = 300


class Deadline:
    """A point in monotonic time that a call (or a whole job) must end by. ``Deadline(None)``
    never expires."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.at = None if seconds is None else self.started + max(0.0, seconds)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a deadline."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.0

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def allows(self, seconds: float) -> bool:
        """Whether waiting ``seconds`` still ends before the deadline."""
        left = self.remaining()
        return left is None or seconds < left

    def clip(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """``timeout`` with each phase shortened to the time left (at least
        :data:`_LAST_CALL_S`, so that an almost-expired deadline still lets a quick call such
        as a cancel through)."""
        left = self.remaining()
        if left is None:
            return timeout
        left = max(left, _LAST_CALL_S)

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(
            connect=cap(timeout.connect),
            read=cap(timeout.read),
            write=cap(timeout.write),
            pool=cap(timeout.pool),
        )

    def attempt_ends(self, timeout: httpx.Timeout) -> float:
        """When one attempt under ``timeout`` must be over (monotonic seconds): its connect,
        write and read timeouts together, and never past this deadline (give or take
        :data:`_LAST_CALL_S`)."""
        now = time.monotonic()
        phases = [v for v in (timeout.connect, timeout.write, timeout.read) if v is not None]
        ends = now + (sum(phases) if phases else C.CALL_DEADLINE_S)
        return ends if self.at is None else min(ends, max(self.at, now + _LAST_CALL_S))

    def ms_left(self) -> int | None:
        left = self.remaining()
        return None if left is None else int(left * 1000)


#: The least time a call is given, even past its deadline (a cancel after a timeout).
_LAST_CALL_S = 0.05


def new_request_id() -> str:
    """A fresh correlation id for one call."""
    return f"req-{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the transport retries what is safe to retry."""

    max_attempts: int = C.DEFAULT_MAX_ATTEMPTS
    initial_delay_s: float = C.RETRY_INITIAL_DELAY_S
    max_delay_s: float = C.RETRY_MAX_DELAY_S
    jitter_s: float = C.RETRY_JITTER_S
    retry_after_cap_s: float = C.RETRY_AFTER_CAP_S


class _ConnectionFailed(EndpointUnavailable):
    """A transport failure; ``sent`` is False only when the request provably never left."""

    def __init__(self, cause: str, *, sent: bool, **ids: Any) -> None:
        self.cause = cause
        self.sent = sent
        super().__init__(cause, **ids)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _WaitRetryAfterOrBackoff(wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_exponential_jitter(
            initial=policy.initial_delay_s, max=policy.max_delay_s, jitter=policy.jitter_s
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self._backoff(retry_state))


class _StopAtDeadline(stop_base):
    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._deadline.allows(retry_state.upcoming_sleep)


class BaseClient:
    """Sends JSON requests under ``base_url`` with a bearer key, and downloads URLs without it.

    ``endpoint_id`` only names the endpoint in error messages. ``transport`` replaces the
    network (tests: an ``httpx.MockTransport``); by default it is a
    :class:`~honora_tts.deadline_backend.DeadlineTransport`, which holds each attempt to its
    wall-clock deadline.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        endpoint_id: str = "",
        timeout: httpx.Timeout = C.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = C.MAX_RESPONSE_BYTES,
    ) -> None:
        """``max_response_bytes`` caps every body this transport reads, after decompression
        (API answers and downloads). ``base_url``: where paths start
        (``{api_base}/{endpoint_id}`` for a queue endpoint; a load-balancing endpoint's paths
        are its workers', at its own URL)."""
        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.endpoint_id = endpoint_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.max_response_bytes = max_response_bytes
        self._api_key = api_key
        self._owned_transport = transport is None
        network = transport if transport is not None else DeadlineTransport()
        self._network = network
        agent = f"honora-tts/{package_version()}"
        self._http = httpx.Client(
            base_url=f"{self.base_url}/",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "Accept-Encoding": C.ACCEPT_ENCODING,
                "User-Agent": agent,
            },
            timeout=timeout,
            transport=network,
            follow_redirects=False,
        )
        # Audio URLs (signed bucket URLs) get no credentials and may redirect.
        self._downloads = httpx.Client(
            headers={"Accept-Encoding": C.ACCEPT_ENCODING, "User-Agent": agent},
            timeout=timeout, transport=network, follow_redirects=True,
        )

    @property
    def api_key(self) -> str:
        return self._api_key

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, api_key={mask(self._api_key)})"
        )

    def close(self) -> None:
        self._http.close()
        self._downloads.close()
        if self._owned_transport:
            self._network.close()

    # ------------------------------------------------------------------ request

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        submits_job: bool = False,
        payload_limit: int | None = None,
        deadline: Deadline | None = None,
        job_id: str | None = None,
        timeout: httpx.Timeout | None = None,
        headers: Mapping[str, str] | None = None,
        observe: Callable[[httpx.Response, bytes], None] | None = None,
    ) -> Any:
        """Send one request (with the retries that are safe for it) and return parsed JSON.

        ``submits_job`` marks a request that creates a GPU job: it is re-sent only when it
        provably never reached the endpoint. ``payload_limit`` (bytes) refuses bigger bodies
        before any network traffic. ``headers`` are added to the request; ``observe`` sees
        every answer (its headers and body) before it is parsed.
        """
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            if payload_limit is not None and len(content) > payload_limit:
                raise PayloadTooLarge(
                    len(content), payload_limit, f"{method} /{path}",
                    request_id=request_id, job_id=job_id,
                )
        deadline = deadline or Deadline(C.CALL_DEADLINE_S)
        ids: dict[str, Any] = {"request_id": request_id, "job_id": job_id}
        retrying = self._retrying(f"{method} /{path}", deadline, ids, submits_job=submits_job)
        try:
            return retrying(
                self._send_once, method, path, content, params, request_id, deadline, ids,
                timeout or self.timeout, headers, observe,
            )
        except _ConnectionFailed as exc:
            if deadline.expired:
                exc.cause = f"no answer within the {deadline.seconds:g} s deadline ({exc.cause})"
            if exc.sent and submits_job:
                raise SubmissionUncertain(
                    f"{method} /{path} was sent but no answer came back ({exc.cause}). The job "
                    "may exist and run; it was not re-sent, to avoid a second GPU job. Look "
                    "for the request id in the endpoint's logs before sending it again.",
                    **ids,
                ) from exc
            raise EndpointUnavailable(
                f"{method} /{path} failed: {exc.cause}. Check RUNPOD_API_BASE and the network; "
                "RunPod's status page tells whether the API is down.",
                **ids,
            ) from exc

    def download(
        self,
        url: str,
        *,
        deadline: Deadline | None = None,
        request_id: str | None = None,
        job_id: str | None = None,
    ) -> bytes:
        """``GET url`` (no credentials; redirects followed, all within the deadline) under the
        same retry policy as a read, the body streamed and capped at ``max_response_bytes``
        after decompression."""
        deadline = deadline or Deadline(C.CALL_DEADLINE_S)
        ids: dict[str, Any] = {"request_id": request_id, "job_id": job_id}
        retrying = self._retrying("GET audio URL", deadline, ids, submits_job=False)
        try:
            return retrying(self._download_once, url, deadline, ids)
        except _ConnectionFailed as exc:
            if deadline.expired:
                exc.cause = f"no answer within the {deadline.seconds:g} s deadline ({exc.cause})"
            raise EndpointUnavailable(f"could not download the audio: {exc.cause}", **ids) from exc

    def _retrying(
        self, route: str, deadline: Deadline, ids: dict[str, Any], *, submits_job: bool
    ) -> Retrying:
        """The retry rule: what is safe to re-send, how long to wait, when to stop."""

        def retryable(exc: BaseException) -> bool:
            retry_after = getattr(exc, "retry_after_s", None)
            if retry_after is not None and retry_after > self.retry.retry_after_cap_s:
                return False
            if isinstance(exc, RateLimited):
                return True
            if isinstance(exc, _ConnectionFailed):
                return not exc.sent or not submits_job
            if isinstance(exc, EndpointUnavailable):
                return not submits_job and exc.status_code in C.RETRYABLE_STATUS_CODES
            return False

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "retrying %s in %.2fs (attempt %d of %d failed: %s) request_id=%s job_id=%s",
                route, state.upcoming_sleep, state.attempt_number, self.retry.max_attempts,
                exc, ids.get("request_id"), ids.get("job_id"),
            )

        return Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self.retry.max_attempts) | _StopAtDeadline(deadline),
            wait=_WaitRetryAfterOrBackoff(self.retry),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def _download_once(
        self, url: str, deadline: Deadline, ids: dict[str, Any]
    ) -> bytes:
        timeout = deadline.clip(self.timeout)
        try:
            with deadline_scope(deadline.attempt_ends(timeout)), \
                    self._downloads.stream("GET", url, timeout=timeout) as rsp:
                status = rsp.status_code
                if status >= 300:
                    message = (
                        f"the audio URL answered {status}; the output bucket may have expired "
                        "it or refuse this client"
                    )
                    if status in C.RETRYABLE_STATUS_CODES:
                        raise EndpointUnavailable(
                            message, status_code=status,
                            retry_after_s=parse_retry_after(rsp.headers), **ids,
                        )
                    raise InvalidResponse(message, **ids)
                return read_body(rsp, self.max_response_bytes, "the audio download", ids)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _ConnectionFailed(self._describe(exc), sent=False, **ids) from exc
        except httpx.TransportError as exc:
            raise _ConnectionFailed(self._describe(exc), sent=True, **ids) from exc

    def _send_once(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        request_id: str | None,
        deadline: Deadline,
        ids: dict[str, Any],
        timeout: httpx.Timeout,
        extra_headers: Mapping[str, str] | None = None,
        observe: Callable[[httpx.Response, bytes], None] | None = None,
    ) -> Any:
        with deadline_scope(deadline.attempt_ends(deadline.clip(timeout))):
            response = self._open(method, path, content, params, request_id, deadline, ids,
                                  timeout, extra_headers)
            try:
                body = read_body(response, self.max_response_bytes,
                                 f"the answer to {method} /{path}", ids)
            except httpx.TransportError as exc:
                raise _ConnectionFailed(self._describe(exc), sent=True, **ids) from exc
            finally:
                response.close()
        if observe is not None:
            observe(response, body)
        return self._parse(method, path, response, body, ids)

    def _open(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        request_id: str | None,
        deadline: Deadline,
        ids: dict[str, Any],
        timeout: httpx.Timeout,
        extra_headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        """Send one request; the answer's body is left to read."""
        headers = dict(extra_headers or {})
        if request_id:
            headers[C.REQUEST_ID_HEADER] = request_id
        if content is not None:
            headers["Content-Type"] = "application/json"
        timeout = deadline.clip(timeout)
        request = self._http.build_request(
            method, path, content=content, params=params, headers=headers, timeout=timeout,
        )
        with deadline_scope(deadline.attempt_ends(timeout)):
            try:
                return self._http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise _ConnectionFailed(self._describe(exc), sent=False, **ids) from exc
            except httpx.TransportError as exc:
                raise _ConnectionFailed(self._describe(exc), sent=True, **ids) from exc

    def open_stream(
        self,
        path: str,
        body: Any,
        *,
        request_id: str | None,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        payload_limit: int | None = None,
        observe: Callable[[httpx.Response, bytes], None] | None = None,
    ) -> httpx.Response:
        """``POST path`` whose answer is read as it comes (a streamed synthesis): the open
        response, its status checked (an error answer is read and raised as for
        :meth:`request`). Never re-sent: the caller closes the response."""
        ids: dict[str, Any] = {"request_id": request_id, "job_id": None}
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        if payload_limit is not None and len(content) > payload_limit:
            raise PayloadTooLarge(len(content), payload_limit, f"POST /{path}", **ids)
        try:
            response = self._open("POST", path, content, None, request_id, deadline, ids,
                                  self.timeout, headers)
        except _ConnectionFailed as exc:
            if exc.sent:
                raise SubmissionUncertain(
                    f"POST /{path} was sent but no answer came back ({exc.cause}); it was not "
                    "re-sent, to avoid a second GPU job", **ids) from exc
            raise EndpointUnavailable(f"POST /{path} failed: {exc.cause}", **ids) from exc
        if response.status_code < 300:
            return response
        try:
            error_body = read_body(response, self.max_response_bytes,
                                   f"the answer to POST /{path}", ids)
        finally:
            response.close()
        if observe is not None:
            observe(response, error_body)
        self._parse("POST", path, response, error_body, ids)
        raise AssertionError("an error answer was parsed without raising")

    @staticmethod
    def _describe(exc: httpx.TransportError) -> str:
        detail = str(exc) or "no detail"
        return redact(f"{type(exc).__name__}: {detail}")

    def _parse(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        body: bytes,
        ids: dict[str, Any],
    ) -> Any:
        status = response.status_code
        route = f"{method} /{path}"
        if status < 300:
            if not body:
                return {}
            try:
                return bounded_json.loads(body, max_depth=C.MAX_ANSWER_DEPTH)
            except bounded_json.JsonRefused as exc:
                raise InvalidResponse(
                    f"{route} answered {status} with a body this client does not read ({exc}): "
                    f"{_snippet(response, body)!r}",
                    **ids,
                ) from exc
        retry_after = parse_retry_after(response.headers)
        snippet = _snippet(response, body)
        if status in (401, 403):
            raise AuthenticationError(
                f"{route} was refused ({status}): the API key is missing, wrong or has no access "
                "to this endpoint. Set RUNPOD_API_KEY to a key with access to "
                f"endpoint {self.endpoint_id}.",
                status_code=status, **ids,
            )
        if status == 404:
            raise NotFound(
                f"{route} answered 404 ({snippet}): check RUNPOD_ENDPOINT_ID "
                f"({self.endpoint_id}); a job's result is kept 30 minutes after /run and one "
                "minute after /runsync.",
                status_code=status, **ids,
            )
        if status == 413:
            raise PayloadTooLarge(None, _route_limit(path), route, **ids)
        if status == 429:
            wait = f"; Retry-After {retry_after:.1f}s" if retry_after is not None else ""
            raise RateLimited(
                f"{route} was rate limited by RunPod (429{wait}). Send fewer requests at once "
                "(/run allows 1000 per 10 s, /status 2000 per 10 s) or retry later.",
                retry_after_s=retry_after, status_code=status, **ids,
            )
        if status >= 500:
            raise EndpointUnavailable(
                f"{route} answered {status} ({snippet}): the endpoint is unavailable. Retry "
                "later; if it persists check the endpoint in the RunPod console.",
                status_code=status, retry_after_s=retry_after, **ids,
            )
        raise APIError(
            f"{route} answered {status}: {snippet}", status_code=status, **ids
        )


def _route_limit(path: str) -> int:
    if path.startswith("runsync"):
        return C.RUNSYNC_PAYLOAD_LIMIT_BYTES
    return C.RUN_PAYLOAD_LIMIT_BYTES


def _snippet(response: httpx.Response, body: bytes) -> str:
    try:
        text = body[: _BODY_SNIPPET_CHARS * 4].decode(response.encoding or "utf-8", "replace")
    except LookupError:
        return f"{len(body)} bytes"
    text = " ".join(text.split())
    if len(text) > _BODY_SNIPPET_CHARS:
        text = text[:_BODY_SNIPPET_CHARS] + "..."
    return redact(text) or "empty body"


# ------------------------------------------------------------------ bounded bodies
#
# httpx inflates ``gzip``/``deflate`` bodies whole: a 300 KB answer can become 300 MB before
# the client sees a byte. Here the raw (still compressed) body is read chunk by chunk and
# inflated with zlib's ``max_length``, so no more than the cap (plus one network chunk) is
# ever held, however much the body would inflate.

_GZIP_WBITS = 16 + zlib.MAX_WBITS
#: ``deflate`` is meant to be zlib-wrapped; some servers send raw deflate (httpx accepts both).
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
#: Inflate at most this much at a time (one network chunk may inflate a thousandfold).
_INFLATE_STEP = 1 << 20


class _Inflater:
    """Incremental, bounded decompression of one content encoding."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_fallback = encoding == "deflate"
        wbits = _GZIP_WBITS if encoding in ("gzip", "x-gzip") else _ZLIB_WBITS
        self._inflate: Any = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room`` bytes inflated from ``data`` (plus earlier unconsumed input)."""
        try:
            out = self._inflate.decompress(data, max(room, 1))
        except zlib.error:
            if not (self._raw_fallback and not self._started):
                raise
            self._inflate = zlib.decompressobj(_RAW_DEFLATE_WBITS)
            out = self._inflate.decompress(data, max(room, 1))
        self._started = True
        return bytes(out)

    @property
    def pending(self) -> bytes:
        return bytes(self._inflate.unconsumed_tail)


def read_body(
    response: httpx.Response, limit: int, what: str, ids: dict[str, Any]
) -> bytes:
    """The body of a streamed ``response``, decompressed, refusing more than ``limit`` bytes.

    Raises :class:`ResponseTooLarge` at the cap and :class:`InvalidResponse` for an encoding
    the client did not ask for or a body that does not inflate. Transport errors (timeouts,
    dropped connections) propagate as httpx raises them.
    """
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): already decoded
        if len(response.content) > limit:
            raise ResponseTooLarge(what, limit, **ids)
        return response.content
    encodings = [
        part.strip().lower()
        for part in response.headers.get("content-encoding", "").split(",")
        if part.strip() and part.strip().lower() != "identity"
    ]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
        raise InvalidResponse(
            f"{what} came with content-encoding {response.headers['content-encoding']!r}, "
            "which this client neither asked for nor reads (it asks for gzip or deflate)",
            **ids,
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"{what} ({int(declared):,} bytes declared)", limit, **ids)
    inflater = _Inflater(encodings[0]) if encodings else None
    # BytesIO.getvalue() hands over its buffer without a copy: the peak stays near the body.
    body = io.BytesIO()
    for chunk in response.iter_raw():
        if inflater is None:
            body.write(chunk)
        else:
            data = chunk
            while data:
                try:
                    room = limit - body.tell() + 1
                    body.write(inflater.feed(data, min(room, _INFLATE_STEP)))
                except zlib.error as exc:
                    raise InvalidResponse(
                        f"{what} is not valid {inflater.encoding} data: {exc}", **ids
                    ) from exc
                if body.tell() > limit:
                    break
                data = inflater.pending
        if body.tell() > limit:
            response.close()
            raise ResponseTooLarge(what, limit, **ids)
    return body.getvalue()
