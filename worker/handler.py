"""RunPod serverless entry point: loads the model, then runs RunPod's worker loop around
``honora_tts.handler``. All logic lives in the package; this file stays thin.

Local checks (RunPod's official paths):
    python worker/handler.py --test_input '{"input": {"action": "health"}}'
    python worker/handler.py --rp_serve_api --rp_api_port 8000

``HONORA_STREAMING=1`` registers the generator handler (a streaming deployment; see
``honora_tts.handler``). ``HONORA_WORKER_CONCURRENCY`` sets jobs per worker (default 1).
``HONORA_PREFETCH=1`` registers the async handler with room for a second job: the worker takes
its next job while one runs and starts it the moment the first ends (jobs still run one at a
time). It saves the runpod worker loop's idle 0.5-1 s between queued jobs (``honora-tts bench
p3``: 1.9x one worker's throughput under a full queue), at the price that a job may wait behind
a busy worker while another worker is idle: use it when the queue is rarely empty.
``HONORA_MAX_BATCH`` (default: 1 on a CPU, from free memory on CUDA) > 1 decodes that many jobs
together in one batch: the worker then takes that many jobs at once (``honora_tts.batched_worker``;
this takes precedence over ``HONORA_PREFETCH``).
"""

import logging
import os
import sys

# The old workers died with "EOF when reading a line" reading stdin; this one never reads it.
sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process

import runpod

from honora_tts import batched_worker, handler
from honora_tts.version import streaming_enabled

logging.basicConfig(
    level=os.environ.get("HONORA_LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    stream=sys.stderr,
)


def _concurrency(_current: int) -> int:
    return max(1, int(os.environ.get("HONORA_WORKER_CONCURRENCY", "1")))


def _prefetch_concurrency(_current: int) -> int:
    return handler.ASYNC_CONCURRENCY


if __name__ == "__main__":
    rows = batched_worker.enable_batching(handler._model, os.environ.get("HONORA_MAX_BATCH"))
    handler.warm_up()
    streaming = streaming_enabled()
    if rows > 1:
        entry = (batched_worker.concurrent_stream_handler(handler.handle_stream) if streaming
                 else batched_worker.concurrent_handler(handler.handle))
        concurrency = batched_worker.concurrency_modifier(rows)
    elif streaming:
        entry, concurrency = handler.handle_stream, _concurrency
    elif os.environ.get("HONORA_PREFETCH", "0").strip() == "1":
        entry, concurrency = handler.handle_async, _prefetch_concurrency
    else:
        entry, concurrency = handler.handle, _concurrency
    runpod.serverless.start({
        "handler": entry,
        "return_aggregate_stream": streaming,
        "concurrency_modifier": concurrency,
    })
