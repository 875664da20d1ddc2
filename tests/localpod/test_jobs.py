"""The job table's state machine, on a fake clock (no processes, no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from honora_tts.localpod.jobs import (
    STOP_RESEND_S,
    DoneOutcome,
    JobNotFound,
    JobNotRetryable,
    JobPolicy,
    JobState,
    JobTable,
)
from honora_tts.localpod.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


POLICY = JobPolicy(execution_timeout_s=600, ttl_s=86400)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> JobTable:
    return JobTable(clock=clock, wall_clock=clock)


def submit(table: JobTable, route: str = "run", policy: JobPolicy = POLICY, **kw):
    return table.submit({"n": 1}, route=route, policy=policy, retention_s=1800, **kw)


def test_lifecycle_times_and_status_view(table: JobTable, clock: FakeClock) -> None:
    job = submit(table)
    assert job.status_view() == {"id": job.id, "status": "IN_QUEUE"}
    clock.advance(1.5)
    [taken] = table.take("w1")
    assert taken is job and job.state is JobState.IN_PROGRESS
    assert job.status_view() == {
        "id": job.id, "status": "IN_PROGRESS", "delayTime": 1500, "workerId": "w1"
    }
    clock.advance(2.25)
    assert table.record_result("w1", job.id, {"output": {"ok": True}}) is DoneOutcome.ACCEPTED
    assert job.status_view() == {
        "id": job.id, "status": "COMPLETED", "delayTime": 1500, "executionTime": 2250,
        "workerId": "w1", "output": {"ok": True},
    }
    assert table.held_by("w1") == frozenset()


def test_runsync_ids_and_fifo_order(table: JobTable) -> None:
    first, second = submit(table, route="runsync"), submit(table)
    assert first.id.startswith("sync-") and not second.id.startswith("sync-")
    assert [j.id for j in table.take("w1", 5)] == [first.id, second.id]
    assert table.take("w2") == []


def test_error_with_output_is_failed_and_keeps_both(table: JobTable) -> None:
    job = submit(table)
    table.take("w1")
    body = {"output": {"version": {"handler_version": 2}}, "error": {"code": "x", "message": "m"}}
    table.record_result("w1", job.id, body)
    view = job.status_view()
    assert view["status"] == "FAILED"
    assert view["error"] == {"code": "x", "message": "m"}
    assert view["output"] == {"version": {"handler_version": 2}}


def test_error_string_without_output(table: JobTable) -> None:
    job = submit(table)
    table.take("w1")
    table.record_result("w1", job.id, {"error": "No sections provided"})
    assert job.state is JobState.FAILED
    assert "output" not in job.status_view()
    assert job.status_view()["error"] == "No sections provided"


def test_done_is_idempotent_and_late_results_are_dropped(table: JobTable) -> None:
    job = submit(table)
    table.take("w1")
    assert table.record_result("w1", job.id, {"output": 1}) is DoneOutcome.ACCEPTED
    assert table.record_result("w1", job.id, {"output": 2}) is DoneOutcome.DUPLICATE
    assert job.output == 1
    assert table.record_result("w1", "nope", {"output": 1}) is DoneOutcome.UNKNOWN
    other = submit(table)
    table.take("w2")
    table.cancel(other.id)
    assert table.record_result("w2", other.id, {"output": 3}) is DoneOutcome.LATE
    assert other.state is JobState.CANCELLED and not other.has_output
    counters = table.counters
    assert counters["duplicate_done_posts"] == 1
    assert counters["late_done_posts"] == 1
    assert counters["unknown_done_posts"] == 1


def test_cancel_running_sends_a_stop_signal_again_until_released(
    table: JobTable, clock: FakeClock
) -> None:
    job = submit(table)
    table.take("w1")
    assert table.next_stop_resend_s("w1") is None
    table.cancel(job.id)
    assert job.state is JobState.CANCELLED
    assert table.pop_stop_signals("w1") == [job.id]
    assert table.pop_stop_signals("w1") == []
    assert table.next_stop_resend_s("w1") == pytest.approx(STOP_RESEND_S)
    clock.advance(STOP_RESEND_S / 2)
    assert table.pop_stop_signals("w1") == []
    assert table.next_stop_resend_s("w1") == pytest.approx(STOP_RESEND_S / 2)
    clock.advance(STOP_RESEND_S / 2)
    assert table.pop_stop_signals("w1") == [job.id], "the worker still holds it: sent again"
    assert table.counters["stop_signals_sent"] == 1
    assert table.counters["stop_signals_resent"] == 1
    table.worker_released("w1")
    clock.advance(STOP_RESEND_S)
    assert table.pop_stop_signals("w1") == [] and table.next_stop_resend_s("w1") is None
    queued = submit(table)
    table.cancel(queued.id)
    assert queued.state is JobState.CANCELLED
    assert table.take("w2") == []
    ended = table.cancel(job.id)
    assert ended.state is JobState.CANCELLED


def test_execution_timeout_then_kill_after_grace(table: JobTable, clock: FakeClock) -> None:
    job = submit(table, policy=JobPolicy(execution_timeout_s=5, ttl_s=86400))
    table.take("w1")
    clock.advance(4.9)
    assert table.expire().timed_out == []
    clock.advance(0.2)
    assert table.expire().timed_out == [job]
    assert job.state is JobState.TIMED_OUT
    assert job.error["code"] == "execution_timeout"
    assert table.pop_stop_signals("w1") == [job.id]
    assert table.overdue_stops(grace_s=3) == set()
    clock.advance(3)
    assert table.overdue_stops(grace_s=3) == {"w1"}
    table.worker_died("w1", "killed")
    assert job.state is JobState.TIMED_OUT, "a timed-out job stays TIMED_OUT when its worker dies"
    assert table.overdue_stops(grace_s=3) == set()


def test_ttl_expires_queued_job_as_timed_out(table: JobTable, clock: FakeClock) -> None:
    job = submit(table, policy=JobPolicy(execution_timeout_s=600, ttl_s=10))
    clock.advance(10)
    table.expire()
    assert job.state is JobState.TIMED_OUT
    assert job.error["code"] == "ttl_expired"
    assert job.status_view()["delayTime"] == 10_000
    assert table.take("w1") == []


def test_retention_forgets_finished_jobs(table: JobTable, clock: FakeClock) -> None:
    job = table.submit({}, route="runsync", policy=POLICY, retention_s=60)
    table.take("w1")
    table.record_result("w1", job.id, {"output": 1})
    clock.advance(59)
    assert table.expire().forgotten == 0
    clock.advance(1)
    assert table.expire().forgotten == 1
    with pytest.raises(JobNotFound):
        table.get(job.id)


def test_worker_death_fails_its_jobs_only(table: JobTable) -> None:
    a, b = submit(table), submit(table)
    table.take("w1")
    table.take("w2")
    failed = table.worker_died("w1", "killed by signal 9")
    assert failed == [a]
    assert a.state is JobState.FAILED and a.error["code"] == "worker_died"
    assert "killed by signal 9" in a.error["message"]
    assert b.state is JobState.IN_PROGRESS


def test_released_worker_loses_unreported_jobs(table: JobTable) -> None:
    job = submit(table)
    table.take("w1")
    assert table.worker_released("w1") == [job]
    assert job.state is JobState.FAILED and job.error["code"] == "result_lost"


def test_retry_requeues_same_id(table: JobTable) -> None:
    job = submit(table)
    table.take("w1")
    table.record_result("w1", job.id, {"error": "boom"})
    table.retry(job.id)
    assert job.state is JobState.IN_QUEUE and job.error is None and job.retries == 1
    [again] = table.take("w2")
    assert again is job and job.takes == 2
    table.record_result("w2", job.id, {"output": "ok"})
    with pytest.raises(JobNotRetryable):
        table.retry(job.id)
    assert table.counts()["retried"] == 1


def test_purge_cancels_only_queued(table: JobTable) -> None:
    running, queued1, queued2 = submit(table), submit(table), submit(table)
    table.take("w1")
    assert table.purge_queue() == 2
    assert {queued1.state, queued2.state} == {JobState.CANCELLED}
    assert running.state is JobState.IN_PROGRESS
    assert table.counts()["inQueue"] == 0 and table.counts()["inProgress"] == 1


def test_stream_chunks_are_delivered_once(table: JobTable) -> None:
    job = submit(table)
    table.take("w1")
    assert table.add_stream_chunk("w1", job.id, {"seq": 0})
    assert table.add_stream_chunk("w1", job.id, {"seq": 1})
    assert not table.add_stream_chunk("w2", job.id, {"seq": 9}), "not that worker's job"
    assert table.stream_view(job.id)["stream"] == [{"output": {"seq": 0}}, {"output": {"seq": 1}}]
    assert table.stream_view(job.id)["stream"] == []
    table.add_stream_chunk("w1", job.id, {"seq": 2})
    table.record_result("w1", job.id, {"output": [{"seq": 0}, {"seq": 1}, {"seq": 2}]})
    view = table.stream_view(job.id)
    assert view["status"] == "COMPLETED" and view["stream"] == [{"output": {"seq": 2}}]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["submit", "take", "done", "cancel", "die", "release", "tick"]),
            st.integers(0, 2),
        ),
        max_size=60,
    )
)
def test_invariants_under_any_sequence(ops: list[tuple[str, int]]) -> None:
    """Whatever happens: a job is held by at most one worker, only IN_PROGRESS jobs are taken
    from no one, ended jobs never change state, and nothing stays IN_PROGRESS unheld."""
    clock = FakeClock()
    table = JobTable(clock=clock, wall_clock=clock)
    policy = JobPolicy(execution_timeout_s=5, ttl_s=20)
    ids: list[str] = []
    ended: dict[str, JobState] = {}
    for op, n in ops:
        worker = f"w{n}"
        if op == "submit":
            ids.append(table.submit({}, route="run", policy=policy, retention_s=1e9).id)
        elif op == "take":
            table.take(worker, n + 1)
        elif op == "done" and table.held_by(worker):
            table.record_result(worker, min(table.held_by(worker)), {"output": n})
        elif op == "cancel" and ids:
            table.cancel(ids[n % len(ids)])
        elif op == "die":
            table.worker_died(worker, "test")
        elif op == "release":
            table.worker_released(worker)
        elif op == "tick":
            clock.advance(3)
            table.expire()
        holders: dict[str, str] = {}
        for w in ("w0", "w1", "w2"):
            for job_id in table.held_by(w):
                assert job_id not in holders, "a job is held by two workers"
                holders[job_id] = w
        for job_id in ids:
            job = table.get(job_id)
            if job.state is JobState.IN_PROGRESS:
                assert holders.get(job_id) == job.worker_id
            if job_id in ended:
                assert job.state is ended[job_id], "an ended job changed state"
            elif job.state.terminal:
                ended[job_id] = job.state
            assert job.takes <= 1


def test_sliding_window_limiter() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, window_s=10, clock=clock)
    assert [limiter.acquire() for _ in range(3)] == [None, None, None]
    clock.advance(2.5)
    assert limiter.acquire() == 8
    clock.advance(7.5)
    assert limiter.acquire() is None
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0)


def test_a_job_that_cannot_be_serialised_fails_alone_and_is_never_taken(table: JobTable) -> None:
    """Issue 11 #3: each job's job-take JSON is built before it is marked taken, so a job whose
    input cannot be serialised fails on its own and the jobs taken with it are handed out."""
    deep: Any = 1
    for _ in range(5_000):
        deep = [deep]
    first = submit(table)
    bad = table.submit({"deep": deep}, route="run", policy=POLICY, retention_s=1800)
    last = submit(table)

    taken = table.take_encoded("w1", 3)

    assert [job.id for job, _ in taken] == [first.id, last.id]
    assert [json.loads(body) for _, body in taken] == [
        {"id": first.id, "input": {"n": 1}}, {"id": last.id, "input": {"n": 1}}
    ]
    assert bad.state is JobState.FAILED and bad.worker_id is None
    assert bad.error["code"] == "input_unsendable"
    assert table.counters["jobs_unsendable"] == 1 and table.counters["jobs_taken"] == 2
    released = {job.id for job in table.worker_released("w1")}
    assert released == {first.id, last.id}  # nothing else was held
