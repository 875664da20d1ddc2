"""RunPod's public API as localpod serves it, driven through real (scripted) worker processes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from localpod_fixtures import PodAPI
from localpod_testing import SCRIPTED, wait_until

from honora_tts.localpod import LocalPod
from honora_tts.localpod.controlplane import MAX_NESTING_DEPTH, MAX_RUN_BYTES, MAX_RUNSYNC_BYTES
from honora_tts.localpod.jobs import TERMINAL_STATES

pytestmark = pytest.mark.integration



def occupy_workers(client: PodAPI, seconds: float) -> list[str]:
    """Give both workers a blocking job; returns the job ids once both are running. Tests
    leave themselves a wide margin: what they check happens well within ``seconds``."""
    ids = [client.submit({"action": "sleep", "seconds": seconds, "blocking": True}) for _ in "ab"]
    for job_id in ids:
        client.wait_status(job_id, lambda s: s["status"] == "IN_PROGRESS", timeout_s=30)
    return ids


def job_row(pod: LocalPod, job_id: str) -> dict[str, Any]:
    return next(row for row in pod.jobs() if row["id"] == job_id)


def test_auth_and_unknown_ids(client: PodAPI) -> None:
    pod = client.pod
    bare = httpx.get(f"{pod.endpoint_url}/health", headers={"Authorization": pod.api_key})
    assert bare.status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"}):
        response = httpx.post(f"{pod.endpoint_url}/run", json={"input": {}}, headers=headers)
        assert response.status_code == 401
        assert "error" in response.json()
    assert client.get(f"{pod.base_url}/other-endpoint/health").status_code == 404
    missing = client.get("/status/no-such-job")
    assert missing.status_code == 404 and "error" in missing.json()
    assert client.post("/cancel/no-such-job").status_code == 404
    assert client.post("/run", content=b"{not json").status_code == 400
    assert client.post("/run", json={"nothing": 1}).status_code == 400


def test_states_transitions_and_times(client: PodAPI) -> None:
    response = client.post("/run", json={"input": {"action": "sleep", "seconds": 2.0}})
    assert response.status_code == 200
    job_id = response.json()["id"]
    assert response.json() == {"id": job_id, "status": "IN_QUEUE"}
    running = client.wait_status(job_id, lambda s: s["status"] != "IN_QUEUE")
    assert running["status"] == "IN_PROGRESS"
    assert running["delayTime"] >= 0 and "executionTime" not in running
    done = client.wait_final(job_id)
    assert done["status"] == "COMPLETED"
    assert done["executionTime"] >= 2000, "the job slept two seconds between take and done"
    assert done["output"] == {"slept": 2.0, "worker_id": done["workerId"]}
    assert job_row(client.pod, job_id)["takes"] == 1


def test_queue_time_is_delay_time(client: PodAPI) -> None:
    occupy_workers(client, 3.0)
    queued = client.submit({"action": "echo"})
    assert client.status(queued)["status"] == "IN_QUEUE"
    done = client.wait_final(queued)
    assert done["status"] == "COMPLETED"
    assert done["delayTime"] >= 1000, "it waited for a busy worker"


def test_runsync_waits_then_returns_status_to_poll(client: PodAPI) -> None:
    quick = client.post("/runsync", json={"input": {"action": "echo", "n": 7}})
    assert quick.status_code == 200
    body = quick.json()
    assert body["id"].startswith("sync-") and body["status"] == "COMPLETED"
    assert body["output"]["echo"] == {"action": "echo", "n": 7}
    slow = client.post("/runsync?wait=1000", json={"input": {"action": "sleep", "seconds": 3}})
    pending = slow.json()
    assert pending["status"] in ("IN_QUEUE", "IN_PROGRESS") and "output" not in pending
    assert client.wait_final(pending["id"])["status"] == "COMPLETED"
    assert client.post("/runsync?wait=soon", json={"input": {}}).status_code == 400


def test_failed_jobs_keep_error_and_output(client: PodAPI) -> None:
    failed = client.post("/runsync", json={"input": {"action": "fail"}}).json()
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"code": "scripted", "message": "failed on purpose"}
    assert failed["output"] == {"partial": True}
    raised = client.post("/runsync", json={"input": {"action": "raise"}}).json()
    assert raised["status"] == "FAILED" and "output" not in raised
    assert json.loads(raised["error"])["error_message"] == "raised on purpose"


def test_cancel_queued_job_is_never_taken(client: PodAPI) -> None:
    busy = occupy_workers(client, 3.0)
    queued = client.submit({"action": "echo"})
    answer = client.post(f"/cancel/{queued}")
    assert answer.status_code == 200 and answer.json() == {"id": queued, "status": "CANCELLED"}
    for job_id in busy:
        assert client.wait_final(job_id)["status"] == "COMPLETED"
    assert client.status(queued)["status"] == "CANCELLED"
    assert job_row(client.pod, queued)["takes"] == 0
    assert client.post(f"/cancel/{queued}").json()["status"] == "CANCELLED"


def test_cancel_running_job_reaches_the_worker(client: PodAPI) -> None:
    pod = client.pod
    before = pod.counters()
    job_id = client.submit({"action": "sleep", "seconds": 60})
    worker_id = client.wait_status(job_id, lambda s: s["status"] == "IN_PROGRESS")["workerId"]
    assert client.post(f"/cancel/{job_id}").json() == {"id": job_id, "status": "CANCELLED"}

    def worker_free() -> bool:
        return next(w for w in pod.workers() if w["id"] == worker_id)["state"] == "ready"

    assert wait_until(worker_free, timeout_s=20), "the stop signal did not free the worker"
    after = pod.counters()
    assert after["stop_signals_sent"] == before["stop_signals_sent"] + 1
    assert after["workers_killed"] == before["workers_killed"]
    assert client.status(job_id)["status"] == "CANCELLED"


def test_execution_timeout_stops_an_interruptible_job(client: PodAPI) -> None:
    pod = client.pod
    killed_before = pod.counters()["workers_killed"]
    job_id = client.submit(
        {"action": "sleep", "seconds": 60}, policy={"executionTimeout": 1000}
    )
    status = client.wait_final(job_id, timeout_s=30)
    assert status["status"] == "TIMED_OUT"
    assert status["error"]["code"] == "execution_timeout"
    assert status["executionTime"] >= 1000
    worker_id = status["workerId"]
    assert wait_until(
        lambda: next(w for w in pod.workers() if w["id"] == worker_id)["state"] == "ready", 20
    )
    assert pod.counters()["workers_killed"] == killed_before


def test_execution_timeout_kills_a_worker_that_cannot_stop(client: PodAPI) -> None:
    pod = client.pod
    job_id = client.submit(
        {"action": "sleep", "seconds": 60, "blocking": True}, policy={"executionTimeout": 1000}
    )
    status = client.wait_final(job_id, timeout_s=30)
    assert status["status"] == "TIMED_OUT"
    worker_id = status["workerId"]

    def killed() -> bool:
        worker = next(w for w in pod.workers() if w["id"] == worker_id)
        return worker["state"] == "dead"

    assert wait_until(killed, timeout_s=20)
    worker = next(w for w in pod.workers() if w["id"] == worker_id)
    assert worker["killed_for"] == "did not stop a timed-out job"
    assert client.status(job_id)["status"] == "TIMED_OUT"
    pod.wait_ready(n=2, timeout_s=60)
    alive = [w for w in pod.workers() if w["state"] != "dead"]
    assert len(alive) == 2 and worker_id not in {w["id"] for w in alive}


def test_ttl_expires_a_queued_job(client: PodAPI) -> None:
    occupy_workers(client, 3.0)
    job_id = client.submit({"action": "echo"}, policy={"ttl": 500})
    status = client.wait_final(job_id, timeout_s=30)
    assert status["status"] == "TIMED_OUT"
    assert status["error"]["code"] == "ttl_expired"
    assert "workerId" not in status and job_row(client.pod, job_id)["takes"] == 0


def test_invalid_policy_and_webhook_are_refused(client: PodAPI) -> None:
    for body in (
        {"input": {}, "policy": {"executionTimeout": "soon"}},
        {"input": {}, "policy": {"ttl": -1}},
        {"input": {}, "policy": "fast"},
        {"input": {}, "webhook": "https://example.com/hook"},
    ):
        response = client.post("/run", json=body)
        assert response.status_code == 400, body
        assert "error" in response.json()


def test_oversized_payloads_are_refused_like_runpod(client: PodAPI) -> None:
    def body_of(size: int) -> bytes:
        frame = b'{"input": {"action": "sleep", "seconds": 0, "pad": "'
        end = b'"}}'
        return frame + b"x" * (size - len(frame) - len(end)) + end

    over_run = body_of(MAX_RUN_BYTES + 1)
    refused = client.post("/run", content=over_run)
    assert refused.status_code == 413
    message = refused.json()["error"]
    assert str(MAX_RUN_BYTES + 1) in message and str(MAX_RUN_BYTES) in message
    accepted = client.post("/runsync", content=over_run)
    assert accepted.status_code == 200 and accepted.json()["status"] == "COMPLETED"
    refused_sync = client.post("/runsync", content=body_of(MAX_RUNSYNC_BYTES + 1))
    assert refused_sync.status_code == 413
    assert client.pod.counters()["payloads_rejected"] >= 2


def test_oversized_result_fails_the_job(client: PodAPI) -> None:
    status = client.post(
        "/runsync", json={"input": {"action": "big", "bytes": MAX_RUNSYNC_BYTES + 10}}
    ).json()
    status = client.wait_final(status["id"]) if status["status"] not in TERMINAL_STATES else status
    assert status["status"] == "FAILED"
    assert status["error"]["code"] == "result_too_large"


def test_retry_and_purge_queue(client: PodAPI) -> None:
    failed = client.post("/runsync", json={"input": {"action": "fail"}}).json()
    retried = client.post(f"/retry/{failed['id']}")
    assert retried.status_code == 200
    assert retried.json() == {"id": failed["id"], "status": "IN_QUEUE"}
    assert client.wait_final(failed["id"])["status"] == "FAILED"
    assert job_row(client.pod, failed["id"])["takes"] == 2
    completed = client.post("/runsync", json={"input": {}}).json()
    assert client.post(f"/retry/{completed['id']}").status_code == 400

    busy = occupy_workers(client, 3.0)
    queued = [client.submit({"action": "echo"}) for _ in range(3)]
    purge = client.post("/purge-queue")
    assert purge.json() == {"removed": 3, "status": "completed"}
    assert {client.status(job_id)["status"] for job_id in queued} == {"CANCELLED"}
    assert {client.wait_final(job_id)["status"] for job_id in busy} == {"COMPLETED"}
    health = client.get("/health").json()
    assert health["jobs"]["retried"] >= 1


def test_health_counts_jobs_and_workers(client: PodAPI) -> None:
    occupy_workers(client, 3.0)
    queued = client.submit({"action": "echo"})
    health = client.get("/health").json()
    assert health["workers"]["running"] == 2 and health["workers"]["idle"] == 0
    assert health["jobs"]["inProgress"] == 2 and health["jobs"]["inQueue"] == 1
    client.wait_final(queued)
    health = client.get("/health").json()
    assert set(health["jobs"]) >= {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert set(health["workers"]) >= {"idle", "initializing", "ready", "running", "unhealthy"}
    assert health["workers"]["ready"] == 2 and health["jobs"]["inQueue"] == 0
    assert all(w["last_ping_at"] for w in client.pod.workers() if w["state"] != "dead"), (
        "every live worker's heartbeat reached the ping webhook"
    )


def test_webhook_receives_the_final_status(client: PodAPI) -> None:
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        job_id = client.submit({"action": "echo", "hook": True}, webhook=url)
        assert arrived.wait(30)
    finally:
        server.shutdown()
        server.server_close()
    assert received[0]["id"] == job_id and received[0]["status"] == "COMPLETED"
    assert received[0]["output"]["echo"]["hook"] is True


def test_rate_limit_answers_429_with_retry_after(localpod_factory) -> None:
    pod = localpod_factory(workers=1, rate_limit_per_10s=5, **SCRIPTED)
    with PodAPI(pod) as client:
        codes = [client.post("/run", json={"input": {}}).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        limited = client.post("/run", json={"input": {}})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        assert "error" in limited.json()
        assert client.get("/health").status_code == 200, "health is not rate limited"
        own_window = client.post("/runsync?wait=1000", json={"input": {}})
        assert own_window.status_code == 200, "runsync has its own window"
        assert pod.counters()["rate_limited"] == 2


def test_results_expire_and_policy_minimums(localpod_factory) -> None:
    pod = localpod_factory(
        workers=1, handler_path=SCRIPTED["handler_path"], runsync_retention_s=1,
        result_retention_s=1,
    )  # fmt: skip
    with PodAPI(pod) as client:
        done = client.post("/runsync", json={"input": {}}).json()
        assert done["status"] == "COMPLETED"
        assert wait_until(lambda: client.get(f"/status/{done['id']}").status_code == 404, 10)
        too_short = client.post("/run", json={"input": {}, "policy": {"executionTimeout": 4999}})
        assert too_short.status_code == 400 and "5000" in too_short.json()["error"]
        assert client.post("/run", json={"input": {}, "policy": {"ttl": 9999}}).status_code == 400
        ok = client.post("/run", json={"input": {}, "policy": {"executionTimeout": 5000}})
        assert ok.status_code == 200


def _nested_body(depth: int) -> bytes:
    """A /run body whose ``deep`` field nests lists so that the body is ``depth`` levels deep."""
    lists = depth - 2  # the body and its input object are the first two levels
    return (b'{"input": {"action": "sleep", "seconds": 0, "deep": '
            + b"[" * lists + b"]" * lists + b"}}")


def test_a_deeply_nested_job_never_takes_innocent_jobs_down(localpod_factory) -> None:
    """Issue 11 #3: bodies nested about 960 deep used to be accepted, then break job-take
    (RecursionError, 500) after their whole batch was marked taken, so every job of that batch
    ended FAILED ``result_lost``. Now anything deeper than the limit is refused at submit, a
    body at the limit runs, and the jobs queued between them, taken in batches by a worker
    taking 4 at a time, all complete. (The depths that broke job-take depend on the server's
    stack, so every depth from 940 to 969 is tried.)"""
    pod = localpod_factory(workers=1, max_concurrency_per_worker=4, wait_ready=False,
                           worker_env={"SCRIPTED_LOAD_S": "3"}, **SCRIPTED)
    with PodAPI(pod) as client:
        innocent, too_deep = [], []
        for depth in range(940, 970):
            innocent.append(client.submit({"action": "echo", "n": depth}))
            too_deep.append(client.post_body("run", _nested_body(depth)))
        at_limit = client.post_body("run", _nested_body(MAX_NESTING_DEPTH))
        innocent.append(client.submit({"action": "echo", "n": 0}))
        finals = [client.wait_final(job_id, timeout_s=60) for job_id in innocent]
        lost = [f for f in finals if f["status"] != "COMPLETED"]
        assert lost == [], f"{len(lost)} innocent jobs lost: {lost[:2]}"
        assert [r.status_code for r in too_deep] == [400] * len(too_deep)
        assert f"nested more than {MAX_NESTING_DEPTH} levels" in too_deep[0].json()["error"]
        assert at_limit.status_code == 200, at_limit.text
        assert client.wait_final(at_limit.json()["id"], timeout_s=60)["status"] == "COMPLETED"
    counters = pod.counters()
    assert counters["jobs_submitted"] == len(innocent) + 1
    assert counters["jobs_unsendable"] == 0
