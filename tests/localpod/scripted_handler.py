"""A real RunPod worker whose every job says what the worker does, so the control plane's
rules (timeouts, cancels, crashes, late and oversized results, streams, concurrency) can be
driven without a model. Job input ``{"action": ...}``:

- ``echo``: returns ``{"echo": input, "worker_id": ...}``.
- ``sleep``: ``seconds``; ``blocking: true`` sleeps in the handler's thread (the SDK's event loop
  is blocked, like a synchronous XTTS handler: stop signals cannot reach it), otherwise awaits.
- ``fail``: returns an error object alongside output (RunPod: FAILED, output kept).
- ``raise``: raises, which the SDK turns into an error string.
- ``exit``: the worker process exits in the middle of the job.
- ``big``: returns ``bytes`` characters of output.

``HONORA_STREAMING=1`` registers an async generator instead: it yields ``chunks`` items
``{"seq": i}`` with ``interval_s`` between them. ``SCRIPTED_LOAD_S`` delays start-up like a model
load; ``HONORA_CONCURRENCY`` sets jobs per worker.
"""

import asyncio
import os
import time

# A model load comes first in a real worker; a bad value fails here, before the SDK loads.
time.sleep(float(os.environ.get("SCRIPTED_LOAD_S", "0")))

import runpod

WORKER_ID = os.environ.get("RUNPOD_POD_ID", "?")


async def handle(job):
    job_input = job["input"]
    action = job_input.get("action", "echo")
    if action == "sleep":
        if job_input.get("blocking"):
            time.sleep(float(job_input["seconds"]))  # noqa: ASYNC251 - blocking on purpose
        else:
            await asyncio.sleep(float(job_input["seconds"]))
        return {"slept": job_input["seconds"], "worker_id": WORKER_ID}
    if action == "fail":
        return {"error": {"code": "scripted", "message": "failed on purpose"}, "partial": True}
    if action == "raise":
        raise RuntimeError("raised on purpose")
    if action == "exit":
        os._exit(3)
    if action == "big":
        return {"blob": "x" * int(job_input["bytes"])}
    return {"echo": job_input, "worker_id": WORKER_ID}


async def handle_stream(job):
    job_input = job["input"]
    for seq in range(int(job_input.get("chunks", 3))):
        await asyncio.sleep(float(job_input.get("interval_s", 0.05)))
        yield {"seq": seq, "worker_id": WORKER_ID}


if __name__ == "__main__":
    streaming = os.environ.get("HONORA_STREAMING") == "1"
    runpod.serverless.start({
        "handler": handle_stream if streaming else handle,
        "return_aggregate_stream": streaming,
        "concurrency_modifier": lambda _: int(os.environ.get("HONORA_CONCURRENCY", "1")),
    })
