"""``worker/handler.py`` with the change P3 measures and proposes for it: the async handler
(:func:`honora_tts.handler.handle_async`, one job at a time in a thread) and a concurrency of 2,
so the worker takes its next job while one runs and starts it the moment the previous one ends.
localpod runs this file as a worker (``LocalPod(handler_path=...)``)."""

import logging
import os
import sys

sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process

import runpod

from honora_tts import handler

logging.basicConfig(
    level=os.environ.get("HONORA_LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    stream=sys.stderr,
)

if __name__ == "__main__":
    handler.warm_up()
    runpod.serverless.start({
        "handler": handler.handle_async,
        "concurrency_modifier": lambda _current: handler.ASYNC_CONCURRENCY,
    })
