"""Worker processes: crashes, replacements, cold starts, a mixed-version fleet and many jobs at
once through two workers."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import psutil
import pytest
from localpod_fixtures import PodAPI
from localpod_testing import SCRIPTED, wait_until

from honora_tts.localpod import LocalPod, LocalPodError, WorkerStartError

pytestmark = pytest.mark.integration


def worker(pod: LocalPod, worker_id: str) -> dict:
    return next(w for w in pod.workers() if w["id"] == worker_id)


def test_killed_worker_fails_its_job_and_is_replaced(client: PodAPI) -> None:
    pod = client.pod
    job_id = client.submit({"action": "sleep", "seconds": 60, "blocking": True})
    running = client.wait_status(job_id, lambda s: s["status"] == "IN_PROGRESS")
    pid = worker(pod, running["workerId"])["pid"]

    killed = pod.kill_worker()

    assert killed == running["workerId"]
    status = client.status(job_id)
    assert status["status"] == "FAILED", "never left IN_PROGRESS"
    assert status["error"]["code"] == "worker_died"
    assert killed in status["error"]["message"]
    assert worker(pod, killed)["state"] == "dead"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    pod.wait_ready(n=2, timeout_s=60)
    alive = [w for w in pod.workers() if w["state"] != "dead"]
    assert len(alive) == 2 and killed not in {w["id"] for w in alive}
    assert pod.counters()["workers_replaced"] >= 1
    assert client.post("/runsync", json={"input": {}}).json()["status"] == "COMPLETED"


def test_worker_that_exits_mid_job(client: PodAPI) -> None:
    pod = client.pod
    status = client.post("/runsync", json={"input": {"action": "exit"}}).json()
    status = client.wait_final(status["id"]) if status["status"] == "IN_PROGRESS" else status
    assert status["status"] == "FAILED"
    assert status["error"]["code"] == "worker_died"
    assert "exit code 3" in status["error"]["message"]
    pod.wait_ready(n=2, timeout_s=60)


def test_kill_an_idle_worker_on_command(client: PodAPI) -> None:
    pod = client.pod
    with pytest.raises(LocalPodError, match="no worker is running a job"):
        pod.kill_worker()
    idle = pod.kill_worker(busy=False)
    assert worker(pod, idle)["state"] == "dead"
    assert worker(pod, idle)["killed_for"] == "killed on command"
    assert client.get("/health").json()["workers"]["unhealthy"] >= 1
    pod.wait_ready(n=2, timeout_s=60)


def test_cold_start_counts_in_delay_time(localpod_factory) -> None:
    pod = localpod_factory(workers=1, start_delay_s=3.0, wait_ready=False, **SCRIPTED)
    with PodAPI(pod) as client:
        job_id = client.submit({"action": "echo"})
        assert [w["state"] for w in pod.workers()] == ["initializing"]
        assert client.get("/health").json()["workers"]["initializing"] == 1
        status = client.wait_final(job_id)
    assert status["status"] == "COMPLETED"
    assert status["delayTime"] >= 2000, "queue time includes the delayed start"
    assert [w["state"] for w in pod.workers()] == ["ready"]


def test_worker_dying_while_loading_is_reported(localpod_factory) -> None:
    with pytest.raises(WorkerStartError, match="ValueError"):
        localpod_factory(workers=1, worker_env={"SCRIPTED_LOAD_S": "not-a-number"}, **SCRIPTED)


def test_mixed_version_fleet(localpod_factory) -> None:
    """A stale worker added to a running pod answers simple-mode requests "No sections
    provided" and carries no version; the current worker answers the same request. Batch
    requests still work on the stale one."""
    pod = localpod_factory(workers=1, **SCRIPTED)
    [added] = pod.add_workers(1, stale=True)
    pod.wait_ready(n=2, timeout_s=60)
    kinds = {w["id"]: w["kind"] for w in pod.workers()}
    assert kinds[added] == "stale"
    assert worker(pod, added)["handler"].endswith("tests/fixtures/stale_handler.py")
    assert sorted(kinds.values()) == ["current", "stale"]

    def answer_from(client: PodAPI, kind: str, job_input: dict) -> dict:
        for _ in range(20):  # idle workers take turns; a few tries reach each kind
            status = client.post("/runsync", json={"input": job_input}).json()
            if kinds[status["workerId"]] == kind:
                return status
        raise AssertionError(f"no {kind} worker answered")

    simple = {"text": "Hello there."}
    batch = {"sections": [{"id": "a", "text": "One."}, {"id": "b", "text": "Two."}]}
    with PodAPI(pod) as client:
        stale = answer_from(client, "stale", simple)
        current = answer_from(client, "current", simple)
        stale_batch = answer_from(client, "stale", batch)
    assert stale["status"] == "FAILED"
    assert stale["error"] == "No sections provided"
    assert "output" not in stale, "no version record"
    assert current["status"] == "COMPLETED"
    assert stale_batch["status"] == "COMPLETED"
    sections = stale_batch["output"]["sections"]
    assert [s["id"] for s in sections] == ["a", "b"]
    assert all(s["audio_base64"] and s["sample_rate"] == 24000 for s in sections)
    assert "version" not in stale_batch["output"]


async def _submit_all(pod: LocalPod, inputs: list[dict]) -> list[str]:
    """Every submission in flight at once, one connection each."""
    async with httpx.AsyncClient(
        base_url=pod.endpoint_url, headers={"Authorization": f"Bearer {pod.api_key}"},
        limits=httpx.Limits(max_connections=len(inputs)), timeout=60,
    ) as client:  # fmt: skip
        responses = await asyncio.gather(
            *(client.post("/run", json={"input": job_input}) for job_input in inputs)
        )
    assert {r.status_code for r in responses} == {200}
    return [r.json()["id"] for r in responses]


def test_200_concurrent_submissions_none_lost_or_duplicated(localpod_factory) -> None:
    pod = localpod_factory(workers=2, max_concurrency_per_worker=25, **SCRIPTED)
    ids = asyncio.run(_submit_all(pod, [{"action": "echo", "n": n} for n in range(200)]))
    assert len(set(ids)) == 200
    assert wait_until(lambda: pod.counters()["jobs_completed"] == 200, timeout_s=120)
    with PodAPI(pod) as client:
        statuses = [client.status(job_id) for job_id in ids]
    assert {s["status"] for s in statuses} == {"COMPLETED"}
    assert sorted(s["output"]["echo"]["n"] for s in statuses) == list(range(200))
    rows = {row["id"]: row for row in pod.jobs()}
    assert all(rows[job_id]["takes"] == 1 for job_id in ids), "every job taken exactly once"
    counters = pod.counters()
    assert counters["jobs_submitted"] == counters["jobs_taken"] == 200
    assert counters["jobs_done_posts"] == 200 and counters["duplicate_done_posts"] == 0
    assert {s["workerId"] for s in statuses} <= {w["id"] for w in pod.workers()}
    assert sum(w["jobs_done"] for w in pod.workers()) == 200


def test_control_routes_drive_a_pod_from_another_process(localpod_factory) -> None:
    """What a client attached to ``honora-tts localpod`` uses to add and kill workers; with
    restarts off a killed worker stays dead."""
    pod = localpod_factory(workers=1, restart_dead_workers=False, **SCRIPTED)
    with PodAPI(pod) as client:
        added = client.post("/localpod/add-workers", json={"n": 1, "stale": True}).json()
        [stale_id] = added["added"]
        pod.wait_ready(n=2, timeout_s=60)
        views = client.get("/localpod/workers").json()
        assert {w["id"]: w["kind"] for w in views}[stale_id] == "stale"
        killed = client.post("/localpod/kill-worker", json={"worker_id": stale_id})
        assert killed.json() == {"killed": stale_id}
        again = client.post("/localpod/kill-worker", json={"worker_id": stale_id})
        assert again.status_code == 409
        assert client.post("/localpod/kill-worker", json={}).status_code == 409, "none busy"
        assert client.post("/localpod/reboot", json={}).status_code == 404
        counters = client.get("/localpod/counters").json()
        assert counters["workers_killed"] == 1 and counters["workers_replaced"] == 0
    states = sorted((w["kind"], w["state"]) for w in pod.workers())
    assert states == [("current", "ready"), ("stale", "dead")]


def test_a_worker_holding_two_jobs_takes_its_next_job_while_one_runs(localpod_factory) -> None:
    """``HONORA_CONCURRENCY=2`` (what ``HONORA_PREFETCH=1`` was): the unmodified
    worker/handler.py takes a queued job while it runs one (localpod sees two jobs held by one
    worker at once) and still answers every job."""
    pod = localpod_factory(workers=1, max_concurrency_per_worker=2)
    with PodAPI(pod) as client:
        ids = [client.submit({"text": f"Job {i}.", "params": {"max_new_tokens": 16}})
               for i in range(4)]
        finals = [client.wait_final(job_id, timeout_s=300) for job_id in ids]
    assert [f["status"] for f in finals] == ["COMPLETED"] * 4
    assert all(f["output"]["audio"]["duration_s"] > 0 for f in finals)
    rows = sorted((r["submitted_at"] * 1000 + r["delay_ms"], r["execution_ms"])
                  for r in pod.jobs() if r["id"] in ids)
    held = [(start, start + execution) for start, execution in rows]
    overlaps = sum(1 for (_, end), (start, _) in itertools.pairwise(held) if start < end)
    assert overlaps >= 1, held
