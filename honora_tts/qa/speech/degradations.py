"""The degraded clips the speech checks must catch, made from any clean clip: noise, silence,
a sentence cut short, one followed by more audio, noise added, a clip slowed down, a clip driven
into clipping, and the nonsense text a babbling model says. The calibration, the tests and the
speaking stand-in's bad builds use them; espeak-ng (:mod:`.espeak`) and Piper
(:mod:`.piper_voice`) supply the clean clips."""

from __future__ import annotations

import numpy as np

from honora_tts import audio

DEFAULT_RATE = 22_050
_BABBLE_SYLLABLES = ("ba", "lo", "mi", "ta", "ke", "ru", "no", "si", "da", "po", "fe", "gu")


def white_noise(seconds: float, rate: int = DEFAULT_RATE, level: float = 0.2,
                seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, level / 3, int(seconds * rate))
            .clip(-1, 1).astype(np.float32))


def pink_noise(seconds: float, rate: int = DEFAULT_RATE, level: float = 0.2,
               seed: int = 0) -> np.ndarray:
    """1/f noise (spectrum shaped from white noise), peak ``level``."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0, 1, n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    x = np.fft.irfft(spectrum, n)
    return (level * x / max(float(np.abs(x).max()), 1e-9)).astype(np.float32)


def silence(seconds: float, rate: int = DEFAULT_RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def babble_text(seconds: float, seed: int = 0) -> str:
    """Nonsense words of two or three syllables, about ``seconds`` of them when spoken: what a
    model that does not stop says."""
    rng = np.random.default_rng(seed)
    return " ".join("".join(rng.choice(_BABBLE_SYLLABLES, size=int(rng.integers(2, 4))))
                    for _ in range(int(seconds * 4) + 8))


def looped_text(text: str, words: int = 2, times: int = 6) -> str:
    """``text`` followed by its last ``words`` words said ``times`` more times: XTTS's loop."""
    tail = " ".join(text.rstrip(".!?\"' ").split()[-words:])
    return f"{text.rstrip('.!?')} " + " ".join([tail] * times) + "."


def clipped(samples: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """``samples`` amplified by ``gain`` and clipped at full scale (a clip driven too hot)."""
    return np.clip(samples * gain, -1.0, 1.0).astype(np.float32)


def padded_to(samples: np.ndarray, length: int) -> np.ndarray:
    """``samples`` cut or padded with silence to ``length`` samples."""
    return np.pad(samples, (0, max(0, length - samples.size)))[:length].astype(np.float32)


def cut(samples: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """The first ``fraction`` of a clip (a sentence cut off)."""
    return samples[: int(samples.size * fraction)].copy()


def followed_by(samples: np.ndarray, extra: np.ndarray) -> np.ndarray:
    return np.concatenate([samples, extra]).astype(np.float32)


def with_noise(samples: np.ndarray, snr_db: float = 5.0, seed: int = 1) -> np.ndarray:
    """``samples`` with white noise added at ``snr_db`` (signal RMS over noise RMS)."""
    rms = float(np.sqrt(np.mean(np.square(samples)))) or 1e-4
    noise = np.random.default_rng(seed).normal(0, rms / (10 ** (snr_db / 20)), samples.size)
    return np.clip(samples + noise, -1, 1).astype(np.float32)


def time_stretched(samples: np.ndarray, factor: float = 1.35) -> np.ndarray:
    """``samples`` played ``factor`` times slower (pitch drops with it: a resampled clip)."""
    return audio.resample(samples, 1000, round(1000 * factor))
