"""The worker as an HTTP server for a RunPod load-balancing endpoint (``HONORA_SERVE=http``).

Same image, same service: the model loads in a thread while uvicorn already answers, so
``/ping`` says 204 (initializing) until the model is loaded and 200 after (RunPod routes
requests only to workers answering 200, and counts the time between as the cold start). The app
listens on ``PORT``; where RunPod sets a different ``PORT_HEALTH``, a second server answers
``/ping`` (and ``/health``) there. The routes: :mod:`honora_tts.worker.http_app`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from honora_tts.settings import WorkerSettings
from honora_tts.synthesis import SynthesisService
from honora_tts.voices.library import LibraryVoices, VoiceLibrary
from honora_tts.worker.http_app import HttpWorker, build_app
from honora_tts.worker.runpod_adapter import RunPodAdapter

log = logging.getLogger("honora_tts.worker")

def http_worker(settings: WorkerSettings) -> HttpWorker:
    """The routes' shared state for these settings (no model yet; ``HONORA_CONCURRENCY`` unset:
    the device's, once the model is loaded)."""
    return HttpWorker(VoiceLibrary.from_settings(settings), concurrency=settings.concurrency or 1)


AdapterFactory = Callable[[Any], RunPodAdapter]


def load_in_background(worker: HttpWorker, settings: WorkerSettings,
                       build: AdapterFactory) -> threading.Thread:
    """Build the service in a thread (``build(voices)``: the model loaded, warmed up); ``worker``
    turns ready when done (a model that fails to load is kept as ``model_not_ready``, as in the
    queue worker). The voices are the library's names and the voice cache's URLs."""
    def load() -> None:
        from honora_tts.voices import VoiceCache

        try:
            adapter = build(LibraryVoices(worker.library, VoiceCache.from_settings(settings)))
        except Exception as exc:
            log.exception("the worker could not be built")
            adapter = RunPodAdapter(SynthesisService(
                None, model_error=f"the worker could not start: {type(exc).__name__}: {exc}"))
        worker.set_ready(adapter)
        log.info("model %s; serving", "loaded" if adapter.service.model_loaded else "NOT loaded")

    thread = threading.Thread(target=load, name="honora-model-load", daemon=True)
    thread.start()
    return thread


def _listening(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see LocalPod.start
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def serve(settings: WorkerSettings,
          build: Callable[[WorkerSettings, Any], RunPodAdapter]) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn finishes the requests in flight).
    ``build(settings, voices)`` makes the worker's adapter
    (:func:`honora_tts.worker.start.build_adapter`)."""
    # In HTTP mode every worker streams: there are no RunPod stream items to stay under.
    settings = settings.model_copy(update={"streaming": True})
    worker = http_worker(settings)
    app = build_app(worker)
    ports = [settings.port]
    if settings.port_health and settings.port_health != settings.port:
        ports.append(settings.port_health)
    sockets = [_listening(settings.http_host, port) for port in ports]
    load_in_background(worker, settings, lambda voices: build(settings, voices))
    log.info("serving HTTP on %s (health on %s); the model is loading", settings.port,
             ports[-1])
    servers = [
        uvicorn.Server(uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=10, timeout_keep_alive=30, ws="none",
        ))
        for _ in sockets
    ]

    async def main() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock])
                               for server, sock in zip(servers, sockets, strict=True)))

    asyncio.run(main())
