"""Jobs on a RunPod load-balancing endpoint, with worker affinity.

A load-balancing endpoint has no queue: each request goes straight to a worker's own HTTP
server (``https://ENDPOINT_ID.api.runpod.ai/PATH``), and RunPod names the worker that answered
in ``X-Runpod-Worker-Id``. :class:`LoadBalancedJobRunner` is the client's job runner for such an
endpoint (``HONORA_ENDPOINT_MODE=load_balancing``): a job is one ``POST /honora/v1/runsync``
(the worker's own route, answering RunPod's job object) or one streamed
``POST /honora/v1/stream``, so every resource of :class:`~honora_tts.client.EndpointClient`
(synthesis, streams, batches, health, census) works unchanged on top of it.

Worker affinity (:class:`WorkerAffinity`): the runner remembers which worker last answered for
each voice and sends that voice's next requests back to it (``X-Runpod-Worker-Id: <id>``, soft:
RunPod falls back to another worker when that one is gone or busy; ``strict``: only that
worker, and RunPod's 404 ``affinity_worker_gone`` makes the runner send the request once more
unpinned), so repeat voices meet their speaker latents in the worker's cache. Health probes are
never pinned (a census must reach every worker).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx

from honora_tts.client import _constants as C
from honora_tts.client._base_client import BaseClient, Deadline, new_request_id
from honora_tts.client._exceptions import (
    ConfigurationError,
    InvalidResponse,
    NotFound,
    ResponseTooLarge,
)
from honora_tts.client.job_runner import JobRunner, Poll
from honora_tts.client.results import EndpointHealth, JobStatus
from honora_tts.redaction import install_redaction

log = install_redaction(logging.getLogger("honora_tts.client"))

WORKER_HEADER = "X-Runpod-Worker-Id"
RUNSYNC_PATH = "honora/v1/runsync"
STREAM_PATH = "honora/v1/stream"
#: RunPod's load balancer takes request bodies of up to 30 MB.
PAYLOAD_LIMIT_BYTES = 30_000_000
#: RunPod's answer when a strictly pinned worker is no longer in the endpoint's active set.
AFFINITY_GONE = "affinity_worker_gone"
AffinityMode = Literal["soft", "strict", "off"]
_RUNSYNC_READ_S = 5.5 * 60  # RunPod's processing limit for one request


class WorkerAffinity:
    """Voice -> the worker that answered it last. Thread-safe."""

    def __init__(self, mode: AffinityMode = "soft") -> None:
        self.mode = mode
        self._workers: dict[str, str] = {}
        self._lock = threading.Lock()
        self.pinned = 0
        self.unpinned_after_gone = 0

    @staticmethod
    def key(job_input: Mapping[str, Any]) -> str | None:
        """The voice a job speaks with (None: not a synthesis, never pinned)."""
        if job_input.get("action", "synthesize") != "synthesize":
            return None
        return str(job_input.get("voice_sha256") or job_input.get("voice_url") or "default")

    def header(self, key: str | None) -> dict[str, str]:
        if self.mode == "off" or key is None:
            return {}
        with self._lock:
            worker = self._workers.get(key)
        if worker is None:
            return {}
        self.pinned += 1
        return {WORKER_HEADER: worker if self.mode == "soft" else f"strict {worker}"}

    def answered(self, key: str | None, worker_id: str | None) -> None:
        if key is not None and worker_id:
            with self._lock:
                self._workers[key] = worker_id

    def forget(self, key: str | None) -> None:
        if key is not None:
            with self._lock:
                self._workers.pop(key, None)

    def workers(self) -> dict[str, str]:
        """A copy of the voice -> worker map."""
        with self._lock:
            return dict(self._workers)


@dataclass
class _Stream:
    """A streamed job while its answer is read."""

    response: httpx.Response
    lines: Iterator[str]
    key: str | None
    final: JobStatus | None = None


class LoadBalancedJobRunner(JobRunner):
    """:class:`JobRunner`'s operations on a load-balancing endpoint (see the module docstring).
    ``run`` (a queue) does not exist there; ``cancel`` closes a stream, which stops the
    worker's synthesis."""

    def __init__(self, transport: BaseClient, *, deadline_s: float = C.DEFAULT_DEADLINE_S,
                 affinity: AffinityMode = "soft") -> None:
        super().__init__(transport, deadline_s=deadline_s)
        self.affinity = WorkerAffinity(affinity)
        self._streams: dict[str, _Stream] = {}
        self._finished: dict[str, JobStatus] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------- RunPod's operations

    def run(self, input: Mapping[str, Any], *, request_id: str | None = None,
            policy: Mapping[str, Any] | None = None, webhook: str | None = None) -> JobStatus:
        raise ConfigurationError(
            "a load-balancing endpoint has no queue (/run): use runsync() or synthesize(), or "
            "set HONORA_ENDPOINT_MODE=queue for a queue-based endpoint", request_id=request_id)

    def runsync(self, input: Mapping[str, Any], *, request_id: str | None = None,
                wait_ms: int | None = None, policy: Mapping[str, Any] | None = None) -> JobStatus:
        request_id = request_id or str(input.get("request_id") or "") or new_request_id()
        return self._post(dict(input), request_id, Deadline(_RUNSYNC_READ_S))

    def status(self, job_id: str, *, request_id: str | None = None,
               deadline: Deadline | None = None) -> JobStatus:
        """A finished job of this runner (load-balancing endpoints keep no job state)."""
        with self._lock:
            found = self._finished.get(job_id)
        if found is None:
            raise NotFound(f"job {job_id} is not one this client ran: a load-balancing endpoint "
                           "keeps no job state", request_id=request_id, job_id=job_id)
        return found

    def cancel(self, job_id: str, *, request_id: str | None = None) -> JobStatus:
        with self._lock:
            stream = self._streams.pop(job_id, None)
        if stream is not None:
            stream.response.close()
        status = JobStatus(id=job_id, status="CANCELLED")
        self._keep(status)
        return status

    def purge_queue(self) -> dict[str, Any]:
        return {"removed": 0, "status": "completed", "note": "a load-balancing endpoint has no "
                "queue"}

    def endpoint_health(self, deadline: Deadline | None = None) -> EndpointHealth:
        """``GET /health`` of one worker: a load-balancing endpoint counts no jobs or workers."""
        payload = self.transport.request("GET", "health", deadline=deadline)
        return EndpointHealth(jobs={}, workers={}, raw=payload if isinstance(payload, dict)
                              else {})

    # ------------------------------------------------------------ jobs with a deadline

    def submit(self, job_input: dict[str, Any], request_id: str, deadline: Deadline, *,
               waiting: bool = False) -> tuple[JobStatus, float]:
        """Every job runs at once: the final status of a plain job, or an IN_PROGRESS one for
        a stream (read it with :meth:`stream_polls`)."""
        started = time.perf_counter()
        if job_input.get("stream"):
            status = self._open_stream(job_input, request_id, deadline)
        else:
            status = self._post(job_input, request_id, deadline)
        return status, (time.perf_counter() - started) * 1000

    def wait(self, job_id: str, request_id: str | None,
             deadline: Deadline) -> tuple[JobStatus, int]:
        return self.status(job_id, request_id=request_id), 0

    def stream_polls(self, job_id: str, request_id: str | None,
                     deadline: Deadline) -> Generator[Poll, None, None]:
        """One poll per streamed item as it arrives, then the final one. Closing the iterator
        early closes the stream (the worker stops)."""
        with self._lock:
            stream = self._streams.get(job_id)
        if stream is None:
            raise NotFound(f"no open stream {job_id}", request_id=request_id, job_id=job_id)
        finished = False
        try:
            for line in stream.lines:
                if not line.strip():
                    continue
                item = self._line(line, request_id, job_id)
                if "output" in item and "status" not in item:
                    yield Poll(state="IN_PROGRESS", final=False, outputs=[item["output"]])
                    continue
                status = _with_worker(replace(JobStatus.from_api(item), id=job_id),
                                      stream.response)
                self.affinity.answered(stream.key, status.worker_id)
                self._keep(status)
                finished = True
                yield Poll(state=status.status, final=True, status=status)
                return
            raise InvalidResponse("the stream ended before its job status",
                                  request_id=request_id, job_id=job_id)
        finally:
            with self._lock:
                self._streams.pop(job_id, None)
            stream.response.close()
            if not finished:
                self._keep(JobStatus(id=job_id, status="CANCELLED"))

    # ------------------------------------------------------------------ internals

    def _post(self, job_input: dict[str, Any], request_id: str,
              deadline: Deadline) -> JobStatus:
        key = WorkerAffinity.key(job_input)
        seen: dict[str, Any] = {}

        def observe(response: httpx.Response, body: bytes) -> None:
            seen["worker"] = response.headers.get(WORKER_HEADER)
            seen["gone"] = response.status_code == 404 and AFFINITY_GONE.encode() in body[:200]

        timeout = httpx.Timeout(connect=self.transport.timeout.connect, read=_RUNSYNC_READ_S,
                                write=self.transport.timeout.write,
                                pool=self.transport.timeout.pool)
        body = {"input": {**job_input, "request_id": request_id}}
        for pin in (self.affinity.header(key), {}):
            try:
                payload = self.transport.request(
                    "POST", RUNSYNC_PATH, body=body, request_id=request_id, submits_job=True,
                    payload_limit=PAYLOAD_LIMIT_BYTES, deadline=deadline, timeout=timeout,
                    headers=pin, observe=observe,
                )
            except NotFound:
                if not pin or not seen.get("gone"):
                    raise
                self._gone(key, pin)
                continue
            break
        if not isinstance(payload, dict):
            raise InvalidResponse(f"POST /{RUNSYNC_PATH} answered {type(payload).__name__}, "
                                  "not a job object", request_id=request_id)
        status = JobStatus.from_api(payload)
        if not status.worker_id and seen.get("worker"):
            status = replace(status, worker_id=seen["worker"])
        self.affinity.answered(key, seen.get("worker") or status.worker_id)
        self._keep(status)
        return status

    def _open_stream(self, job_input: dict[str, Any], request_id: str,
                     deadline: Deadline) -> JobStatus:
        key = WorkerAffinity.key(job_input)
        gone: dict[str, bool] = {}

        def observe(response: httpx.Response, body: bytes) -> None:
            gone["gone"] = response.status_code == 404 and AFFINITY_GONE.encode() in body[:200]

        body = {"input": {**job_input, "request_id": request_id}}
        for pin in (self.affinity.header(key), {}):
            try:
                response = self.transport.open_stream(
                    STREAM_PATH, body, request_id=request_id, deadline=deadline, headers=pin,
                    payload_limit=PAYLOAD_LIMIT_BYTES, observe=observe,
                )
            except NotFound:
                if not pin or not gone.get("gone"):
                    raise
                self._gone(key, pin)
                continue
            break
        job_id = f"lb-stream-{uuid.uuid4().hex[:16]}"
        self.affinity.answered(key, response.headers.get(WORKER_HEADER))
        with self._lock:
            self._streams[job_id] = _Stream(
                response, _bounded_lines(response, self.transport.max_response_bytes), key)
        return JobStatus(id=job_id, status="IN_PROGRESS",
                         worker_id=response.headers.get(WORKER_HEADER))

    def _gone(self, key: str | None, pin: Mapping[str, str]) -> None:
        log.warning("worker %s is gone (%s); sending the request unpinned",
                    pin.get(WORKER_HEADER), AFFINITY_GONE)
        self.affinity.forget(key)
        self.affinity.unpinned_after_gone += 1

    def _keep(self, status: JobStatus) -> None:
        with self._lock:
            self._finished[status.id] = status
            while len(self._finished) > 1000:  # bounded: the oldest go first
                self._finished.pop(next(iter(self._finished)))

    @staticmethod
    def _line(line: str, request_id: str | None, job_id: str) -> dict[str, Any]:
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InvalidResponse(f"a stream line is not JSON: {line[:120]!r}",
                                  request_id=request_id, job_id=job_id) from exc
        if not isinstance(item, dict):
            raise InvalidResponse("a stream line is not an object", request_id=request_id,
                                  job_id=job_id)
        return item


def _with_worker(status: JobStatus, response: httpx.Response) -> JobStatus:
    worker = response.headers.get(WORKER_HEADER)
    if status.worker_id or not worker:
        return status
    return replace(status, worker_id=worker)


def _bounded_lines(response: httpx.Response, max_line: int) -> Iterator[str]:
    """The answer's lines as they arrive; :class:`ResponseTooLarge` for a line longer than
    ``max_line`` bytes (nothing beyond it is held)."""
    pending = b""
    for chunk in response.iter_bytes():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
        if len(pending) > max_line:
            raise ResponseTooLarge("a line of the stream", max_line)
    if pending:
        yield pending.decode("utf-8", "replace")
