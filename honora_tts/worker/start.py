"""Starting the RunPod worker: read the worker's settings, load the model, build the one
:class:`~honora_tts.synthesis.SynthesisService` and its :class:`RunPodAdapter`, and run RunPod's
worker loop around the handler the settings pick.

Settings (environment, read once here)
    ``HONORA_STREAMING=1`` registers the generator handler (a streaming deployment).
    ``HONORA_PREFETCH=1`` registers the async handler with room for a second job: the worker
    takes its next job while one runs and starts it the moment the first ends (jobs still run
    one at a time). It saves the runpod worker loop's idle 0.5-1 s between queued jobs
    (``python -m benchmarks p3``: 1.9x one worker's throughput under a full queue), at the price that
    a job may wait behind a busy worker while another worker is idle: use it when the queue is
    rarely empty. ``HONORA_WORKER_CONCURRENCY`` sets jobs per worker otherwise (default 1).
    ``HONORA_LOG_LEVEL`` (default INFO). ``HONORA_URL_DELIVERY_BYTES`` (default 5 MiB): encoded
    audio above it goes out as a URL when ``delivery`` is ``auto`` and an output bucket
    (``BUCKET_*``) is configured. The model's settings are :mod:`honora_tts.model.loading`'s,
    the voice cache's :class:`honora_tts.voices.VoiceCache`'s.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from honora_tts.delivery import DEFAULT_URL_DELIVERY_BYTES, AudioDelivery
from honora_tts.synthesis import SpeechModel, SynthesisService
from honora_tts.version import streaming_enabled
from honora_tts.worker.runpod_adapter import ASYNC_CONCURRENCY, RunPodAdapter


@dataclass(frozen=True)
class WorkerOptions:
    """How this worker runs (see the module docstring for the variables)."""

    streaming: bool = False
    prefetch: bool = False
    concurrency: int = 1
    log_level: str = "INFO"
    url_delivery_bytes: int = DEFAULT_URL_DELIVERY_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WorkerOptions:
        """The options the environment sets."""
        return cls(
            streaming=streaming_enabled(),
            prefetch=env.get("HONORA_PREFETCH", "0").strip() == "1",
            concurrency=max(1, int(env.get("HONORA_WORKER_CONCURRENCY", "1"))),
            log_level=env.get("HONORA_LOG_LEVEL", "INFO"),
            url_delivery_bytes=int(
                env.get("HONORA_URL_DELIVERY_BYTES", str(DEFAULT_URL_DELIVERY_BYTES))
            ),
        )


def _load_worker_model() -> SpeechModel:
    from honora_tts.model import load_model

    return load_model()


def build_adapter(
    options: WorkerOptions | None = None,
    *,
    loader: Callable[[], SpeechModel] = _load_worker_model,
    voices: Any = None,
    warm_up: bool = True,
) -> RunPodAdapter:
    """The worker's adapter: the model loaded by ``loader`` (default: :func:`load_model` from
    the environment; a failure is kept and answered as ``model_not_ready``), ``voices`` (default:
    a :class:`~honora_tts.voices.VoiceCache` from the environment), warmed up."""
    options = options or WorkerOptions()
    if voices is None:
        from honora_tts.voices import VoiceCache

        voices = VoiceCache()
    service = SynthesisService.loading(
        loader, voices, delivery=AudioDelivery(url_delivery_bytes=options.url_delivery_bytes)
    )
    if warm_up:
        service.warm_up()
    return RunPodAdapter(service, streaming=options.streaming)


def runpod_config(adapter: RunPodAdapter, options: WorkerOptions) -> dict[str, Any]:
    """What ``runpod.serverless.start`` gets: the handler the options pick and its
    concurrency."""
    def fixed(_current: int) -> int:
        return options.concurrency

    def prefetch(_current: int) -> int:
        return ASYNC_CONCURRENCY

    handler: Callable[[dict[str, Any]], Any]
    if options.streaming:
        handler, concurrency = adapter.handle_stream, fixed
    elif options.prefetch:
        handler, concurrency = adapter.handle_async, prefetch
    else:
        handler, concurrency = adapter.handle, fixed
    return {
        "handler": handler,
        "return_aggregate_stream": options.streaming,
        "concurrency_modifier": concurrency,
    }


def main() -> None:
    """Run the worker: ``python -m honora_tts.worker`` or ``python worker/handler.py`` (RunPod's
    own flags, e.g. ``--test_input``, ``--rp_serve_api``, work with both)."""
    # The old workers died with "EOF when reading a line" reading stdin; this one never reads it.
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    options = WorkerOptions.from_env()
    logging.basicConfig(
        level=options.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    import runpod

    adapter = build_adapter(options)
    runpod.serverless.start(runpod_config(adapter, options))
