"""Reference voices of a chosen length for benchmarks: the QA synthetic voice (a voiced buzz,
not a person), each variant distinct in content so that caches keyed by hash see a new voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from honora_tts import audio
from honora_tts.qa.reference_voice import synthetic_voice_samples

SAMPLE_RATE = 24_000
#: Longer voices repeat a base clip of this length (the content is irrelevant to sizes).
_BASE_SECONDS = 10.0


def write_voice(path: Path, seconds: float, variant: int = 0) -> Path:
    """A 16-bit WAV of ``seconds`` at 24 kHz; ``variant`` changes pitch and noise (and thus the
    file's hash)."""
    base = synthetic_voice_samples(
        min(seconds, _BASE_SECONDS), SAMPLE_RATE, f0=110.0 + 7.0 * variant, seed=variant
    )
    repeats = int(np.ceil(seconds / _BASE_SECONDS)) if seconds > _BASE_SECONDS else 1
    samples = np.tile(base, repeats)[: int(seconds * SAMPLE_RATE)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(audio.encode(samples, SAMPLE_RATE, "wav"))
    return path
