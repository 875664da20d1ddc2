"""The job table: every job localpod knows, its state machine, the queue and which worker holds
which job. Pure bookkeeping: no I/O, no asyncio, an injectable clock, so every transition can be
tested without processes.

States and transitions (RunPod's names)::

    IN_QUEUE ──take──> IN_PROGRESS ──job-done──> COMPLETED | FAILED
       │                   ├── cancel ──────────> CANCELLED   (+ stop signal to the worker)
       │                   ├── execution timeout > TIMED_OUT  (+ stop signal, kill after grace)
       │                   ├── ttl expiry ──────> TIMED_OUT   (+ stop signal, kill after grace)
       │                   └── worker died / moved on without a result ──> FAILED
       ├── cancel / purge-queue ───────────────> CANCELLED
       └── ttl expiry ──────────────────────────> TIMED_OUT
    FAILED | TIMED_OUT ──retry──> IN_QUEUE (same id)

A terminal job stays readable for its retention period, then it is forgotten (404).

"Held" is separate from the state: a worker holds a job from job-take until it reports the result,
asks for work again with ``job_in_progress=0`` (it let the job go), or dies. A cancelled or
timed-out job can still be held by a worker that cannot interrupt its handler; its late result
is ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Route = Literal["run", "runsync"]


class JobState(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT}
)
RETRYABLE_STATES = frozenset({JobState.FAILED, JobState.TIMED_OUT})


class DoneOutcome(StrEnum):
    """What a job-done post did."""

    ACCEPTED = "accepted"  # the job's result
    DUPLICATE = "duplicate"  # the same worker posted the same result again (SDK retry)
    LATE = "late"  # the job had already ended (cancelled, timed out, failed over)
    UNKNOWN = "unknown"  # no such job (never existed or already forgotten)


class JobNotFound(KeyError):
    """No job with that id (never submitted, or past its retention)."""


class JobNotRetryable(ValueError):
    """/retry on a job that is not FAILED or TIMED_OUT."""


def platform_error(code: str, message: str) -> dict[str, str]:
    """An error localpod itself puts on a job (as opposed to one the worker reported)."""
    return {"code": code, "message": message}


def encode_take_view(job: Job) -> bytes:
    """A job's job-take entry as JSON text with every non-ASCII character escaped: a job's input
    is handed on as it was accepted, and JSON escapes may hold lone surrogates that cannot be
    encoded as UTF-8."""
    return json.dumps(job.job_take_view(), ensure_ascii=True, separators=(",", ":")).encode(
        "ascii"
    )


@dataclass
class Job:
    id: str
    input: Any
    route: Route
    execution_timeout_s: float
    ttl_s: float
    retention_s: float
    submitted_wall: float
    queued_at: float  # monotonic; reset by /retry
    webhook: str | None = None
    s3_config: Any = None
    state: JobState = JobState.IN_QUEUE
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    output: Any = None
    has_output: bool = False
    error: Any = None
    done_by: str | None = None
    stop_requested_at: float | None = None
    stop_signalled_at: float | None = None
    takes: int = 0
    retries: int = 0
    stream: list[Any] = field(default_factory=list)
    stream_delivered: int = 0

    @property
    def delay_ms(self) -> int | None:
        """Time in the queue: until a worker took it, or until it ended without running."""
        end = self.started_at if self.started_at is not None else self.finished_at
        return None if end is None else round((end - self.queued_at) * 1000)

    @property
    def execution_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at) * 1000)

    def job_take_view(self) -> dict[str, Any]:
        """What a worker receives from job-take."""
        view: dict[str, Any] = {"id": self.id, "input": self.input}
        if self.s3_config is not None:
            view["s3Config"] = self.s3_config
        return view

    def status_view(self) -> dict[str, Any]:
        """RunPod's status object (``/status``, ``/runsync``, webhooks)."""
        view: dict[str, Any] = {"id": self.id, "status": self.state.value}
        if self.delay_ms is not None:
            view["delayTime"] = self.delay_ms
        if self.execution_ms is not None:
            view["executionTime"] = self.execution_ms
        if self.worker_id is not None:
            view["workerId"] = self.worker_id
        if self.has_output:
            view["output"] = self.output
        if self.error is not None:
            view["error"] = self.error
        return view

    def summary(self) -> dict[str, Any]:
        """One row of :meth:`JobTable.snapshot`."""
        return {
            "id": self.id,
            "state": self.state.value,
            "route": self.route,
            "worker_id": self.worker_id,
            "delay_ms": self.delay_ms,
            "execution_ms": self.execution_ms,
            "takes": self.takes,
            "retries": self.retries,
            "submitted_at": self.submitted_wall,
            "stream_chunks": len(self.stream),
        }


@dataclass
class JobPolicy:
    """Per-job limits, already validated and in seconds."""

    execution_timeout_s: float
    ttl_s: float


@dataclass
class Expiry:
    """What one :meth:`JobTable.expire` pass did."""

    timed_out: list[Job] = field(default_factory=list)
    forgotten: int = 0


#: How often a stop signal is sent again while the worker still holds the job.
STOP_RESEND_S = 1.0

COUNTER_NAMES = (
    "jobs_submitted", "jobs_taken", "jobs_completed", "jobs_failed", "jobs_cancelled",
    "jobs_timed_out", "jobs_retried", "jobs_purged", "jobs_forgotten", "jobs_done_posts",
    "duplicate_done_posts", "late_done_posts", "unknown_done_posts", "stream_posts",
    "late_stream_posts", "stop_signals_sent", "stop_signals_resent", "workers_released_jobs",
    "jobs_unsendable",
)  # fmt: skip


class JobTable:
    """All jobs, the FIFO queue, and who holds what. Not thread-safe: one owner (the control
    plane's event loop) calls it."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._held: dict[str, set[str]] = {}
        self._stops: dict[str, list[str]] = {}
        self._on_end: list[Callable[[Job], None]] = []
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)

    # ------------------------------------------------------------------ observers

    def on_end(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` whenever a job reaches a terminal state."""
        self._on_end.append(callback)

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(job_id) from None

    def __len__(self) -> int:
        return len(self._jobs)

    def held_by(self, worker_id: str) -> frozenset[str]:
        return frozenset(self._held.get(worker_id, ()))

    def queue_length(self) -> int:
        return sum(1 for job_id in self._queue if self._queued(job_id))

    def snapshot(self) -> list[dict[str, Any]]:
        return [job.summary() for job in self._jobs.values()]

    def counts(self) -> dict[str, int]:
        """Jobs by state, as RunPod's ``/health`` names them."""
        by_state = {state: 0 for state in JobState}
        for job in self._jobs.values():
            by_state[job.state] += 1
        return {
            "completed": by_state[JobState.COMPLETED],
            "failed": by_state[JobState.FAILED],
            "inProgress": by_state[JobState.IN_PROGRESS],
            "inQueue": by_state[JobState.IN_QUEUE],
            "retried": self.counters["jobs_retried"],
            "cancelled": by_state[JobState.CANCELLED],
            "timedOut": by_state[JobState.TIMED_OUT],
        }

    # ------------------------------------------------------------------ submission side

    def submit(
        self,
        job_input: Any,
        *,
        route: Route,
        policy: JobPolicy,
        retention_s: float,
        webhook: str | None = None,
        s3_config: Any = None,
    ) -> Job:
        job_id = str(uuid.uuid4())
        if route == "runsync":
            job_id = f"sync-{job_id}"
        now = self._clock()
        job = Job(
            id=job_id, input=job_input, route=route,
            execution_timeout_s=policy.execution_timeout_s, ttl_s=policy.ttl_s,
            retention_s=retention_s, submitted_wall=self._wall(), queued_at=now,
            webhook=webhook, s3_config=s3_config,
        )  # fmt: skip
        self._jobs[job_id] = job
        self._queue.append(job_id)
        self.counters["jobs_submitted"] += 1
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job; a job that already ended is left as it is."""
        job = self.get(job_id)
        if job.state is JobState.IN_QUEUE:
            self._end(job, JobState.CANCELLED)
        elif job.state is JobState.IN_PROGRESS:
            self._end(job, JobState.CANCELLED)
            self._request_stop(job)
        return job

    def retry(self, job_id: str) -> Job:
        """Put a FAILED or TIMED_OUT job back at the end of the queue, same id. The TTL clock
        restarts: a retry is a new submission of the same input."""
        job = self.get(job_id)
        if job.state not in RETRYABLE_STATES:
            raise JobNotRetryable(
                f"only FAILED or TIMED_OUT jobs can be retried; job {job_id} is {job.state.value}"
            )
        job.state = JobState.IN_QUEUE
        job.queued_at = self._clock()
        job.started_at = job.finished_at = job.stop_requested_at = job.stop_signalled_at = None
        job.worker_id = job.done_by = None
        job.output, job.has_output, job.error = None, False, None
        job.stream, job.stream_delivered = [], 0
        job.retries += 1
        self._queue.append(job.id)
        self.counters["jobs_retried"] += 1
        return job

    def purge_queue(self) -> int:
        """Cancel every queued job; running jobs are not touched."""
        purged = 0
        while self._queue:
            job_id = self._queue.popleft()
            if self._queued(job_id):
                job = self._jobs[job_id]
                job.error = platform_error("purged", "removed from the queue by /purge-queue")
                self._end(job, JobState.CANCELLED)
                purged += 1
        self.counters["jobs_purged"] += purged
        return purged

    def stream_view(self, job_id: str) -> dict[str, Any]:
        """RunPod's ``/stream`` answer: the chunks not yet delivered (each delivered once)."""
        job = self.get(job_id)
        fresh = job.stream[job.stream_delivered:]
        job.stream_delivered = len(job.stream)
        return {
            "id": job.id,
            "status": job.state.value,
            "stream": [{"output": chunk} for chunk in fresh],
        }

    # ------------------------------------------------------------------ worker side

    def take(self, worker_id: str, n: int = 1) -> list[Job]:
        """Hand up to ``n`` queued jobs, oldest first, to ``worker_id``."""
        return [job for job, _ in self.take_encoded(worker_id, n)]

    def take_encoded(self, worker_id: str, n: int = 1) -> list[tuple[Job, bytes]]:
        """Hand up to ``n`` queued jobs, oldest first, to ``worker_id``, each with the JSON text
        job-take sends for it (:func:`encode_take_view`). A job's text is built before the job
        is marked taken: one whose input cannot be serialised ends FAILED
        (``input_unsendable``) on its own, and the jobs taken with it are handed out."""
        taken: list[tuple[Job, bytes]] = []
        now = self._clock()
        while self._queue and len(taken) < n:
            job_id = self._queue.popleft()
            if not self._queued(job_id):
                continue
            job = self._jobs[job_id]
            try:
                body = encode_take_view(job)
            except (ValueError, TypeError, RecursionError) as exc:
                job.error = platform_error(
                    "input_unsendable",
                    f"the job's input cannot be serialised for a worker ({type(exc).__name__}); "
                    "send plain JSON nested at most a few levels deep",
                )
                self.counters["jobs_unsendable"] += 1
                self._end(job, JobState.FAILED)
                continue
            job.state = JobState.IN_PROGRESS
            job.started_at = now
            job.worker_id = worker_id
            job.takes += 1
            self._held.setdefault(worker_id, set()).add(job_id)
            taken.append((job, body))
        self.counters["jobs_taken"] += len(taken)
        return taken

    def record_result(self, worker_id: str, job_id: str, body: Any) -> DoneOutcome:
        """A job-done post. ``body`` is what the SDK sent: ``{"output": ...}`` and/or
        ``{"error": ...}``; the error is kept exactly as sent (a string or an object)."""
        self.counters["jobs_done_posts"] += 1
        job = self._jobs.get(job_id)
        if job is None:
            self.counters["unknown_done_posts"] += 1
            return DoneOutcome.UNKNOWN
        held = self._release(worker_id, job_id)
        if job.state is JobState.IN_PROGRESS and job.worker_id == worker_id and held:
            body = body if isinstance(body, dict) else {"output": body}
            if "output" in body:
                job.output, job.has_output = body["output"], True
            error = body.get("error")
            job.error = error if error not in (None, "") else None
            job.done_by = worker_id
            self._end(job, JobState.FAILED if job.error is not None else JobState.COMPLETED)
            return DoneOutcome.ACCEPTED
        if job.done_by == worker_id:
            self.counters["duplicate_done_posts"] += 1
            return DoneOutcome.DUPLICATE
        self.counters["late_done_posts"] += 1
        return DoneOutcome.LATE

    def add_stream_chunk(self, worker_id: str, job_id: str, chunk: Any) -> bool:
        """A stream post; False when the job is not running on that worker any more."""
        self.counters["stream_posts"] += 1
        job = self._jobs.get(job_id)
        if (
            job is None
            or job.state is not JobState.IN_PROGRESS
            or job.worker_id != worker_id
            or job_id not in self._held.get(worker_id, ())
        ):
            self.counters["late_stream_posts"] += 1
            return False
        job.stream.append(chunk)
        return True

    def fail_running(self, worker_id: str, job_id: str, error: dict[str, str]) -> bool:
        """End a job the worker holds as FAILED with a platform error (e.g. a result too big
        to accept). Returns False when the job is not running on that worker."""
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.IN_PROGRESS or job.worker_id != worker_id:
            return False
        self._release(worker_id, job_id)
        job.error = error
        self._end(job, JobState.FAILED)
        return True

    def worker_released(self, worker_id: str) -> list[Job]:
        """The worker asked for work with ``job_in_progress=0``: it holds nothing any more.
        A job it still ran for us without having reported a result is lost: FAILED."""
        lost: list[Job] = []
        for job_id in sorted(self._held.pop(worker_id, set())):
            job = self._jobs.get(job_id)
            self.counters["workers_released_jobs"] += 1
            if job is not None and job.state is JobState.IN_PROGRESS:
                job.error = platform_error(
                    "result_lost",
                    f"worker {worker_id} moved on to new work without reporting this job's "
                    "result (its job-done post never arrived or was refused)",
                )
                self._end(job, JobState.FAILED)
                lost.append(job)
        self._stops.pop(worker_id, None)
        return lost

    def worker_died(self, worker_id: str, reason: str) -> list[Job]:
        """The worker's process exited: every job it was running ends FAILED."""
        failed: list[Job] = []
        for job_id in sorted(self._held.pop(worker_id, set())):
            job = self._jobs.get(job_id)
            if job is not None and job.state is JobState.IN_PROGRESS:
                job.error = platform_error(
                    "worker_died", f"worker {worker_id} died while running this job ({reason})"
                )
                self._end(job, JobState.FAILED)
                failed.append(job)
        self._stops.pop(worker_id, None)
        return failed

    def pop_stop_signals(self, worker_id: str) -> list[str]:
        """Job ids the worker must stop, through the job-stop channel: new stop requests, and
        again every :data:`STOP_RESEND_S` while the worker still holds a job it was told to
        stop. The runpod SDK drops a signal that arrives after it took a job but before the
        job's task started (``JobScaler.stop_job``: "No in-progress job"); RunPod does not say
        whether it sends a signal again, so localpod does."""
        now = self._clock()
        held = self._held.get(worker_id, set())
        fresh = [job_id for job_id in self._stops.pop(worker_id, []) if job_id in held]
        again = [job_id for job_id in sorted(held - set(fresh)) if self._stop_due(job_id, now)]
        for job_id in fresh + again:
            self._jobs[job_id].stop_signalled_at = now
        self.counters["stop_signals_sent"] += len(fresh)
        self.counters["stop_signals_resent"] += len(again)
        return fresh + again

    def next_stop_resend_s(self, worker_id: str) -> float | None:
        """Seconds until a stop signal for this worker is due again (None: none is)."""
        now = self._clock()
        waits = [
            max(0.0, job.stop_signalled_at + STOP_RESEND_S - now)
            for job_id in self._held.get(worker_id, ())
            if (job := self._jobs.get(job_id)) is not None and job.stop_signalled_at is not None
        ]
        return min(waits, default=None)

    def _stop_due(self, job_id: str, now: float) -> bool:
        job = self._jobs.get(job_id)
        return (
            job is not None
            and job.stop_signalled_at is not None
            and now - job.stop_signalled_at >= STOP_RESEND_S
        )

    def has_stop_signals(self, worker_id: str) -> bool:
        return bool(self._stops.get(worker_id))

    def overdue_stops(self, grace_s: float) -> set[str]:
        """Workers still holding a TIMED_OUT job ``grace_s`` after they were told to stop it:
        their handler cannot be interrupted, so they have to be killed."""
        now = self._clock()
        workers: set[str] = set()
        for worker_id, job_ids in self._held.items():
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if (
                    job is not None
                    and job.state is JobState.TIMED_OUT
                    and job.stop_requested_at is not None
                    and now - job.stop_requested_at >= grace_s
                ):
                    workers.add(worker_id)
        return workers

    # ------------------------------------------------------------------ time

    def expire(self) -> Expiry:
        """Apply execution timeouts, TTLs and result retention as of now."""
        now = self._clock()
        result = Expiry()
        for job in list(self._jobs.values()):
            if job.state is JobState.IN_QUEUE and now - job.queued_at >= job.ttl_s:
                job.error = platform_error(
                    "ttl_expired",
                    f"no worker took the job within its ttl ({job.ttl_s * 1000:.0f} ms)",
                )
                self._end(job, JobState.TIMED_OUT)
                result.timed_out.append(job)
            elif job.state is JobState.IN_PROGRESS:
                assert job.started_at is not None
                if now - job.started_at >= job.execution_timeout_s:
                    job.error = platform_error(
                        "execution_timeout",
                        f"the job ran longer than its executionTimeout "
                        f"({job.execution_timeout_s * 1000:.0f} ms)",
                    )
                elif now - job.queued_at >= job.ttl_s:
                    job.error = platform_error(
                        "ttl_expired", f"the job outlived its ttl ({job.ttl_s * 1000:.0f} ms)"
                    )
                else:
                    continue
                self._end(job, JobState.TIMED_OUT)
                self._request_stop(job)
                result.timed_out.append(job)
            elif (
                job.state.terminal
                and job.finished_at is not None
                and now - job.finished_at >= job.retention_s
                and not self._is_held(job.id)
            ):
                del self._jobs[job.id]
                result.forgotten += 1
        self.counters["jobs_forgotten"] += result.forgotten
        return result

    # ------------------------------------------------------------------ internals

    def _queued(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job is not None and job.state is JobState.IN_QUEUE

    def _is_held(self, job_id: str) -> bool:
        return any(job_id in ids for ids in self._held.values())

    def _release(self, worker_id: str, job_id: str) -> bool:
        held = self._held.get(worker_id)
        if held is None or job_id not in held:
            return False
        held.discard(job_id)
        if not held:
            del self._held[worker_id]
        return True

    def _request_stop(self, job: Job) -> None:
        if job.worker_id is None:
            return
        job.stop_requested_at = self._clock()
        if job.id in self._held.get(job.worker_id, ()):
            self._stops.setdefault(job.worker_id, []).append(job.id)

    def _end(self, job: Job, state: JobState) -> None:
        job.state = state
        job.finished_at = self._clock()
        self.counters[_END_COUNTERS[state]] += 1
        for callback in self._on_end:
            callback(job)


_END_COUNTERS = {
    JobState.COMPLETED: "jobs_completed",
    JobState.FAILED: "jobs_failed",
    JobState.CANCELLED: "jobs_cancelled",
    JobState.TIMED_OUT: "jobs_timed_out",
}
