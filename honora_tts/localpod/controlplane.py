"""The control plane: the job table, the workers and the rules that connect them. It lives on
one asyncio event loop (the HTTP server's); the HTTP routes in :mod:`.app` and
:class:`~honora_tts.localpod.LocalPod` (through ``run_coroutine_threadsafe``) call it there,
so nothing in it needs a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from honora_tts.bounded_json import nested_deeper_than
from honora_tts.http_body import MAX_NESTING_DEPTH
from honora_tts.localpod.jobs import (
    DoneOutcome,
    Job,
    JobPolicy,
    JobTable,
    Route,
    platform_error,
)
from honora_tts.localpod.ratelimit import SlidingWindowLimiter
from honora_tts.localpod.supervisor import Supervisor, WorkerKind, WorkerProcess

log = logging.getLogger("honora_tts.localpod")

MIB = 1024 * 1024
#: Request body limits of RunPod's public API (``/run`` 10 MB, ``/runsync`` 20 MB), read as MiB.
MAX_RUN_BYTES = 10 * MIB
MAX_RUNSYNC_BYTES = 20 * MIB
#: What a worker may post: a job-done body (RunPod's 20 MB result limit) and one stream chunk.
MAX_RESULT_BYTES = 20 * MIB
MAX_STREAM_CHUNK_BYTES = 1 * MIB

RUNSYNC_DEFAULT_WAIT_MS = 90_000
RUNSYNC_MIN_WAIT_MS = 1_000
RUNSYNC_MAX_WAIT_MS = 300_000
EXECUTION_TIMEOUT_MIN_MS = 5_000
TTL_MIN_MS = 10_000
POLICY_MAX_MS = 7 * 24 * 3600 * 1000
DEFAULT_TTL_S = 24 * 3600.0
#: A worker counts as unhealthy in ``/health`` for this long after it died on its own.
UNHEALTHY_WINDOW_S = 60.0
WEBHOOK_ATTEMPTS = 3
WEBHOOK_RETRY_DELAY_S = 1.0

#: Operations with their own rate-limit window (RunPod limits each separately).
RATE_LIMITED_OPERATIONS = ("run", "runsync", "status", "stream", "cancel", "retry", "purge-queue")


class LocalPodError(RuntimeError):
    """Something about the local endpoint itself went wrong (not a job)."""


class WorkerStartError(LocalPodError):
    """A worker died while it was loading (before it ever asked for work)."""


class PolicyError(ValueError):
    """An invalid ``policy`` or ``webhook`` in a submission (answered with 400)."""


@dataclass
class PodSettings:
    endpoint_id: str
    api_key: str
    worker_token: str
    current_handler: Path
    stale_handler: Path | None
    execution_timeout_s: float = 600.0
    result_retention_s: float = 1800.0
    runsync_retention_s: float = 60.0
    rate_limit_per_10s: int | None = None
    enforce_policy_minimums: bool = True
    restart_dead_workers: bool = True
    #: How long a worker may keep a timed-out job after the stop signal before it is killed.
    stop_grace_s: float = 3.0
    #: How long job-take and job-stop polls are held open when there is nothing to hand out.
    poll_hold_s: float = 5.0
    housekeeping_interval_s: float = 0.1


class Broadcast:
    """Wakes every coroutine waiting on it; fired from the loop thread."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, timeout_s))
        except TimeoutError:
            return False
        return True


PLANE_COUNTERS = (
    "job_take_requests", "job_take_empty", "job_stop_polls", "pings", "workers_started",
    "workers_died", "workers_killed", "workers_replaced", "rate_limited", "payloads_rejected",
    "results_rejected", "unauthorized", "webhooks_delivered", "webhooks_failed",
)  # fmt: skip


class ControlPlane:
    """Jobs + workers + rules. Every method runs on the server's event loop."""

    def __init__(self, settings: PodSettings, supervisor: Supervisor) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.table = JobTable()
        self.table.on_end(self._job_ended)
        self.closing = False
        self.counters: dict[str, int] = dict.fromkeys(PLANE_COUNTERS, 0)
        self.init_crashes: list[str] = []
        self._work = Broadcast()
        self._stops = Broadcast()
        self._ends = Broadcast()
        self._end_events: dict[str, asyncio.Event] = {}
        self._init_failures: dict[WorkerKind, int] = {"current": 0, "stale": 0}
        self._housekeeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        #: Whether a worker may take more work (a rolling release says no to stale workers).
        self.may_take: Callable[[WorkerProcess], bool] = lambda worker: True
        if settings.rate_limit_per_10s is not None:
            self._limiters = {
                op: SlidingWindowLimiter(settings.rate_limit_per_10s)
                for op in RATE_LIMITED_OPERATIONS
            }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._housekeeper = asyncio.get_running_loop().create_task(self._housekeeping())

    async def shutdown(self, grace_s: float = 3.0) -> None:
        """Stop taking work, stop every worker (SIGTERM, then SIGKILL after ``grace_s``)."""
        self.closing = True
        self._work.fire()
        self._stops.fire()
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
        self.supervisor.terminate_all()
        deadline = time.monotonic() + grace_s
        while self.supervisor.running() and time.monotonic() < deadline:
            self.supervisor.reap()
            await asyncio.sleep(0.05)
        self.supervisor.kill_all()
        for worker in self.supervisor.workers.values():
            self.table.worker_died(worker.id, "localpod stopped")
        for task in list(self._background):
            task.cancel()

    async def _housekeeping(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the loop must outlive one bad tick
                log.exception("localpod housekeeping failed")
            await asyncio.sleep(self.settings.housekeeping_interval_s)

    def tick(self) -> None:
        """Start due workers, notice dead ones, apply timeouts, TTLs and retention."""
        for worker in self.supervisor.start_due():
            self.counters["workers_started"] += 1
            log.info("localpod: started %s (pid %s)", worker.id, worker.pid)
        for worker in self.supervisor.reap():
            self._worker_exited(worker)
        expiry = self.table.expire()
        if any(job.worker_id for job in expiry.timed_out):
            self._stops.fire()
        for worker_id in self.table.overdue_stops(self.settings.stop_grace_s):
            overdue = self.supervisor.workers.get(worker_id)
            if overdue is not None and overdue.alive:
                log.warning("localpod: %s did not stop a timed-out job; killing it", worker_id)
                self._kill(overdue, "did not stop a timed-out job")

    # ------------------------------------------------------------------ workers

    def add_workers(self, n: int, *, stale: bool = False, start_delay_s: float = 0.0) -> list[str]:
        kind: WorkerKind = "stale" if stale else "current"
        handler = self._handler_for(kind)
        ids = [
            self.supervisor.add(kind, handler, start_delay_s=start_delay_s).id for _ in range(n)
        ]
        self.tick()
        return ids

    def _handler_for(self, kind: WorkerKind) -> Path:
        if kind == "current":
            return self.settings.current_handler
        if self.settings.stale_handler is None or not self.settings.stale_handler.exists():
            raise LocalPodError(
                "stale workers need the old batch-only handler (tests/fixtures/stale_handler.py "
                "in a source checkout); pass stale_handler_path"
            )
        return self.settings.stale_handler

    def kill_worker(self, worker_id: str | None = None, *, busy: bool = True) -> str:
        """SIGKILL a worker (a busy one by default); the supervisor replaces it."""
        if worker_id is not None:
            worker = self.supervisor.workers.get(worker_id)
            if worker is None or not worker.alive:
                raise LocalPodError(f"no live worker {worker_id!r}")
        else:
            alive = [w for w in self.supervisor.workers.values() if w.alive]
            busy_workers = [w for w in alive if self.table.held_by(w.id)]
            if busy:
                if not busy_workers:
                    raise LocalPodError("no worker is running a job right now")
                worker = busy_workers[0]
            else:
                idle = [w for w in alive if w not in busy_workers and w.phase == "ready"]
                if not (idle or alive):
                    raise LocalPodError("no live worker to kill")
                worker = (idle or alive)[0]
        self._kill(worker, "killed on command")
        return worker.id

    def retire(self, worker: WorkerProcess) -> None:
        """Stop a worker for good (a rolling release replaces it); it is not restarted."""
        self._kill(worker, "stop")

    def _kill(self, worker: WorkerProcess, reason: str) -> None:
        self.counters["workers_killed"] += 1
        self.supervisor.kill(worker, reason)
        self._worker_exited(worker)

    def _worker_exited(self, worker: WorkerProcess) -> None:
        self.counters["workers_died"] += 1
        reason = worker.killed_for or worker.start_error or _exit_reason(worker.exit_code)
        failed = self.table.worker_died(worker.id, reason)
        log.warning(
            "localpod: %s exited (%s); %d running job(s) failed", worker.id, reason, len(failed)
        )
        if worker.killed_for is None and worker.ready_at is None:
            self.init_crashes.append(worker.id)
        if self.closing or not self.settings.restart_dead_workers or worker.killed_for == "stop":
            return
        if worker.ready_at is None and worker.killed_for is None:
            self._init_failures[worker.kind] += 1
            delay = min(30.0, 2.0 ** (self._init_failures[worker.kind] - 1))
        else:
            self._init_failures[worker.kind] = 0
            delay = 0.0
        replacement = self.supervisor.add(
            worker.kind, worker.handler_path, start_delay_s=delay,
            env_overrides=worker.env_overrides,
        )  # fmt: skip
        self.counters["workers_replaced"] += 1
        log.info("localpod: %s replaces %s (in %.1f s)", replacement.id, worker.id, delay)

    def worker_state(self, worker: WorkerProcess) -> str:
        if worker.phase == "dead":
            return "dead"
        if worker.phase in ("waiting", "initializing"):
            return "initializing"
        return "running" if self.table.held_by(worker.id) else "ready"

    def workers_view(self) -> list[dict[str, Any]]:
        return [
            {
                "id": worker.id,
                "pid": worker.pid,
                "state": self.worker_state(worker),
                "kind": worker.kind,
                "jobs_done": worker.jobs_done,
                "started_at": worker.started_at,
                "ready_at": worker.ready_at,
                "exited_at": worker.exited_at,
                "exit_code": worker.exit_code,
                "killed_for": worker.killed_for,
                "last_ping_at": worker.last_ping_at,
                "holding": sorted(self.table.held_by(worker.id)),
                "log_path": str(worker.log_path),
                "handler": str(worker.handler_path),
            }
            for worker in self.supervisor.workers.values()
        ]

    def health_view(self) -> dict[str, Any]:
        states = [self.worker_state(w) for w in self.supervisor.workers.values()]
        now = time.time()
        unhealthy = sum(
            1
            for w in self.supervisor.workers.values()
            if w.phase == "dead"
            and w.killed_for != "stop"
            and w.exited_at is not None
            and now - w.exited_at < UNHEALTHY_WINDOW_S
        )
        return {
            "jobs": self.table.counts(),
            "workers": {
                "idle": states.count("ready"),
                "initializing": states.count("initializing"),
                "ready": states.count("ready") + states.count("running"),
                "running": states.count("running"),
                "throttled": 0,
                "unhealthy": unhealthy,
            },
            "localpod": {
                "endpointId": self.settings.endpoint_id,
                "workers": [
                    {k: v for k, v in w.items() if k in ("id", "state", "kind", "jobs_done")}
                    for w in self.workers_view()
                ],
            },
        }

    def all_counters(self) -> dict[str, int]:
        return {**self.table.counters, **self.counters}

    # ------------------------------------------------------------------ public API

    def rate_limited(self, operation: str) -> int | None:
        """None when the request may go on, else the Retry-After seconds."""
        limiter = self._limiters.get(operation)
        retry_after = limiter.acquire() if limiter is not None else None
        if retry_after is not None:
            self.counters["rate_limited"] += 1
        return retry_after

    def submit(self, body: Mapping[str, Any], route: Route) -> Job:
        """A validated ``/run`` or ``/runsync`` body -> a queued job."""
        if nested_deeper_than(body, MAX_NESTING_DEPTH):
            raise PolicyError(
                f"the request body is nested more than {MAX_NESTING_DEPTH} levels deep; "
                "send a flat input (a few levels of objects and arrays)"
            )
        policy = self._policy(body.get("policy"))
        webhook = body.get("webhook")
        if webhook is not None:
            _check_webhook(webhook)
        retention = (
            self.settings.runsync_retention_s if route == "runsync"
            else self.settings.result_retention_s
        )  # fmt: skip
        job = self.table.submit(
            body["input"], route=route, policy=policy, retention_s=retention,
            webhook=webhook, s3_config=body.get("s3Config"),
        )  # fmt: skip
        self._work.fire()
        return job

    def _policy(self, raw: Any) -> JobPolicy:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise PolicyError("policy must be an object")
        minimums = self.settings.enforce_policy_minimums
        timeout_ms = _policy_ms(
            raw, "executionTimeout", EXECUTION_TIMEOUT_MIN_MS if minimums else 1,
            default_ms=self.settings.execution_timeout_s * 1000,
        )  # fmt: skip
        ttl_ms = _policy_ms(raw, "ttl", TTL_MIN_MS if minimums else 1, DEFAULT_TTL_S * 1000)
        low_priority = raw.get("lowPriority", False)
        if not isinstance(low_priority, bool):
            raise PolicyError("policy.lowPriority must be true or false")
        return JobPolicy(execution_timeout_s=timeout_ms / 1000, ttl_s=ttl_ms / 1000)

    async def wait_for_end(self, job_id: str, timeout_s: float) -> None:
        """Return when the job has ended or after ``timeout_s``, whichever comes first."""
        job = self.table.get(job_id)
        if job.state.terminal:
            return
        event = self._end_events.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout_s)

    def cancel(self, job_id: str) -> Job:
        job = self.table.cancel(job_id)
        self._stops.fire()
        return job

    def retry(self, job_id: str) -> Job:
        job = self.table.retry(job_id)
        self._work.fire()
        return job

    def _job_ended(self, job: Job) -> None:
        self._ends.fire()
        event = self._end_events.pop(job.id, None)
        if event is not None:
            event.set()
        if job.webhook:
            self._spawn(self._deliver_webhook(job.webhook, job.status_view()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver_webhook(self, url: str, payload: dict[str, Any]) -> None:
        """POST the final status object to the job's webhook; two more tries on failure."""
        async with httpx.AsyncClient(timeout=10) as client:
            for attempt in range(WEBHOOK_ATTEMPTS):
                try:
                    response = await client.post(url, json=payload)
                    if response.status_code == 200:
                        self.counters["webhooks_delivered"] += 1
                        return
                except httpx.HTTPError as exc:
                    log.info("localpod: webhook %s failed: %s", url, exc)
                if attempt + 1 < WEBHOOK_ATTEMPTS:
                    await asyncio.sleep(WEBHOOK_RETRY_DELAY_S)
        self.counters["webhooks_failed"] += 1

    # ------------------------------------------------------------------ worker side

    def known_worker(self, worker_id: str) -> WorkerProcess | None:
        worker = self.supervisor.workers.get(worker_id)
        return worker if worker is not None and worker.alive else None

    async def take_jobs(
        self, worker: WorkerProcess, n: int, job_in_progress: bool
    ) -> list[tuple[Job, bytes]]:
        """job-take: hand out up to ``n`` jobs with their job-take JSON (built before a job is
        marked taken), holding the poll open while the queue is empty. The first job-take marks
        the worker ready (its model is loaded)."""
        self.counters["job_take_requests"] += 1
        if worker.phase == "initializing":
            worker.phase = "ready"
            worker.ready_at = time.time()
            self._init_failures[worker.kind] = 0
            log.info("localpod: %s ready", worker.id)
        if not job_in_progress:
            self.table.worker_released(worker.id)
        deadline = time.monotonic() + self.settings.poll_hold_s
        if not self.may_take(worker):
            # A stale worker still finishing its job gets nothing; hold its poll as an empty
            # queue does (until the job ends, at most poll_hold_s), or it asks again at once:
            # hundreds of job-takes a second for as long as the job runs.
            while self.table.held_by(worker.id) and not self.closing and worker.alive:
                if not await self._ends.wait(deadline - time.monotonic()):
                    break
            if not self.table.held_by(worker.id) and worker.alive:
                self.retire(worker)
            self.counters["job_take_empty"] += 1
            return []
        while True:
            if self.closing or not worker.alive:
                break
            jobs = self.table.take_encoded(worker.id, n)
            if jobs:
                return jobs
            if not await self._work.wait(deadline - time.monotonic()):
                break
        self.counters["job_take_empty"] += 1
        return []

    async def stop_signals(self, worker: WorkerProcess) -> list[str]:
        """job-stop: job ids the worker must stop, holding the poll open while there are none."""
        self.counters["job_stop_polls"] += 1
        deadline = time.monotonic() + self.settings.poll_hold_s
        while not self.closing and worker.alive:
            ids = self.table.pop_stop_signals(worker.id)
            if ids:
                return ids
            left = deadline - time.monotonic()
            if left <= 0:
                break
            resend = self.table.next_stop_resend_s(worker.id)
            await self._stops.wait(left if resend is None else min(left, resend))
        return []

    def job_done(self, worker: WorkerProcess, job_id: str, body: bytes | int) -> DoneOutcome | str:
        """job-done. ``body`` is the raw body, or its size when it was too large to keep.
        Returns the outcome, or an error message for a body it refuses."""
        size = body if isinstance(body, int) else len(body)
        if isinstance(body, int) or size > MAX_RESULT_BYTES:
            self.counters["results_rejected"] += 1
            message = (
                f"the worker's result is {size} bytes; RunPod accepts at most "
                f"{MAX_RESULT_BYTES} bytes. Return large audio as a storage URL."
            )
            self.table.fail_running(worker.id, job_id, platform_error("result_too_large", message))
            return message
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            self.counters["results_rejected"] += 1
            message = "the job-done body is not JSON"
            self.table.fail_running(worker.id, job_id, platform_error("invalid_result", message))
            return message
        outcome = self.table.record_result(worker.id, job_id, parsed)
        if outcome is DoneOutcome.ACCEPTED:
            worker.jobs_done += 1
        return outcome

    def stream_chunk(self, worker: WorkerProcess, job_id: str, body: bytes | int) -> bool | str:
        """A stream post (``body`` as for :meth:`job_done`). True when the chunk was kept."""
        size = body if isinstance(body, int) else len(body)
        if isinstance(body, int) or size > MAX_STREAM_CHUNK_BYTES:
            self.counters["results_rejected"] += 1
            message = (
                f"a stream chunk of {size} bytes; RunPod accepts at most "
                f"{MAX_STREAM_CHUNK_BYTES} bytes per chunk"
            )
            self.table.fail_running(
                worker.id, job_id, platform_error("stream_chunk_too_large", message)
            )
            return message
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            return "the stream body is not JSON"
        chunk = parsed.get("output") if isinstance(parsed, dict) else parsed
        return self.table.add_stream_chunk(worker.id, job_id, chunk)

    def ping(self, worker: WorkerProcess, params: Mapping[str, str]) -> None:
        """A heartbeat. The SDK also reports a failed fitness check through it
        (``status=unhealthy``) just before the worker exits."""
        self.counters["pings"] += 1
        worker.last_ping_at = time.time()
        if params.get("status") == "unhealthy":
            log.warning(
                "localpod: %s failed its fitness check %s: %s",
                worker.id, params.get("check"), params.get("reason"),
            )  # fmt: skip


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _policy_ms(raw: Mapping[str, Any], key: str, minimum: int, default_ms: float) -> float:
    value = raw.get(key)
    if value is None:
        return default_ms
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PolicyError(f"policy.{key} must be a number of milliseconds")
    if not minimum <= value <= POLICY_MAX_MS:
        raise PolicyError(
            f"policy.{key} must be between {minimum} and {POLICY_MAX_MS} ms; got {value}"
        )
    return float(value)


def _check_webhook(url: Any) -> None:
    if not isinstance(url, str):
        raise PolicyError("webhook must be a URL")
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise PolicyError("localpod only delivers webhooks to http://127.0.0.1 or localhost")

