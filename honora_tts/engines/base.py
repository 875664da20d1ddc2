"""The team's engine API, shared by every engine.

``generate(text, voice, language, out_path) -> bool`` keeps the signature the team's scripts use:
``voice`` is a file name in the voices directory (``HONORA_VOICES_DIR``, default ``./voices``)
or ``''`` for the default voice, and the audio format follows ``out_path``'s suffix. It never
raises for a failed synthesis: it logs why and returns False. Richer calls (``synthesize``)
return :class:`~honora_tts.client.SynthesisResult` objects and raise typed errors.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from honora_tts.client import (
    ConfigurationError,
    HonoraClientError,
    SynthesisResult,
)
from honora_tts.client.local_files import (
    SUFFIX_FORMATS,
    VOICES_DIR_ENV,
    output_format,
    resolve_voice_file,
    voices_dir,
)
from honora_tts.protocol import SynthesisParams
from honora_tts.redaction import install_redaction
from honora_tts.settings import ClientSettings, SettingsError

log = install_redaction(logging.getLogger("honora_tts.engines"))

__all__ = [
    "PARAMS_ENV", "SUFFIX_FORMATS", "VOICES_DIR_ENV", "SynthesisEngine",
    "default_params", "merged_params", "output_format", "resolve_voice_file", "voices_dir",
]

#: JSON object of synthesis params every engine call starts from, e.g. '{"temperature": 0.7}'.
PARAMS_ENV = ClientSettings.env_names()["synthesis_params"]


def default_params(settings: ClientSettings) -> dict[str, Any]:
    """Synthesis params from ``HONORA_SYNTHESIS_PARAMS`` (validated), or {}."""
    if not settings.synthesis_params:
        return {}
    try:
        return SynthesisParams.model_validate(settings.synthesis_params).overrides()
    except ValueError as exc:
        raise ConfigurationError(
            f"{PARAMS_ENV} must be a JSON object of synthesis params (temperature, top_p, "
            f"speed, max_new_tokens, ...): {exc}"
        ) from exc


def merged_params(given: Any, settings: ClientSettings) -> dict[str, Any]:
    """``HONORA_SYNTHESIS_PARAMS`` overridden by the params of one call."""
    if isinstance(given, SynthesisParams):
        given = given.overrides()
    return {**default_params(settings), **dict(given or {})}


class SynthesisEngine(ABC):
    """An engine: ``synthesize`` (typed errors) plus the team's ``generate``/``health_check``."""

    name: str = "engine"

    def __init__(
        self, *, voices_directory: Path | None = None, settings: ClientSettings | None = None
    ) -> None:
        """``settings`` default to the process environment's, read once, here."""
        if settings is None:
            try:
                settings = ClientSettings.from_env()
            except SettingsError as exc:
                raise ConfigurationError(str(exc)) from None
        self.settings = settings
        self._voices_directory = voices_directory

    @property
    def voices_directory(self) -> Path:
        return self._voices_directory or voices_dir(self.settings)

    def merged_params(self, given: Any) -> dict[str, Any]:
        """``HONORA_SYNTHESIS_PARAMS`` overridden by the params of one call."""
        return merged_params(given, self.settings)

    @abstractmethod
    def synthesize(
        self, text: str, voice: Any = None, language: str = "en", **options: Any
    ) -> SynthesisResult:
        """Synthesize ``text``; ``voice`` is None (default voice) or a voice file path."""

    @abstractmethod
    def health_check(self) -> dict[str, Any]:
        """``{"status": "healthy", "version": {...}, ...}`` or
        ``{"status": "unhealthy", "error": "...", ...}``; never raises."""

    def close(self) -> None:
        """Release what the engine holds (connections, embedded servers)."""

    def generate(
        self, text: str, voice: str, language: str, out_path: str | os.PathLike[str]
    ) -> bool:
        """Synthesize ``text`` with ``voice`` (a file name in the voices directory, or '' for
        the default voice) into ``out_path``, written atomically. True on success; on failure
        logs the reason and returns False."""
        try:
            fmt = output_format(out_path)
            voice_file = resolve_voice_file(voice, self.voices_directory)
            result = self.synthesize(text, voice_file, language, format=fmt)
            result.save(out_path)
        except HonoraClientError as exc:
            log.error("%s: generate(%s) failed: %s: %s", self.name, _describe(text),
                      type(exc).__name__, exc)
            return False
        except (OSError, ValueError) as exc:
            log.error("%s: generate(%s) failed: %s: %s", self.name, _describe(text),
                      type(exc).__name__, exc)
            return False
        except Exception:  # the bool API logs why instead of raising
            log.exception("%s: generate(%s) failed unexpectedly", self.name, _describe(text))
            return False
        log.info(
            "%s: wrote %s (%.2f s of %s, request %s, job %s, worker %s, %.0f ms)",
            self.name, out_path, result.duration_s, result.format, result.request_id,
            result.job_id, result.worker_id, result.timings.client_ms,
        )
        return True


def _describe(text: str) -> str:
    short = text if len(text) <= 40 else text[:37] + "..."
    return repr(short)
