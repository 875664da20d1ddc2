"""espeak-ng clips for the speech-check tests, written once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from honora_tts import audio
from honora_tts.qa.speech import degradations, espeak

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
        noise=write(root / "noise.wav", degradations.white_noise(3.0, seed=11)),
        silence=write(root / "silence.wav", degradations.silence(3.0)),
        cut=write(root / "cut.wav", degradations.cut(sentence, 0.5)),
        babble=write(root / "babble.wav",
                     degradations.followed_by(sentence, espeak.babble(5.0, VOICE))),
        other_sentence=write(root / "other_sentence.wav", espeak.speak(EN_OTHER, VOICE)[0]),
        reference=write(root / "reference.wav", espeak.speak(EN_REFERENCE_TEXT, VOICE)[0]),
        other_reference=write(root / "other_reference.wav",
                              espeak.speak(EN_REFERENCE_TEXT, OTHER_VOICE)[0]),
        de_correct=write(root / "de_correct.wav", espeak.speak(DE_TEXT, "de+m1")[0]),
        de_other_sentence=write(root / "de_other.wav", espeak.speak(DE_OTHER, "de+m1")[0]),
    )


# --------------------------------------------------------------------- Piper (neural) clips

PIPER_KINDS = ("correct", "wrong_text", "truncated", "babble", "loop", "clipped", "fast_3x",
               "slow_3x", "noise", "silence")


def build_piper(root: Path) -> dict[str, Path]:
    """Every kind the verdict names, made from Piper's neural voice saying :data:`EN_TEXT`
    (judged against it), once per session: ``{kind: path}``."""
    from honora_tts.qa.speech import degradations, piper_voice

    sentence, rate = piper_voice.speak(EN_TEXT)
    made = {
        "correct": sentence,
        "wrong_text": piper_voice.speak(EN_OTHER)[0],
        "truncated": degradations.cut(sentence, 0.5),
        "babble": degradations.followed_by(
            sentence, piper_voice.speak(degradations.babble_text(5.0, seed=2))[0]),
        "loop": piper_voice.speak(degradations.looped_text(EN_TEXT))[0],
        "clipped": degradations.clipped(sentence, 8.0),
        "fast_3x": piper_voice.speak(EN_TEXT, length_scale=1 / 3)[0],
        "slow_3x": piper_voice.speak(EN_TEXT, length_scale=3.0)[0],
        "noise": degradations.white_noise(3.0, rate, seed=12),
        "silence": degradations.silence(3.0, rate),
    }
    return {kind: write(root / f"piper_{kind}.wav", samples, rate)
            for kind, samples in made.items()}
