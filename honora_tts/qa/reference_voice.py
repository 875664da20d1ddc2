"""A synthetic reference voice for runs that have no recorded one (CI, localpod, a first try).

It is a voiced buzz: a glottal-like harmonic series at a speaking pitch with slight vibrato,
shaped by three vowel formants and a syllable-rate envelope. It passes the workers' voice-file
checks and gives the speaker encoder something voice-like; it is not a person.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from honora_tts import audio

#: Formants (Hz) and bandwidths of an /a/-like vowel.
_FORMANTS = ((730.0, 90.0), (1090.0, 110.0), (2440.0, 170.0))


def synthetic_voice_samples(seconds: float = 3.0, sample_rate: int = 24_000, f0: float = 120.0,
                            seed: int = 0) -> np.ndarray:
    """Float32 mono samples of the synthetic voice, peak about -6 dBFS."""
    if seconds <= 0 or sample_rate <= 0 or f0 <= 0:
        raise ValueError("seconds, sample_rate and f0 must be positive")
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * 5.0 * t)) + rng.normal(0, 0.5, t.size)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    signal = np.zeros_like(t)
    for harmonic in range(1, int((sample_rate / 2) // (f0 * 1.1))):
        frequency = harmonic * f0
        gain = sum(1.0 / (1.0 + ((frequency - centre) / width) ** 2)
                   for centre, width in _FORMANTS) / harmonic ** 0.7
        signal += gain * np.sin(harmonic * phase)
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t - np.pi / 2) ** 2
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    signal *= syllables * fade
    signal += rng.normal(0, 0.003, t.size)
    peak = float(np.max(np.abs(signal))) or 1.0
    return (0.5 * signal / peak).astype(np.float32)


def write_synthetic_voice(path: str | Path, seconds: float = 3.0, sample_rate: int = 24_000,
                          f0: float = 120.0, seed: int = 0) -> Path:
    """Write the synthetic voice as 16-bit WAV (reused when the file exists) and return it."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = synthetic_voice_samples(seconds, sample_rate, f0, seed)
        path.write_bytes(audio.encode(samples, sample_rate, "wav"))
    return path
