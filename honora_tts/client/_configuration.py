"""Where the client sends its jobs: the RunPod endpoint the environment (or the caller) names,
or, only when asked for with ``endpoint="localpod"``, a local endpoint.

A local endpoint is a running ``honora-tts localpod``, else one started for the life of the
process (the tiny random-weights model: its audio is noise, and a loud warning says so). It
needs the ``[localpod]`` extra; the light client install never starts one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from honora_tts.client import _constants as C
from honora_tts.client._exceptions import (
    ConfigurationError,
    EndpointNotConfigured,
    EndpointUnavailable,
)
from honora_tts.settings import LOAD_BALANCER_BASE, ClientSettings, SettingsError

log = logging.getLogger("honora_tts.client")

#: The ``endpoint`` value that selects a local endpoint instead of a RunPod endpoint id.
LOCALPOD = "localpod"
LOCALPOD_EXTRA = "pip install 'honora-tts[localpod]'"


EndpointMode = Literal["queue", "load_balancing"]


@dataclass(frozen=True)
class EndpointSettings:
    """Coordinates of one endpoint. ``source`` says where they came from; ``mode``: a
    queue-based endpoint (``/run``, ``/status``) or a load-balancing one (the workers' own
    routes, ``api_base`` their base URL), with its worker ``affinity``."""

    api_base: str
    endpoint_id: str
    api_key: str
    source: str
    #: The management API's key where it differs from ``api_key`` (None: the same key).
    management_api_key: str | None = None
    mode: EndpointMode = "queue"
    affinity: Literal["soft", "strict", "off"] = "soft"


def client_settings(env: Mapping[str, str] | None = None) -> ClientSettings:
    """:class:`ClientSettings` from ``env`` (default: the process environment); a bad value is
    a :class:`ConfigurationError` naming the variable."""
    try:
        return ClientSettings.from_env(env)
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None


def settings_from_env(
    env: Mapping[str, str] | ClientSettings | None = None,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
) -> EndpointSettings:
    """The endpoint to use, from :class:`ClientSettings` (or the mapping they are read from).

    ``endpoint``: None for ``RUNPOD_ENDPOINT_ID`` (:class:`EndpointNotConfigured` when unset),
    ``"localpod"`` for a local endpoint, else a RunPod endpoint id. ``api_key`` and
    ``api_base`` default to ``RUNPOD_API_KEY`` and ``RUNPOD_API_BASE`` (then RunPod's API).
    """
    settings = env if isinstance(env, ClientSettings) else client_settings(env)
    if endpoint is not None and endpoint.strip().lower() == LOCALPOD and not api_base:
        return _localpod_settings(settings)
    chosen = (endpoint if endpoint is not None else settings.endpoint_id or "").strip()
    if not chosen:
        raise EndpointNotConfigured(
            f"no endpoint is configured: set {C.ENV_ENDPOINT_ID} and {C.ENV_API_KEY} (RunPod "
            "console > Serverless > your endpoint, and Settings > API Keys), or pass "
            f"endpoint={LOCALPOD!r} for a local endpoint (`honora-tts localpod`; needs "
            f"{LOCALPOD_EXTRA})."
        )
    configured_key = settings.api_key.get_secret_value() if settings.api_key else ""
    key = (api_key or configured_key).strip()
    if not key:
        raise ConfigurationError(
            f"no API key for endpoint {chosen!r}: {C.ENV_API_KEY} is not set. Create an API "
            "key in the RunPod console (Settings > API Keys) and export it."
        )
    base = (api_base or settings.api_base).strip().rstrip("/")
    mode = settings.endpoint_mode
    if mode == "load_balancing" and not api_base and base == C.DEFAULT_API_BASE:
        base = LOAD_BALANCER_BASE.format(endpoint_id=chosen)
    if not base.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{C.ENV_API_BASE} must be an http(s) URL such as {C.DEFAULT_API_BASE}, "
            f"got {base!r}"
        )
    source = "environment" if endpoint is None else "arguments"
    management_key = (
        settings.management_api_key.get_secret_value().strip()
        if settings.management_api_key else ""
    )
    return EndpointSettings(base, chosen, key, source=source,
                            management_api_key=management_key or None, mode=mode,
                            affinity=settings.worker_affinity)


def _localpod_settings(settings: ClientSettings) -> EndpointSettings:
    try:
        from honora_tts.localpod import LocalPodError
        from honora_tts.localpod.process_pod import process_localpod, running_localpod
    except ImportError as exc:
        raise ConfigurationError(
            f"endpoint={LOCALPOD!r} needs localpod, which this install lacks ({exc}): "
            f"{LOCALPOD_EXTRA}. Or set {C.ENV_ENDPOINT_ID} and {C.ENV_API_KEY} to use RunPod."
        ) from exc
    running = running_localpod()
    if running is not None:
        log.warning(
            "using the running localpod at %s. Its workers may serve a tiny random-weights "
            "model whose audio is noise.", running.base_url,
        )
        return EndpointSettings(
            running.base_url, running.endpoint_id, running.api_key, source="localpod",
            management_api_key=running.management_api_key,
            mode=running.mode, affinity=settings.worker_affinity,
        )
    workers = settings.localpod_workers
    log.warning(
        "STARTING A LOCALPOD for this process (no `honora-tts localpod` is running) with %d "
        "worker(s) and the TINY RANDOM-WEIGHTS model. Its audio is NOISE, not speech. Set %s "
        "and %s to use RunPod.", workers, C.ENV_ENDPOINT_ID, C.ENV_API_KEY,
    )
    try:
        pod = process_localpod(workers)
    except LocalPodError as exc:
        raise EndpointUnavailable(
            f"the local endpoint (localpod) did not start: {exc}. Start one by hand "
            f"(`honora-tts localpod`) to see its worker logs, or set {C.ENV_ENDPOINT_ID} "
            f"and {C.ENV_API_KEY} to use RunPod."
        ) from exc
    return EndpointSettings(pod.base_url, pod.endpoint_id, pod.api_key, source="embedded",
                            management_api_key=pod.management_api_key)
