"""Where the client sends its jobs: a RunPod endpoint from the environment, or localpod.

localpod is the embedded default wherever no RunPod endpoint is configured: a running one (its
state file) is used first, else one is started for the life of the process.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from honora_tts.client import _constants as C
from honora_tts.client._exceptions import ConfigurationError, EndpointUnavailable

log = logging.getLogger("honora_tts.client")

_embedded_lock = threading.Lock()
_embedded_pod: Any = None


@dataclass(frozen=True)
class EndpointSettings:
    """Coordinates of one endpoint. ``source`` says where they came from."""

    api_base: str
    endpoint_id: str
    api_key: str
    source: str


def settings_from_env(env: Mapping[str, str]) -> EndpointSettings:
    """RunPod settings from ``RUNPOD_*``; without ``RUNPOD_ENDPOINT_ID``, localpod's."""
    endpoint_id = (env.get(C.ENV_ENDPOINT_ID) or "").strip()
    if endpoint_id:
        api_key = (env.get(C.ENV_API_KEY) or "").strip()
        if not api_key:
            raise ConfigurationError(
                f"{C.ENV_ENDPOINT_ID} is set but {C.ENV_API_KEY} is not: create an API key in "
                "the RunPod console (Settings > API Keys) and export it."
            )
        api_base = (env.get(C.ENV_API_BASE) or C.DEFAULT_API_BASE).strip().rstrip("/")
        if not api_base.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{C.ENV_API_BASE} must be an http(s) URL such as {C.DEFAULT_API_BASE}, "
                f"got {api_base!r}"
            )
        return EndpointSettings(api_base, endpoint_id, api_key, source="environment")
    return _localpod_settings(env)


def _localpod_settings(env: Mapping[str, str]) -> EndpointSettings:
    try:
        from honora_tts import localpod
    except ImportError as exc:
        raise ConfigurationError(
            f"no RunPod endpoint is configured ({C.ENV_ENDPOINT_ID} is not set) and localpod "
            f"is not available ({exc}). Set {C.ENV_ENDPOINT_ID} and {C.ENV_API_KEY}."
        ) from exc
    running = localpod.find_running()
    if running:
        log.warning(
            "no RunPod endpoint is configured (%s is not set): using the running localpod at "
            "%s. Its workers may serve a tiny random-weights model whose audio is noise.",
            C.ENV_ENDPOINT_ID, running["base_url"],
        )
        return EndpointSettings(
            running["base_url"], running["endpoint_id"], running["api_key"], source="localpod"
        )
    pod = _embedded_localpod(env)
    return EndpointSettings(pod.base_url, pod.endpoint_id, pod.api_key, source="embedded")


def _embedded_localpod(env: Mapping[str, str]) -> Any:
    global _embedded_pod
    with _embedded_lock:
        if _embedded_pod is not None:
            return _embedded_pod
        from honora_tts.localpod import LocalPod, LocalPodError

        raw_workers = (env.get(C.ENV_LOCALPOD_WORKERS) or "1").strip()
        try:
            workers = max(1, int(raw_workers))
        except ValueError as exc:
            raise ConfigurationError(
                f"{C.ENV_LOCALPOD_WORKERS} must be a whole number, got {raw_workers!r}"
            ) from exc
        log.warning(
            "NO RUNPOD ENDPOINT IS CONFIGURED (%s is not set): starting an embedded localpod "
            "with %d worker(s) and the TINY RANDOM-WEIGHTS model. Its audio is NOISE, not "
            "speech. Set %s and %s to use RunPod.",
            C.ENV_ENDPOINT_ID, workers, C.ENV_ENDPOINT_ID, C.ENV_API_KEY,
        )
        pod = LocalPod(workers=workers, model="tiny")
        try:
            pod.start()
        except LocalPodError as exc:
            raise EndpointUnavailable(
                f"no RunPod endpoint is configured ({C.ENV_ENDPOINT_ID} is not set) and the "
                f"embedded localpod did not start: {exc}. Start one by hand "
                f"(`honora-tts localpod`) to see its worker logs, or set {C.ENV_ENDPOINT_ID} "
                f"and {C.ENV_API_KEY}."
            ) from exc
        atexit.register(pod.stop)
        _embedded_pod = pod
        return pod


def stop_embedded_localpod() -> None:
    """Stop the localpod :func:`settings_from_env` started for this process, if any."""
    global _embedded_pod
    with _embedded_lock:
        pod, _embedded_pod = _embedded_pod, None
    if pod is not None:
        atexit.unregister(pod.stop)
        pod.stop()
