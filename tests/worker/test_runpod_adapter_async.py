"""``RunPodAdapter.handle_async``: the plain handler in a thread, one job at a time (the worker
change ``python -m benchmarks p3`` measures). No model needed: ``handle`` is replaced by a
recorder."""

from __future__ import annotations

import asyncio
import threading
import time

from honora_tts.synthesis import SynthesisService
from honora_tts.worker import RunPodAdapter


def test_jobs_run_one_at_a_time_off_the_event_loop(monkeypatch):
    lock = threading.Lock()
    state = {"active": 0, "peak": 0}
    threads: set[int] = set()

    def recorder(job: dict) -> dict:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        threads.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            state["active"] -= 1
        return {"id": job["id"], "status": "healthy"}

    adapter = RunPodAdapter(SynthesisService(None, model_error="not needed: handle is replaced"))
    monkeypatch.setattr(adapter, "handle", recorder)

    async def main() -> tuple[list[dict], int]:
        ticks = 0

        async def ticker() -> None:  # the loop stays free while a job runs
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        answers = await asyncio.gather(*(adapter.handle_async({"id": i}) for i in range(4)))
        beat.cancel()
        return answers, ticks

    answers, ticks = asyncio.run(main())
    assert [a["id"] for a in answers] == [0, 1, 2, 3]
    assert state["peak"] == 1
    assert threading.get_ident() not in threads
    assert ticks >= 5
