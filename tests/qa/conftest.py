"""Fixtures of the qa tests: small WAV clips laid out as a listening test would find them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from honora_tts import audio


def write_tone(path: Path, frequency: float, seconds: float = 0.6, rate: int = 24_000,
               amplitude: float = 0.3) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(audio.encode(samples, rate, "wav"))
    return path


@pytest.fixture
def clip_dir(tmp_path: Path) -> Path:
    """``<condition>/<item>.wav``: 3 items under conditions 'baseline' and 'candidate'."""
    root = tmp_path / "clips"
    for c, condition in enumerate(("baseline", "candidate")):
        for i, item in enumerate(("greeting", "question", "numbers")):
            write_tone(root / condition / f"{item}.wav", 200 + 50 * i + 400 * c)
    return root
