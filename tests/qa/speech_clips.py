"""espeak-ng clips for the speech-check tests, written once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from honora_tts import audio
from honora_tts.qa.speech import espeak

EN_TEXT = "Please call Stella and ask her to bring these things with her."
EN_OTHER = "The meeting starts at nine and will end just before lunch."
EN_REFERENCE_TEXT = "Good morning, and welcome to the station."
DE_TEXT = "Im Sommer fahren wir oft an den See."
DE_OTHER = "Wissen Sie, wo die nächste Apotheke ist?"
VOICE = "en-us+m1"
OTHER_VOICE = "en-us+f4"


@dataclass(frozen=True)
class SpeechClips:
    """Paths of the session's clips, by case."""

    root: Path
    correct: Path
    noise: Path
    silence: Path
    cut: Path
    babble: Path
    other_sentence: Path
    reference: Path
    other_reference: Path
    de_correct: Path
    de_other_sentence: Path


def write(path: Path, samples: np.ndarray, rate: int = espeak.ESPEAK_RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(audio.encode(samples, rate, "wav"))
    return path


def build(root: Path) -> SpeechClips:
    sentence, _ = espeak.speak(EN_TEXT, VOICE)
    return SpeechClips(
        root=root,
        correct=write(root / "correct.wav", sentence),
        noise=write(root / "noise.wav", espeak.white_noise(3.0, seed=11)),
        silence=write(root / "silence.wav", espeak.silence(3.0)),
        cut=write(root / "cut.wav", espeak.cut(sentence, 0.5)),
        babble=write(root / "babble.wav",
                     espeak.followed_by(sentence, espeak.babble(5.0, VOICE))),
        other_sentence=write(root / "other_sentence.wav", espeak.speak(EN_OTHER, VOICE)[0]),
        reference=write(root / "reference.wav", espeak.speak(EN_REFERENCE_TEXT, VOICE)[0]),
        other_reference=write(root / "other_reference.wav",
                              espeak.speak(EN_REFERENCE_TEXT, OTHER_VOICE)[0]),
        de_correct=write(root / "de_correct.wav", espeak.speak(DE_TEXT, "de+m1")[0]),
        de_other_sentence=write(root / "de_other.wav", espeak.speak(DE_OTHER, "de+m1")[0]),
    )
