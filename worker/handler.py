"""RunPod serverless entry point: loads the model, then runs RunPod's worker loop around
``honora_tts.handler``. All logic lives in the package; this file stays thin.

Local checks (RunPod's official paths):
    python worker/handler.py --test_input '{"input": {"action": "health"}}'
    python worker/handler.py --rp_serve_api --rp_api_port 8000

``HONORA_STREAMING=1`` registers the generator handler (a streaming deployment; see
``honora_tts.handler``). ``HONORA_WORKER_CONCURRENCY`` sets jobs per worker (default 1).
"""

import logging
import os
import sys

# The old workers died with "EOF when reading a line" reading stdin; this one never reads it.
sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process

import runpod

from honora_tts import handler
from honora_tts.version import streaming_enabled

logging.basicConfig(
    level=os.environ.get("HONORA_LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    stream=sys.stderr,
)


def _concurrency(_current: int) -> int:
    return max(1, int(os.environ.get("HONORA_WORKER_CONCURRENCY", "1")))


if __name__ == "__main__":
    handler.warm_up()
    streaming = streaming_enabled()
    runpod.serverless.start({
        "handler": handler.handle_stream if streaming else handler.handle,
        "return_aggregate_stream": streaming,
        "concurrency_modifier": _concurrency,
    })
