"""The localpod a process's clients share when they opt in to a local endpoint
(``EndpointClient.from_env(endpoint="localpod")``): a running ``honora-tts localpod`` if there
is one, else one started for this process (tiny random-weights model) and stopped at exit."""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from typing import Literal

from honora_tts.localpod import discovery
from honora_tts.localpod.pod import LocalPod

_lock = threading.Lock()
_pod: LocalPod | None = None


@dataclass(frozen=True)
class LocalEndpoint:
    """Where a local endpoint answers. ``started``: this process started it (else it was
    running already)."""

    base_url: str
    endpoint_id: str
    api_key: str
    started: bool
    management_api_key: str | None = None
    #: ``load_balancing`` for a ``honora-tts localpod --load-balancing``.
    mode: Literal["queue", "load_balancing"] = "queue"


def running_localpod() -> LocalEndpoint | None:
    """A localpod started by ``honora-tts localpod`` that is still running, or None."""
    state = discovery.find_running()
    if not state:
        return None
    balanced = state.get("mode") == "load_balancing"
    return LocalEndpoint(state["base_url"], state["endpoint_id"], state["api_key"],
                         started=False, management_api_key=state.get("management_api_key"),
                         mode="load_balancing" if balanced else "queue")


def process_localpod(workers: int = 1) -> LocalEndpoint:
    """This process's own localpod, started on first use with ``workers`` workers (the tiny
    model: its audio is noise). Raises :class:`~honora_tts.localpod.LocalPodError` when it
    cannot start."""
    global _pod
    with _lock:
        if _pod is None:
            pod = LocalPod(workers=workers, model="tiny")
            pod.start()
            atexit.register(pod.stop)
            _pod = pod
        return LocalEndpoint(_pod.base_url, _pod.endpoint_id, _pod.api_key, started=True,
                             management_api_key=_pod.management_api_key)


def stop_process_localpod() -> None:
    """Stop the localpod :func:`process_localpod` started, if any."""
    global _pod
    with _lock:
        pod, _pod = _pod, None
    if pod is not None:
        atexit.unregister(pod.stop)
        pod.stop()
