"""The entry point the team's scripts use::

    from honora_tts import engine_manager

    engine = engine_manager.get_engine("xtts-runpod")
    engine.health_check()
    engine.generate("Hello world.", "", "en", "/tmp/hello.wav")

Engines are created once per name and process, and shared (they are thread-safe).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from honora_tts.engines.base import SynthesisEngine
from honora_tts.engines.xtts_local import XttsLocalEngine
from honora_tts.engines.xtts_runpod import XttsRunpodEngine

ENGINES: dict[str, Callable[[], SynthesisEngine]] = {
    XttsRunpodEngine.name: XttsRunpodEngine,
    XttsLocalEngine.name: XttsLocalEngine,
}

_lock = threading.Lock()
_engines: dict[str, SynthesisEngine] = {}


def available_engines() -> list[str]:
    """Names :func:`get_engine` accepts."""
    return sorted(ENGINES)


def get_engine(name: str) -> SynthesisEngine:
    """The process-wide engine called ``name`` (``xtts-runpod`` or ``xtts-local``)."""
    key = name.strip().lower()
    factory = ENGINES.get(key)
    if factory is None:
        raise ValueError(
            f"unknown engine {name!r}; available: {', '.join(available_engines())}"
        )
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = factory()
        return engine


def reset_engines() -> None:
    """Close and forget every engine (after changing the environment, and in tests)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.close()
