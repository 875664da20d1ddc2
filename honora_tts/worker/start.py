"""Starting the RunPod worker: read the worker's settings, load the model, build the one
:class:`~honora_tts.synthesis.SynthesisService` and its :class:`RunPodAdapter`, and run RunPod's
worker loop around its handler.

Settings (:class:`~honora_tts.settings.WorkerSettings`, read once here)
    ``HONORA_CONCURRENCY``: requests the worker holds at once (RunPod's
    ``concurrency_modifier``; default: on CUDA what half the free memory holds, 1 on a CPU, at
    most :data:`~honora_tts.settings.MAX_CONCURRENCY`). Each job runs in a thread of the
    worker's own pool and its decoding meets the others' in the model's one batch, whose rows
    follow from the concurrency and the device
    (:meth:`~honora_tts.model.XttsModel.size_batch`). Above 1 the worker takes its next job
    while one runs, which saves the runpod worker loop's idle 0.5-1 s between queued jobs
    (``python -m benchmarks p3``), at the price that a job may wait behind a busy worker while
    another worker is idle. ``HONORA_STREAMING=1``: the generator handler (a streaming
    deployment). ``HONORA_LOG_LEVEL`` (default INFO). ``HONORA_URL_DELIVERY_BYTES`` (default
    5 MiB): encoded audio above it goes out as a URL when ``delivery`` is ``auto`` and an output
    bucket (``BUCKET_*``) is configured. The model's settings are
    :mod:`honora_tts.model.loading`'s, the voice cache's :class:`honora_tts.voices.VoiceCache`'s.
    Retired variables (``HONORA_PREFETCH``, ``HONORA_WORKER_CONCURRENCY``, ``HONORA_MAX_BATCH``)
    are refused naming ``HONORA_CONCURRENCY``; like any invalid setting, the worker then stays up
    and answers ``model_not_ready`` saying so. ``HONORA_SERVE=http`` serves HTTP instead (a
    load-balancing endpoint: :mod:`honora_tts.worker.http_server`).

Either handler is async (:mod:`honora_tts.worker.threaded_handlers`): the SDK's loop stays free
to take jobs, post results and listen on its per-job stop channel, and a job RunPod stops has
its work stopped (its decoding row leaves the batch) before its slot counts as free.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from honora_tts.delivery import AudioDelivery
from honora_tts.log_safety import configure_logging
from honora_tts.model.loading import ModelLoadError
from honora_tts.settings import SettingsError, WorkerSettings
from honora_tts.synthesis import SpeechModel, SynthesisService
from honora_tts.version import configure_build
from honora_tts.worker.runpod_adapter import RunPodAdapter
from honora_tts.worker.threaded_handlers import (
    JobPool,
    concurrent_handler,
    concurrent_stream_handler,
)

log = logging.getLogger("honora_tts.worker")


def build_adapter(
    settings: WorkerSettings | None = None,
    *,
    loader: Callable[[], SpeechModel] | None = None,
    voices: Any = None,
    warm_up: bool = True,
) -> RunPodAdapter:
    """The worker's adapter from its ``settings`` (default: read from the environment now):
    the model loaded by ``loader`` (default: :func:`~honora_tts.model.load_model` with these
    settings; a failure is kept and answered as ``model_not_ready``), its batch sized for the
    worker's concurrency, ``voices`` (default: a :class:`~honora_tts.voices.VoiceCache`
    configured by the settings), warmed up."""
    settings = settings or WorkerSettings.from_env()
    configure_build(settings)
    if loader is None:
        def loader() -> SpeechModel:
            from honora_tts.model import load_model

            return load_model(settings=settings)
    if voices is None:
        from honora_tts.voices import VoiceCache

        voices = VoiceCache.from_settings(settings)
    service = SynthesisService.loading(loader, voices, delivery=AudioDelivery.for_settings(settings))
    concurrency = (service.model.size_batch(settings.concurrency) if service.model_loaded
                   else settings.concurrency or 1)
    if warm_up:
        service.warm_up()
    return RunPodAdapter(service, streaming=settings.streaming, concurrency=concurrency)


def runpod_config(adapter: RunPodAdapter, settings: WorkerSettings) -> dict[str, Any]:
    """What ``runpod.serverless.start`` gets: the worker's handler in a job pool of its own,
    and its concurrency."""
    pool = JobPool(adapter.concurrency)
    handler: Callable[[dict[str, Any]], Any] = (
        concurrent_stream_handler(adapter.handle_stream, pool) if settings.streaming
        else concurrent_handler(adapter.handle, pool))
    concurrency = adapter.concurrency

    def concurrency_modifier(_current: int) -> int:
        return concurrency

    return {
        "handler": handler,
        "return_aggregate_stream": settings.streaming,
        "concurrency_modifier": concurrency_modifier,
    }


def _process_age_ms() -> float | None:
    """Milliseconds since this process started (Linux's ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            up_s = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return round((up_s - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000, 1)


def main() -> None:
    """Run the worker: ``python -m honora_tts.worker`` or ``python worker/handler.py`` (RunPod's
    own flags, e.g. ``--test_input``, ``--rp_serve_api``, work with both)."""
    # The old workers died with "EOF when reading a line" reading stdin; this one never reads it.
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    configure_logging(logging.INFO, "%(asctime)s %(levelname)s %(name)s: %(message)s", sys.stderr)
    main_started = _process_age_ms()
    loader: Callable[[], SpeechModel] | None = None
    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        # Like a model that does not load: stay up and answer model_not_ready naming the
        # variable, so a misconfigured endpoint is visible instead of crash-looping.
        problem = f"the worker's settings are invalid: {exc}. Fix the endpoint's variables."
        log.critical(problem)
        settings = WorkerSettings.from_env({})

        def loader() -> SpeechModel:
            raise ModelLoadError(problem)
    logging.getLogger().setLevel(settings.log_level)
    if settings.serve == "http":  # a load-balancing endpoint: the worker serves HTTP itself
        from honora_tts.worker.http_server import serve

        serve(settings, lambda chosen, voices: build_adapter(chosen, loader=loader,
                                                             voices=voices))
        return

    started = time.perf_counter()
    import runpod

    runpod_import_ms = round((time.perf_counter() - started) * 1000, 1)
    adapter = build_adapter(settings, loader=loader)
    phases = {"runpod_import_ms": runpod_import_ms}
    if main_started is not None:
        phases["interpreter_to_main_ms"] = main_started
    ready = _process_age_ms()
    if ready is not None:
        phases["process_start_to_ready_ms"] = ready
    adapter.service.cold_start.update(phases)
    log.info("ready: %s", ", ".join(f"{k} {v:.0f}" for k, v in
                                    adapter.service.cold_start.items()))
    runpod.serverless.start(runpod_config(adapter, settings))
