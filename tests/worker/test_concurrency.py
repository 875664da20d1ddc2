"""The worker's one concurrency knob (``HONORA_CONCURRENCY``): the settings, the batch it sizes,
the async handlers that run each job in the worker's own pool and stop its work when RunPod
stops the job, and 8 jobs through localpod decoding in one batch."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time

import pytest
from localpod_fixtures import PodAPI

from honora_tts.cancellation import CancelToken
from honora_tts.model.batch_capacity import concurrency_and_rows, kv_bytes_per_row
from honora_tts.settings import MAX_CONCURRENCY, SettingsError, WorkerSettings
from honora_tts.synthesis import SynthesisService
from honora_tts.worker import threaded_handlers
from honora_tts.worker.runpod_adapter import RunPodAdapter
from honora_tts.worker.start import build_adapter, runpod_config


@pytest.mark.parametrize("value, jobs", [("", None), (" auto ", None), ("AUTO", None),
                                         ("8", 8), ("3", 3), (str(MAX_CONCURRENCY),
                                                             MAX_CONCURRENCY)])
def test_concurrency_settings(value, jobs):
    assert WorkerSettings.from_env({"HONORA_CONCURRENCY": value}).concurrency == jobs


@pytest.mark.parametrize("value", ["0", "-2", "eight", "1.5", str(MAX_CONCURRENCY + 1)])
def test_malformed_or_uncapped_concurrency_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="HONORA_CONCURRENCY"):
        WorkerSettings.from_env({"HONORA_CONCURRENCY": value})


@pytest.mark.parametrize("retired", ["HONORA_PREFETCH", "HONORA_WORKER_CONCURRENCY",
                                     "HONORA_MAX_BATCH"])
def test_a_retired_setting_is_refused_naming_its_replacement(retired, monkeypatch):
    with pytest.raises(SettingsError, match=f"{retired} is retired: set HONORA_CONCURRENCY"):
        WorkerSettings.from_env({retired: "4"})
    monkeypatch.setenv(retired, "1")  # from the process environment too
    with pytest.raises(SettingsError, match=retired):
        WorkerSettings.from_env()


def test_the_batch_follows_the_concurrency_and_the_device():
    class ReleaseGpt:  # XTTS-v2's GPT sizes (config.json of the release)
        max_text_tokens, max_mel_tokens, layers, model_dim = 404, 608, 30, 1024

    per_row = kv_bytes_per_row(ReleaseGpt, fp16=False)
    assert per_row == (32 + 404 + 608) * 2 * 30 * 1024 * 4  # about 257 MB
    assert kv_bytes_per_row(ReleaseGpt, fp16=True) * 2 == per_row
    assert concurrency_and_rows(ReleaseGpt, "cpu") == (1, 1)  # the default on a CPU
    assert concurrency_and_rows(ReleaseGpt, "cpu", requested=6) == (6, 6)


def test_a_worker_without_a_model_holds_what_it_is_told(caplog):
    def broken() -> None:
        raise RuntimeError("no weights")

    settings = WorkerSettings.from_env({"HONORA_CONCURRENCY": "3"})
    with caplog.at_level(logging.ERROR, logger="honora_tts.worker"):
        adapter = build_adapter(settings, loader=broken, voices=object(), warm_up=False)
    assert "no weights" in caplog.text
    assert adapter.concurrency == 3
    assert runpod_config(adapter, settings)["concurrency_modifier"](1) == 3


@pytest.mark.parametrize("env, kind, jobs", [
    ({}, "async", 1),
    ({"HONORA_CONCURRENCY": "4"}, "async", 4),
    ({"HONORA_CONCURRENCY": "4", "HONORA_STREAMING": "1"}, "async generator", 4),
    ({"HONORA_STREAMING": "1"}, "async generator", 1),
])
def test_one_handler_per_deployment_always_off_the_event_loop(env, kind, jobs):
    """A plain or a streaming handler, both async over the worker's own job pool, whatever the
    concurrency: the SDK's loop stays free to take jobs, post results and hear stop signals."""
    settings = WorkerSettings.from_env(env)
    adapter = RunPodAdapter(SynthesisService(None, model_error="no model needed"),
                            streaming=settings.streaming, concurrency=jobs)
    config = runpod_config(adapter, settings)
    handler = config["handler"]
    found = ("async generator" if inspect.isasyncgenfunction(handler)
             else "async" if inspect.iscoroutinefunction(handler) else "other")
    assert found == kind
    assert config["concurrency_modifier"](1) == jobs
    assert config["return_aggregate_stream"] is settings.streaming


def test_jobs_run_together_in_their_own_pool():
    lock = threading.Lock()
    state = {"active": 0, "peak": 0, "threads": set()}

    def handle(job: dict, cancel: CancelToken) -> dict:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            state["threads"].add(threading.current_thread().name)
        time.sleep(0.2)
        with lock:
            state["active"] -= 1
        return {"id": job["id"]}

    pool = threaded_handlers.JobPool(4)
    handler = threaded_handlers.concurrent_handler(handle, pool)

    async def main() -> list[dict]:
        return await asyncio.gather(*(handler({"id": i}) for i in range(4)))

    assert [a["id"] for a in asyncio.run(main())] == [0, 1, 2, 3]
    assert state["peak"] == 4
    assert all(name.startswith("honora-job") for name in state["threads"])
    pool.shutdown()


def _run_until_stopped(handler, job, started: threading.Event):
    """Run ``handler(job)`` as the SDK does, stop it (``task.cancel()``, RunPod's per-job stop)
    once its work started, and return how long the task took to end after the stop."""
    async def main() -> float:
        task = asyncio.ensure_future(_consume(handler, job))
        while not started.is_set():
            await asyncio.sleep(0.01)
        stopped = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - stopped

    return asyncio.run(main())


async def _consume(handler, job):
    result = handler(job)
    if inspect.isasyncgen(result):
        return [item async for item in result]
    return await result


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "stream"])
def test_a_stopped_job_stops_its_work_before_its_slot_is_free(streaming):
    """Regression (issue 23 #1): the SDK cancels a stopped job's task and counts its slot free;
    the old handlers' threads ran on to the end meanwhile. Now the token is cancelled, the work
    ends at its next check, and the task ends only after it has."""
    started, finished = threading.Event(), threading.Event()
    checks = []

    def work(cancel: CancelToken) -> None:
        started.set()
        try:
            for _ in range(200):  # 10 s unless stopped
                checks.append(cancel.cancelled)
                cancel.raise_if_cancelled()
                time.sleep(0.05)
        finally:
            finished.set()

    def handle(job: dict, cancel: CancelToken) -> dict:
        work(cancel)
        return {"id": job["id"]}

    def handle_stream(job: dict, cancel: CancelToken):
        yield {"first": True}
        work(cancel)
        yield {"never": True}

    pool = threaded_handlers.JobPool(2)
    handler = (threaded_handlers.concurrent_stream_handler(handle_stream, pool) if streaming
               else threaded_handlers.concurrent_handler(handle, pool))
    took = _run_until_stopped(handler, {"id": "job-1"}, started)
    assert finished.is_set()  # the work had ended when the task did
    assert checks[-1] is True and len(checks) < 100
    assert took < 5
    pool.shutdown()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eight_jobs_through_localpod_decode_in_one_batch(localpod_factory):
    pod = localpod_factory(workers=1, max_concurrency_per_worker=8)
    with PodAPI(pod) as client:
        ids = [client.submit({"text": f"Batch job number {i}.", "request_id": f"batch-{i}",
                              "params": {"max_new_tokens": 12, "seed": i}})
               for i in range(8)]
        finals = [client.wait_final(job_id, timeout_s=600) for job_id in ids]
        health = client.wait_final(client.submit({"action": "health"}), timeout_s=120)
    assert [f["status"] for f in finals] == ["COMPLETED"] * 8
    assert [f["output"]["request_id"] for f in finals] == [f"batch-{i}" for i in range(8)]
    assert all(f["output"]["audio"]["duration_s"] > 0 for f in finals)
    facts = health["output"]["health"]
    assert facts["concurrency"] == 8
    batching = facts["batching"]
    assert batching["max_batch"] == 8
    assert batching["completed"] >= 8 and batching["failed"] == 0
    assert batching["max_rows"] >= 2, batching  # jobs really decoded together
