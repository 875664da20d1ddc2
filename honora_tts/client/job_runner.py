"""RunPod jobs over the transport: submit, wait, read a stream, cancel on giving up.

Synthesis submits with ``POST /run`` and polls ``GET /status`` (50 ms at first, growing to
250 ms; on localpod this finishes within about 25 ms of ``/runsync``): a lost poll is simply
polled again, whereas a lost ``/runsync`` answer would leave a job running that nobody can
find. Every job has a deadline; a job still running at its deadline is cancelled and
:class:`JobTimedOut` is raised. Jobs that do no work (health) may use ``/runsync``, answered
the moment the job ends.

Waiting for a status and reading a stream are one polling loop with one schedule
(:class:`PollSchedule`); HTTP retries are the transport's (:class:`BaseClient`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from honora_tts.client import _constants as C
from honora_tts.client._base_client import BaseClient, Deadline, new_request_id
from honora_tts.client._exceptions import (
    EndpointUnavailable,
    HonoraClientError,
    InvalidResponse,
    JobTimedOut,
)
from honora_tts.client.results import EndpointHealth, JobStatus
from honora_tts.redaction import install_redaction

log = install_redaction(logging.getLogger("honora_tts.client"))

_CANCEL_DEADLINE_S = 10.0
_RUNSYNC_READ_S = 100.0
#: A waiting ``/runsync`` asks RunPod to answer this long before the deadline (or the read
#: timeout), so that its answer, not a timeout, ends the wait.
_RUNSYNC_MARGIN_MS = 1_000

_GIVE_UP_ADVICE = {
    "IN_QUEUE": "no worker took it: check that the endpoint has running workers "
    "(max workers > 0) and is not saturated",
    "IN_PROGRESS": "the worker was still synthesizing: raise deadline_s or send "
    "less text per job",
}


class PollSchedule:
    """When to poll a job next: ``initial_s`` at first, growing by ``growth`` up to
    ``max_s``; back to ``initial_s`` whenever the job produced something."""

    def __init__(
        self,
        initial_s: float = C.POLL_INITIAL_S,
        growth: float = C.POLL_GROWTH,
        max_s: float = C.POLL_MAX_S,
    ) -> None:
        self.initial_s = initial_s
        self.growth = growth
        self.max_s = max_s
        self._delay = initial_s

    def next_delay(self, left_s: float | None) -> float:
        """The pause before the next poll, never past the deadline (``left_s`` seconds)."""
        delay = self._delay if left_s is None else min(self._delay, left_s)
        self._delay = min(self._delay * self.growth, self.max_s)
        return delay

    def reset(self) -> None:
        self._delay = self.initial_s


@dataclass(frozen=True)
class JobTiming:
    """How long the submission took and how many polls followed it."""

    submit_ms: float
    polls: int = 0


@dataclass(frozen=True)
class Poll:
    """One poll of a job: its state, whether it is over, and what it produced.

    ``status`` is the full job status for ``/status`` polls, None for ``/stream`` polls;
    ``outputs`` are a stream's new items (empty for ``/status``)."""

    state: str
    final: bool
    status: JobStatus | None = None
    outputs: list[Any] = field(default_factory=list)


class JobRunner:
    """Runs RunPod jobs on one endpoint through a :class:`BaseClient`. Thread-safe."""

    def __init__(self, transport: BaseClient, *, deadline_s: float = C.DEFAULT_DEADLINE_S):
        self.transport = transport
        self.deadline_s = deadline_s

    def deadline(self, seconds: float | None = None) -> Deadline:
        """A deadline of ``seconds`` (default: this runner's ``deadline_s``), starting now."""
        return Deadline(self.deadline_s if seconds is None else seconds)

    # ----------------------------------------------------------- RunPod's operations

    def run(
        self,
        input: Mapping[str, Any],
        *,
        request_id: str | None = None,
        policy: Mapping[str, Any] | None = None,
        webhook: str | None = None,
    ) -> JobStatus:
        """``POST /run``: queue a job and return its id and state."""
        body, request_id = job_body(input, request_id, policy, webhook)
        payload = self.transport.request(
            "POST", "run", body=body, request_id=request_id, submits_job=True,
            payload_limit=C.RUN_PAYLOAD_LIMIT_BYTES,
        )
        return _job_status(payload, request_id=request_id)

    def runsync(
        self,
        input: Mapping[str, Any],
        *,
        request_id: str | None = None,
        wait_ms: int | None = None,
        policy: Mapping[str, Any] | None = None,
    ) -> JobStatus:
        """``POST /runsync``: run a job and wait for it (about 90 s at most)."""
        body, request_id = job_body(input, request_id, policy, None)
        params = None
        if wait_ms is not None:
            params = {"wait": min(max(int(wait_ms), C.RUNSYNC_WAIT_MIN_MS), C.RUNSYNC_WAIT_MAX_MS)}
        base = self.transport.timeout
        timeout = httpx.Timeout(
            connect=base.connect, read=max(base.read or 0.0, _RUNSYNC_READ_S),
            write=base.write, pool=base.pool,
        )
        payload = self.transport.request(
            "POST", "runsync", body=body, params=params, request_id=request_id,
            submits_job=True, payload_limit=C.RUNSYNC_PAYLOAD_LIMIT_BYTES, timeout=timeout,
        )
        return _job_status(payload, request_id=request_id)

    def status(
        self, job_id: str, *, request_id: str | None = None, deadline: Deadline | None = None
    ) -> JobStatus:
        """``GET /status/{job_id}`` (retried on transient failures)."""
        payload = self.transport.request(
            "GET", f"status/{job_id}", request_id=request_id, deadline=deadline, job_id=job_id
        )
        return _job_status(payload, job_id=job_id, request_id=request_id)

    def cancel(self, job_id: str, *, request_id: str | None = None) -> JobStatus:
        """``POST /cancel/{job_id}``; idempotent, so retried on transient failures."""
        payload = self.transport.request(
            "POST", f"cancel/{job_id}", request_id=request_id, job_id=job_id,
            deadline=Deadline(_CANCEL_DEADLINE_S),
        )
        return _job_status(payload, job_id=job_id, request_id=request_id)

    def purge_queue(self) -> dict[str, Any]:
        """``POST /purge-queue``: drop every queued job (running jobs go on)."""
        payload = self.transport.request(
            "POST", "purge-queue", deadline=Deadline(_CANCEL_DEADLINE_S)
        )
        return payload if isinstance(payload, dict) else {"result": payload}

    def endpoint_health(self, deadline: Deadline | None = None) -> EndpointHealth:
        """``GET /health``: job and worker counts by state."""
        payload = self.transport.request("GET", "health", deadline=deadline)
        if not isinstance(payload, dict):
            raise InvalidResponse(f"GET /health answered {type(payload).__name__}, not an object")
        return EndpointHealth.from_api(payload)

    # ------------------------------------------------------------ jobs with a deadline

    def execute(
        self, job_input: dict[str, Any], request_id: str, deadline: Deadline, *,
        waiting: bool = False,
    ) -> tuple[JobStatus, JobTiming]:
        """Submit (``waiting``: with ``/runsync``, only for jobs that do no work) and poll to
        a final state."""
        first, submit_ms = self.submit(job_input, request_id, deadline, waiting=waiting)
        if first.is_final:
            return first, JobTiming(submit_ms)
        status, polls = self.wait(first.id, request_id, deadline)
        return status, JobTiming(submit_ms, polls)

    def submit(
        self, job_input: dict[str, Any], request_id: str, deadline: Deadline, *,
        waiting: bool = False,
    ) -> tuple[JobStatus, float]:
        """``POST /run`` with a policy derived from the deadline; returns the job and the
        milliseconds the submission took. ``waiting``: ``POST /runsync``, held open until the
        job ends or shortly before the deadline (then polled like a ``/run`` job)."""
        submitted = time.perf_counter()
        body, _ = job_body(job_input, request_id, _policy(deadline), None)
        route, params, timeout = "run", None, None
        if waiting:
            left = deadline.ms_left()
            wait_ms = C.RUNSYNC_WAIT_MAX_MS if left is None else left - _RUNSYNC_MARGIN_MS
            wait_ms = min(max(wait_ms, C.RUNSYNC_WAIT_MIN_MS), C.RUNSYNC_WAIT_MAX_MS)
            route, params = "runsync", {"wait": wait_ms}
            base = self.transport.timeout
            timeout = httpx.Timeout(
                connect=base.connect, read=wait_ms / 1000 + _RUNSYNC_MARGIN_MS / 1000,
                write=base.write, pool=base.pool,
            )
        payload = self.transport.request(
            "POST", route, body=body, params=params, request_id=request_id, submits_job=True,
            payload_limit=C.RUN_PAYLOAD_LIMIT_BYTES, deadline=deadline, timeout=timeout,
        )
        first = _job_status(payload, request_id=request_id)
        if not first.id:
            raise InvalidResponse(
                f"POST /{route} answered without a job id: {str(payload)[:200]}",
                request_id=request_id,
            )
        log.info("request %s: job %s submitted (%s)", request_id, first.id, first.status)
        return first, (time.perf_counter() - submitted) * 1000

    def wait(
        self, job_id: str, request_id: str | None, deadline: Deadline
    ) -> tuple[JobStatus, int]:
        """Poll ``/status`` until the job is final; returns it and the number of polls."""

        def read() -> Poll:
            status = self.status(job_id, request_id=request_id, deadline=deadline)
            return Poll(state=status.status, final=status.is_final, status=status)

        for polls, poll in enumerate(self.polls(job_id, request_id, deadline, read), start=1):
            if poll.final and poll.status is not None:
                return poll.status, polls
        raise AssertionError("polling ended without a final status")

    def stream_polls(
        self, job_id: str, request_id: str | None, deadline: Deadline
    ) -> Generator[Poll, None, None]:
        """Poll ``/stream`` until the job is final: one :class:`Poll` per answer, with its new
        outputs. Closing the iterator early cancels the job."""

        def read() -> Poll:
            payload = self.transport.request(
                "GET", f"stream/{job_id}", request_id=request_id, deadline=deadline,
                job_id=job_id,
            )
            if not isinstance(payload, dict):
                raise InvalidResponse(
                    f"GET /stream answered {type(payload).__name__}, not an object",
                    request_id=request_id, job_id=job_id,
                )
            state = str(payload.get("status") or "UNKNOWN")
            items = payload.get("stream") or []
            outputs = [i.get("output") if isinstance(i, dict) else i for i in items]
            return Poll(state=state, final=state in C.FINAL_STATES and not outputs,
                        outputs=outputs)

        return self.polls(job_id, request_id, deadline, read)

    def polls(
        self,
        job_id: str,
        request_id: str | None,
        deadline: Deadline,
        read: Callable[[], Poll],
    ) -> Generator[Poll, None, None]:
        """The polling loop: ``read()`` until a final poll, pausing by :class:`PollSchedule`.

        At the deadline the job is cancelled and :class:`JobTimedOut` raised (also when the
        endpoint stops answering past the deadline); on any other error, or when the caller
        stops iterating before the end, the job is cancelled."""
        schedule = PollSchedule()
        finished = False
        state: str | None = None
        try:
            while True:
                try:
                    poll = read()
                except EndpointUnavailable as exc:
                    if deadline.expired:
                        finished = True
                        raise self._give_up(job_id, request_id, deadline, state) from exc
                    raise
                state = poll.state
                if poll.final:
                    finished = True
                    yield poll
                    return
                yield poll
                if poll.outputs:
                    schedule.reset()
                    continue
                left = deadline.remaining()
                if left is not None and left <= 0:
                    finished = True
                    raise self._give_up(job_id, request_id, deadline, state)
                self.transport.sleep(schedule.next_delay(left))
        finally:
            if not finished:
                self._cancel_quietly(job_id, request_id)

    def _give_up(
        self, job_id: str, request_id: str | None, deadline: Deadline, state: str | None
    ) -> JobTimedOut:
        cancelled = self._cancel_quietly(job_id, request_id)
        state = state or "unknown"
        advice = _GIVE_UP_ADVICE.get(state, "raise deadline_s or check the endpoint")
        outcome = "cancelled" if cancelled else "NOT cancelled: cancel it in the RunPod console"
        return JobTimedOut(
            f"the job did not finish within its {deadline.seconds:g} s deadline (last state "
            f"{state}; {advice}); it was {outcome}",
            cancelled=cancelled, status=state, request_id=request_id, job_id=job_id,
        )

    def _cancel_quietly(self, job_id: str, request_id: str | None) -> bool:
        try:
            self.cancel(job_id, request_id=request_id)
        except HonoraClientError as exc:
            log.warning("request %s: could not cancel job %s: %s", request_id, job_id, exc)
            return False
        log.warning("request %s: job %s cancelled", request_id, job_id)
        return True


def job_body(
    input: Mapping[str, Any],
    request_id: str | None,
    policy: Mapping[str, Any] | None,
    webhook: str | None,
) -> tuple[dict[str, Any], str]:
    """RunPod's job body for ``input``, with the request id set in it (made when missing)."""
    job_input = dict(input)
    request_id = request_id or job_input.get("request_id") or new_request_id()
    job_input["request_id"] = request_id
    body: dict[str, Any] = {"input": job_input}
    if policy:
        body["policy"] = dict(policy)
    if webhook:
        body["webhook"] = webhook
    return body, request_id


def _policy(deadline: Deadline) -> dict[str, int] | None:
    left = deadline.ms_left()
    if left is None:
        return None
    execution = min(max(left, C.EXECUTION_TIMEOUT_MIN_MS), C.EXECUTION_TIMEOUT_MAX_MS)
    ttl = min(max(left + C.TTL_MARGIN_MS, C.TTL_MIN_MS), C.EXECUTION_TIMEOUT_MAX_MS)
    return {"executionTimeout": execution, "ttl": ttl}


def _job_status(
    payload: Any, *, job_id: str | None = None, request_id: str | None = None
) -> JobStatus:
    if not isinstance(payload, dict):
        raise InvalidResponse(
            f"the endpoint answered {type(payload).__name__}, not a job object",
            request_id=request_id, job_id=job_id,
        )
    return JobStatus.from_api(payload, job_id)
