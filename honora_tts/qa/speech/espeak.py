"""Clips spoken by espeak-ng (a formant synthesiser, installed with the system) and the
degraded cases the speech checks must catch: noise, silence, a sentence cut short, a sentence
followed by babble, a time-stretched clip. The calibration, the tests and the release gate's
examples are built from these; nothing here is downloaded."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from honora_tts import audio

ESPEAK_RATE = 22_050
#: espeak-ng voice variants used as distinct speakers (``VOICE+VARIANT``).
SPEAKERS = ("m1", "f3", "m7", "f4")
_BABBLE_SYLLABLES = ("ba", "lo", "mi", "ta", "ke", "ru", "no", "si", "da", "po", "fe", "gu")


class EspeakUnavailable(RuntimeError):
    """espeak-ng is not installed (Debian/Ubuntu: ``apt-get install espeak-ng``)."""


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", *, words_per_minute: int = 175,
          pitch: int | None = None) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: float32 mono samples and their rate (22050 Hz)."""
    if not espeak_available():
        raise EspeakUnavailable("espeak-ng is not on PATH: install it (apt-get install "
                                "espeak-ng) to build speech clips")
    command = ["espeak-ng", "-v", voice, "-s", str(int(words_per_minute)), "--stdout"]
    if pitch is not None:
        command += ["-p", str(int(pitch))]
    done = subprocess.run([*command, text], capture_output=True, check=False, timeout=60,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not done.stdout:
        raise EspeakUnavailable(f"espeak-ng -v {voice} failed: "
                                f"{done.stderr.decode(errors='replace')[:300]}")
    return audio.decode(_fix_stream_header(done.stdout))


def _fix_stream_header(data: bytes) -> bytes:
    # espeak-ng --stdout writes a streaming WAV header whose sizes are 0x7fffffff.
    if data[:4] != b"RIFF" or len(data) < 44:
        return data
    fixed = bytearray(data)
    fixed[4:8] = (len(data) - 8).to_bytes(4, "little")
    fixed[40:44] = (len(data) - 44).to_bytes(4, "little")
    return bytes(fixed)


def white_noise(seconds: float, rate: int = ESPEAK_RATE, level: float = 0.2,
                seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, level / 3, int(seconds * rate))
            .clip(-1, 1).astype(np.float32))


def pink_noise(seconds: float, rate: int = ESPEAK_RATE, level: float = 0.2,
               seed: int = 0) -> np.ndarray:
    """1/f noise (spectrum shaped from white noise), peak ``level``."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0, 1, n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    x = np.fft.irfft(spectrum, n)
    return (level * x / max(float(np.abs(x).max()), 1e-9)).astype(np.float32)


def silence(seconds: float, rate: int = ESPEAK_RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def babble(seconds: float, voice: str = "en-us", seed: int = 0) -> np.ndarray:
    """``seconds`` of speech-like nonsense syllables in ``voice`` (what a model that does not
    stop produces), at espeak's rate."""
    rng = np.random.default_rng(seed)
    words = " ".join("".join(rng.choice(_BABBLE_SYLLABLES, size=int(rng.integers(2, 4))))
                     for _ in range(int(seconds * 4) + 8))
    samples, _ = speak(words, voice)
    needed = int(seconds * ESPEAK_RATE)
    while samples.size < needed:
        samples = np.concatenate([samples, samples])
    return samples[:needed]


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
