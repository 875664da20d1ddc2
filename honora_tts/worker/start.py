"""Starting the RunPod worker: read the worker's settings, load the model, build the one
:class:`~honora_tts.synthesis.SynthesisService` and its :class:`RunPodAdapter`, and run RunPod's
worker loop around the handler the settings pick.

Settings (:class:`~honora_tts.settings.WorkerSettings`, read once here)
    ``HONORA_STREAMING=1`` registers the generator handler (a streaming deployment).
    ``HONORA_PREFETCH=1`` registers the async handler with room for a second job: the worker
    takes its next job while one runs and starts it the moment the first ends (jobs still run
    one at a time). It saves the runpod worker loop's idle 0.5-1 s between queued jobs
    (``python -m benchmarks p3``: 1.9x one worker's throughput under a full queue), at the price that
    a job may wait behind a busy worker while another worker is idle: use it when the queue is
    rarely empty. ``HONORA_WORKER_CONCURRENCY`` sets jobs per worker otherwise (default 1); above
    1 each job runs in a thread of its own (:mod:`honora_tts.worker.threaded_handlers`), so a job
    waiting on a slow download holds up neither the others nor the SDK's worker loop.
    ``HONORA_SERVE=http`` serves HTTP instead (a load-balancing endpoint:
    :mod:`honora_tts.worker.http_server`). ``HONORA_LOG_LEVEL`` (default INFO). ``HONORA_URL_DELIVERY_BYTES`` (default 5 MiB): encoded
    audio above it goes out as a URL when ``delivery`` is ``auto`` and an output bucket
    (``BUCKET_*``) is configured. The model's settings are :mod:`honora_tts.model.loading`'s,
    the voice cache's :class:`honora_tts.voices.VoiceCache`'s.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from honora_tts.delivery import AudioDelivery
from honora_tts.log_safety import configure_logging
from honora_tts.model.loading import ModelLoadError
from honora_tts.settings import SettingsError, WorkerSettings
from honora_tts.synthesis import SpeechModel, SynthesisService
from honora_tts.version import configure_build
from honora_tts.worker.batching import concurrency_modifier, enable_batching
from honora_tts.worker.runpod_adapter import ASYNC_CONCURRENCY, RunPodAdapter
from honora_tts.worker.threaded_handlers import concurrent_handler, concurrent_stream_handler


def build_adapter(
    settings: WorkerSettings | None = None,
    *,
    loader: Callable[[], SpeechModel] | None = None,
    voices: Any = None,
    warm_up: bool = True,
) -> RunPodAdapter:
    """The worker's adapter from its ``settings`` (default: read from the environment now):
    the model loaded by ``loader`` (default: :func:`~honora_tts.model.load_model` with these
    settings; a failure is kept and answered as ``model_not_ready``), ``voices`` (default: a
    :class:`~honora_tts.voices.VoiceCache` configured by the settings), warmed up."""
    settings = settings or WorkerSettings.from_env()
    configure_build(settings)
    if loader is None:
        def loader() -> SpeechModel:
            from honora_tts.model import load_model

            return load_model(settings=settings)
    rows = enable_batching(loader, settings.max_batch) if settings.max_batch != 1 else 1
    if voices is None:
        from honora_tts.voices import VoiceCache

        voices = VoiceCache.from_settings(settings)
    service = SynthesisService.loading(loader, voices, delivery=AudioDelivery.for_settings(settings))
    if warm_up:
        service.warm_up()
    return RunPodAdapter(service, streaming=settings.streaming, batch_rows=rows)


def runpod_config(adapter: RunPodAdapter, settings: WorkerSettings) -> dict[str, Any]:
    """What ``runpod.serverless.start`` gets: the handler the settings pick and its
    concurrency."""
    def fixed(_current: int) -> int:
        return settings.worker_concurrency

    def prefetch(_current: int) -> int:
        return ASYNC_CONCURRENCY

    def threaded() -> Callable[[dict[str, Any]], Any]:
        return (concurrent_stream_handler(adapter.handle_stream) if settings.streaming
                else concurrent_handler(adapter.handle))

    handler: Callable[[dict[str, Any]], Any]
    if adapter.batch_rows > 1:  # jobs taken together decode together (HONORA_MAX_BATCH)
        handler, concurrency = threaded(), concurrency_modifier(adapter.batch_rows)
    elif settings.worker_concurrency > 1:  # side by side in threads: the SDK's loop stays free
        handler, concurrency = threaded(), fixed
    elif settings.streaming:
        handler, concurrency = adapter.handle_stream, fixed
    elif settings.prefetch:
        handler, concurrency = adapter.handle_async, prefetch
    else:
        handler, concurrency = adapter.handle, fixed
    return {
        "handler": handler,
        "return_aggregate_stream": settings.streaming,
        "concurrency_modifier": concurrency,
    }


def main() -> None:
    """Run the worker: ``python -m honora_tts.worker`` or ``python worker/handler.py`` (RunPod's
    own flags, e.g. ``--test_input``, ``--rp_serve_api``, work with both)."""
    # The old workers died with "EOF when reading a line" reading stdin; this one never reads it.
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    configure_logging(logging.INFO, "%(asctime)s %(levelname)s %(name)s: %(message)s", sys.stderr)
    loader: Callable[[], SpeechModel] | None = None
    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        # Like a model that does not load: stay up and answer model_not_ready naming the
        # variable, so a misconfigured endpoint is visible instead of crash-looping.
        problem = f"the worker's settings are invalid: {exc}. Fix the endpoint's variables."
        logging.getLogger("honora_tts.worker").critical(problem)
        settings = WorkerSettings.from_env({})

        def loader() -> SpeechModel:
            raise ModelLoadError(problem)
    logging.getLogger().setLevel(settings.log_level)
    if settings.serve == "http":  # a load-balancing endpoint: the worker serves HTTP itself
        from honora_tts.worker.http_server import serve

        serve(settings, lambda chosen, voices: build_adapter(chosen, loader=loader,
                                                             voices=voices))
        return
    import runpod

    adapter = build_adapter(settings, loader=loader)
    runpod.serverless.start(runpod_config(adapter, settings))
