"""The reference voice used when a request names none: espeak-ng speaking a fixed sentence, or a
synthetic voiced signal where espeak-ng is missing."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from honora_tts import audio
from honora_tts.files import file_lock, write_atomically
from honora_tts.model.constants import DEFAULT_VOICE_FILE, SAMPLE_RATE

logger = logging.getLogger(__name__)

_REFERENCE_SENTENCE = (
    "Hello, this is the default reference voice. It speaks clearly and calmly, "
    "so that every word can be heard."
)


def _synthetic_voice(seconds: float = 4.0, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A voiced, speech-like signal: a gliding 90-160 Hz pitch, harmonics shaped by moving
    formants, and syllable-rate amplitude."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.4 * t) + 8 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    vowel = (np.sin(2 * np.pi * 1.7 * t) + 1) / 2
    formants = [(500 + 300 * vowel, 90), (1500 + 600 * vowel, 120), (2500, 160)]
    signal = np.zeros_like(t)
    for k in range(1, 40):
        freq = k * f0
        gain = sum(np.exp(-0.5 * ((freq - fc) / bw) ** 2) for fc, bw in formants) + 0.02
        signal += gain * np.sin(k * phase) / k**0.5
    syllables = np.clip(np.sin(2 * np.pi * 3.8 * t), 0, None) ** 0.6
    signal *= syllables
    signal += np.random.default_rng(0).normal(0, 0.003, t.size)
    return (0.6 * signal / np.max(np.abs(signal))).astype(np.float32)


def write_reference_voice(path: Path) -> str:
    """Write a reference voice WAV (24 kHz, 16-bit): espeak-ng speaking a fixed sentence, or a
    synthetic voiced signal where espeak-ng is missing. Returns which one (``espeak-ng`` or
    ``synthetic``)."""
    samples, source = None, "synthetic"
    espeak = shutil.which("espeak-ng")
    if espeak:
        with tempfile.TemporaryDirectory() as scratch:
            wav = Path(scratch) / "voice.wav"
            try:
                subprocess.run(
                    [espeak, "-v", "en", "-s", "150", "-w", str(wav), _REFERENCE_SENTENCE],
                    check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                )
                decoded, rate = audio.decode(wav.read_bytes())
                if audio.duration_s(decoded, rate) >= 2.0:
                    samples, source = audio.resample(decoded, rate, SAMPLE_RATE), "espeak-ng"
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                logger.warning("espeak-ng failed (%s); using a synthetic reference voice", exc)
    if samples is None:
        samples = _synthetic_voice()
    peak = float(np.max(np.abs(samples))) or 1.0
    write_atomically(path, audio.encode(samples * (0.7 / peak), SAMPLE_RATE, "wav"))
    return source


def cached_default_voice(cache_root: Path) -> Path:
    """The reference voice under ``cache_root``, written once (under a file lock)."""
    path = cache_root / "default-voice" / DEFAULT_VOICE_FILE
    if not path.is_file():
        with file_lock(path.with_suffix(".lock")):
            if not path.is_file():
                write_reference_voice(path)
    return path
