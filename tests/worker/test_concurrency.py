"""``honora_tts.worker.batching``: the batch size a worker takes, the handlers that let jobs run
together, and 8 jobs through localpod decoding in one batch."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from localpod_fixtures import PodAPI

from honora_tts.model.batch_capacity import kv_bytes_per_row
from honora_tts.settings import SettingsError, WorkerSettings
from honora_tts.worker import batching, threaded_handlers


@pytest.mark.parametrize("value, rows", [("", None), (" auto ", None), ("AUTO", None),
                                         ("8", 8), ("3", 3)])
def test_max_batch_settings(value, rows):
    assert WorkerSettings.from_env({"HONORA_MAX_BATCH": value}).max_batch == rows


@pytest.mark.parametrize("value", ["0", "-2", "eight", "1.5"])
def test_malformed_max_batch_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="HONORA_MAX_BATCH"):
        WorkerSettings.from_env({"HONORA_MAX_BATCH": value})


def test_a_worker_without_a_model_runs_unbatched(caplog):
    def broken() -> None:
        raise RuntimeError("no weights")

    with caplog.at_level(logging.WARNING, logger="honora_tts.worker"):
        assert batching.enable_batching(broken, 8) == 1
    assert "no weights" in caplog.text


def test_kv_cache_estimate_of_the_release_architecture():
    class ReleaseGpt:  # XTTS-v2's GPT sizes (config.json of the release)
        max_text_tokens, max_mel_tokens, layers, model_dim = 404, 608, 30, 1024

    per_row = kv_bytes_per_row(ReleaseGpt, fp16=False)
    assert per_row == (32 + 404 + 608) * 2 * 30 * 1024 * 4  # about 257 MB
    assert kv_bytes_per_row(ReleaseGpt, fp16=True) * 2 == per_row


def test_jobs_run_together_off_the_event_loop():
    lock = threading.Lock()
    state = {"active": 0, "peak": 0}

    def handle(job: dict) -> dict:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        time.sleep(0.2)
        with lock:
            state["active"] -= 1
        return {"id": job["id"]}

    handler = threaded_handlers.concurrent_handler(handle)

    async def main() -> list[dict]:
        return await asyncio.gather(*(handler({"id": i}) for i in range(4)))

    assert [a["id"] for a in asyncio.run(main())] == [0, 1, 2, 3]
    assert state["peak"] == 4
    assert batching.concurrency_modifier(4)(1) == 4


def test_streams_run_together_and_close_their_generators():
    closed = []

    def handle_stream(job: dict):
        try:
            for n in range(3):
                time.sleep(0.05)
                yield {"job": job["id"], "n": n}
        finally:
            closed.append(job["id"])

    handler = threaded_handlers.concurrent_stream_handler(handle_stream)

    async def collect(job_id: int) -> list[dict]:
        return [item async for item in handler({"id": job_id})]

    async def main() -> list[list[dict]]:
        return await asyncio.gather(*(collect(i) for i in range(3)))

    results = asyncio.run(main())
    assert results == [[{"job": i, "n": n} for n in range(3)] for i in range(3)]
    assert sorted(closed) == [0, 1, 2]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eight_jobs_through_localpod_decode_in_one_batch(localpod_factory):
    pod = localpod_factory(workers=1, max_concurrency_per_worker=8,
                           worker_env={"HONORA_MAX_BATCH": "8"})
    with PodAPI(pod) as client:
        ids = [client.submit({"text": f"Batch job number {i}.", "request_id": f"batch-{i}",
                              "params": {"max_new_tokens": 12, "seed": i}})
               for i in range(8)]
        finals = [client.wait_final(job_id, timeout_s=600) for job_id in ids]
        health = client.wait_final(client.submit({"action": "health"}), timeout_s=120)
    assert [f["status"] for f in finals] == ["COMPLETED"] * 8
    assert [f["output"]["request_id"] for f in finals] == [f"batch-{i}" for i in range(8)]
    assert all(f["output"]["audio"]["duration_s"] > 0 for f in finals)
    batching = health["output"]["health"]["batching"]
    assert batching["completed"] >= 8 and batching["failed"] == 0
    assert batching["max_rows"] >= 2, batching  # jobs really decoded together


@pytest.mark.parametrize("env, kind, jobs", [
    ({}, "plain", 1),
    ({"HONORA_WORKER_CONCURRENCY": "4"}, "async", 4),
    ({"HONORA_WORKER_CONCURRENCY": "4", "HONORA_STREAMING": "1"}, "async generator", 4),
    ({"HONORA_STREAMING": "1"}, "generator", 1),
    ({"HONORA_PREFETCH": "1"}, "async", 2),
])
def test_a_worker_taking_several_jobs_runs_each_off_the_event_loop(env, kind, jobs):
    """Above one job at a time, the handler is async (the blocking one in a thread per job):
    a plain handler would run the jobs one after another on the SDK's event loop, and a job
    stuck in a slow download would hold up the others and the loop's next job-take."""
    import inspect

    from honora_tts.worker.runpod_adapter import RunPodAdapter
    from honora_tts.worker.start import runpod_config

    settings = WorkerSettings.from_env(env)
    adapter = RunPodAdapter(service=None, streaming=settings.streaming)  # type: ignore[arg-type]
    config = runpod_config(adapter, settings)
    handler = config["handler"]
    found = ("async generator" if inspect.isasyncgenfunction(handler)
             else "async" if inspect.iscoroutinefunction(handler)
             else "generator" if inspect.isgeneratorfunction(handler) else "plain")
    assert found == kind
    assert config["concurrency_modifier"](1) == jobs
