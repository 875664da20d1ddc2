"""``xtts-runpod``: synthesis on the RunPod endpoint (or localpod) through the endpoint client."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from honora_tts.client import (
    EndpointClient,
    EndpointNotConfigured,
    HonoraClientError,
    JobFailed,
    StaleWorkerError,
    SynthesisResult,
)
from honora_tts.engines.base import SynthesisEngine, log
from honora_tts.settings import ClientSettings


class XttsRunpodEngine(SynthesisEngine):
    """The team's engine API over :class:`EndpointClient`. Thread-safe; the client is made on
    first use from the environment (``RUNPOD_*``); without ``RUNPOD_ENDPOINT_ID`` the engine
    falls back to localpod (a running one, else one it starts) and logs loudly that it does."""

    name = "xtts-runpod"

    def __init__(
        self,
        client: EndpointClient | None = None,
        *,
        settings: ClientSettings | None = None,
        deadline_s: float | None = None,
        voices_directory: Path | None = None,
    ) -> None:
        super().__init__(voices_directory=voices_directory, settings=settings)
        self._client = client
        self._deadline_s = deadline_s
        self._lock = threading.Lock()

    @property
    def client(self) -> EndpointClient:
        """The endpoint client (raises ConfigurationError when none can be configured)."""
        with self._lock:
            if self._client is None:
                self._client = _client_from_settings(self.settings)
            return self._client

    def synthesize(
        self, text: str, voice: Any = None, language: str = "en", **options: Any
    ) -> SynthesisResult:
        """:meth:`EndpointClient.synthesize` with this engine's deadline and the params of
        ``HONORA_SYNTHESIS_PARAMS``."""
        options["params"] = self.merged_params(options.get("params"))
        if self._deadline_s is not None:
            options.setdefault("deadline_s", self._deadline_s)
        return self.client.synthesize(text, voice, language, **options)

    def health_check(self) -> dict[str, Any]:
        """One health job: ``status``, ``version``, ``worker_id``, ``health`` and timings; on
        failure ``{"status": "unhealthy", "error": ..., "error_type": ..., "version": ...}``
        where ``version`` is the answering worker's record, or None when no worker answered.
        Never raises."""
        try:
            report = self.client.health_job()
        except HonoraClientError as exc:
            log.error("%s: health check failed: %s: %s", self.name, type(exc).__name__, exc)
            return _unhealthy(exc)
        except Exception as exc:  # noqa: BLE001 - the team's scripts expect a dict, always
            log.exception("%s: health check failed unexpectedly", self.name)
            return _unhealthy(exc)
        answer = report.to_dict()
        if report.status != "healthy":
            answer["status"] = "unhealthy"
            answer["error"] = f"the worker reports status {report.status!r}"
        return answer

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _client_from_settings(settings: ClientSettings) -> EndpointClient:
    try:
        return EndpointClient.from_env(settings)
    except EndpointNotConfigured:
        log.warning(
            "xtts-runpod: RUNPOD_ENDPOINT_ID IS NOT SET: FALLING BACK TO LOCALPOD (a running "
            "`honora-tts localpod`, else one started now with the TINY RANDOM-WEIGHTS model, "
            "whose audio is NOISE). Set RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY to use RunPod."
        )
    return EndpointClient.from_env(settings, endpoint="localpod")


def _unhealthy(exc: Exception) -> dict[str, Any]:
    """A failed health check: what went wrong, and the answering worker's version if one did."""
    version = getattr(exc, "version", None)
    answered = isinstance(exc, (JobFailed, StaleWorkerError)) and version is not None
    return {
        "status": "unhealthy", "error": str(exc), "error_type": type(exc).__name__,
        "version": version.model_dump(mode="json") if answered and version else None,
    }
