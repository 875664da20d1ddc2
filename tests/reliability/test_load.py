"""Load: 200 jobs through localpod with 2 workers and the tiny model (150 syntheses, 50 health
probes, submitted at once). None may be lost or run twice, every answer must carry the request
id and job id it was sent with, and the workers' memory must stay flat (resident set size after
a warm-up versus after the 200 jobs, with a generous bound)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest
from reliability_support import (
    EOF_CRASH,
    TINY,
    ScriptedServer,
    live_workers,
    record,
    stdin_target,
    voice_bytes,
    worker_log,
)

from honora_tts.client import EndpointClient, JobStatus
from honora_tts.localpod import LocalPod

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

JOBS = 200
HEALTH_EVERY = 4  # every 4th job is a health probe: 50 of 200
MAX_RSS_GROWTH_MB = 150
MB = 2**20


@pytest.fixture(scope="module")
def pod() -> Iterator[LocalPod]:
    with LocalPod(workers=2, model="tiny") as pod:
        yield pod


@pytest.fixture(scope="module")
def voice_urls() -> Iterator[list[str]]:
    server = ScriptedServer()
    yield [server.file(f"/load-{n}.wav", voice_bytes(2.0, 16_000, pitch_hz=140 + 20 * n))
           for n in range(3)]
    server.close()


def _rss(pids: list[int]) -> dict[int, float]:
    return {pid: psutil.Process(pid).memory_info().rss / MB for pid in pids}


def _job_input(n: int, voice_urls: list[str]) -> dict[str, Any]:
    if n % HEALTH_EVERY == 0:
        return {"action": "health"}
    voice = voice_urls[(n // 3) % len(voice_urls)] if n % 3 == 0 else None
    job: dict[str, Any] = {"text": f"Load test job number {n}.", "params": TINY}
    if voice:
        job["voice_url"] = voice
    return job


class _RssSampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            for pid, rss in _rss(self.pids).items():
                self.peak[pid] = max(self.peak[pid], rss)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def test_200_jobs_none_lost_none_duplicated_ids_matched_memory_flat(pod, voice_urls) -> None:
    workers = live_workers(pod)
    pids = [w["pid"] for w in workers]
    with EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url, deadline_s=600) as client:
        # Warm-up: every worker loads each voice and its latents once.
        warm = [client.run(_job_input(n, voice_urls)) for n in range(1, 13)]
        for job in warm:
            assert client.wait(job.id).status == "COMPLETED"
        baseline = pod.counters()
        rss_before = _rss(pids)
        sampler = _RssSampler(pids)
        sampler.start()

        started = time.monotonic()
        sent: dict[str, tuple[str, dict[str, Any]]] = {}
        for n in range(JOBS):
            request_id = f"load-{n:03d}"
            job_input = _job_input(n, voice_urls)
            status = client.run(job_input, request_id=request_id)
            assert status.id not in sent, "a job id was given twice"
            sent[status.id] = (request_id, job_input)
        with ThreadPoolExecutor(8) as pool:
            finals: list[JobStatus] = list(pool.map(client.wait, sent))
        elapsed = time.monotonic() - started
        sampler.stop()
        rss_after = _rss(pids)

    states = [s.status for s in finals]
    matched = 0
    for final in finals:
        request_id, job_input = sent[final.id]
        assert final.status == "COMPLETED", final
        output = final.output
        assert output["request_id"] == request_id and output["job_id"] == final.id
        if job_input.get("action") == "health":
            assert output["status"] == "healthy"
        else:
            assert output["status"] == "ok" and output["text_chars"] == len(job_input["text"])
            assert output["audio"]["bytes"] > 44
        matched += 1

    counters = pod.counters()
    delta = {k: counters[k] - baseline[k] for k in (
        "jobs_submitted", "jobs_taken", "jobs_completed", "jobs_failed", "jobs_done_posts",
        "duplicate_done_posts", "late_done_posts", "unknown_done_posts", "workers_died",
    )}
    rows = {row["id"]: row for row in pod.jobs()}
    takes = [rows[job_id]["takes"] for job_id in sent]
    lost = JOBS - states.count("COMPLETED")
    duplicated = sum(t - 1 for t in takes) + delta["duplicate_done_posts"]
    growth = {pid: rss_after[pid] - rss_before[pid] for pid in pids}
    per_worker = {w["id"]: w["jobs_done"] for w in pod.workers()}
    record(
        "load",
        jobs=JOBS, synthesis_jobs=JOBS - JOBS // HEALTH_EVERY, health_jobs=JOBS // HEALTH_EVERY,
        workers=len(pids), completed=states.count("COMPLETED"), lost=lost,
        duplicated=duplicated, request_ids_matched=matched, wall_s=round(elapsed, 1),
        jobs_per_s=round(JOBS / elapsed, 2), jobs_done_per_worker=per_worker,
        rss_before_mb={str(p): round(v, 1) for p, v in rss_before.items()},
        rss_after_mb={str(p): round(v, 1) for p, v in rss_after.items()},
        rss_peak_mb={str(p): round(v, 1) for p, v in sampler.peak.items()},
        rss_growth_mb={str(p): round(v, 1) for p, v in growth.items()},
        counters_delta=delta,
    )
    assert lost == 0 and duplicated == 0 and matched == JOBS
    assert takes == [1] * JOBS, "a job was handed out twice"
    assert delta["jobs_submitted"] == delta["jobs_taken"] == delta["jobs_done_posts"] == JOBS
    assert delta["jobs_completed"] == JOBS and delta["jobs_failed"] == 0
    assert delta["late_done_posts"] == delta["unknown_done_posts"] == delta["workers_died"] == 0
    assert [w["pid"] for w in live_workers(pod)] == pids, "a worker was replaced"
    for worker in live_workers(pod):
        log = worker_log(worker)
        assert EOF_CRASH not in log and "Failed to return job results" not in log
        assert stdin_target(worker["pid"]) == "/dev/null"
    assert all(v < MAX_RSS_GROWTH_MB for v in growth.values()), growth
