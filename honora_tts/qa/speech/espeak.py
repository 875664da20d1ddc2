"""Clips spoken by espeak-ng (a formant synthesiser, installed with the system), in every
language the golden set has, and espeak babble; the degraded kinds made from them live in
:mod:`.degradations`. Nothing here is downloaded."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from honora_tts import audio
from honora_tts.qa.speech.degradations import babble_text

ESPEAK_RATE = 22_050
#: espeak-ng voice variants used as distinct speakers (``VOICE+VARIANT``).
SPEAKERS = ("m1", "f3", "m7", "f4")


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


def babble(seconds: float, voice: str = "en-us", seed: int = 0) -> np.ndarray:
    """``seconds`` of speech-like nonsense syllables in ``voice`` (what a model that does not
    stop produces), at espeak's rate."""
    samples, _ = speak(babble_text(seconds, seed), voice)
    needed = int(seconds * ESPEAK_RATE)
    while samples.size < needed:
        samples = np.concatenate([samples, samples])
    return samples[:needed]
