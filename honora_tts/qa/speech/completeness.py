"""Completeness: does the clip take as long as its text should?

The text's length is counted in letters after normalisation (numbers spelled out). The clip's
*speech time* counts its 20 ms frames above :data:`SPEECH_FLOOR_DBFS`, so silence before,
between and after the words does not count (pauses at commas vary more than speaking rates);
its *span* runs from the first such frame to the last. Per language, the calibration measured
how many letters per second of speech time espeak-ng speaks between a slow and a fast rate and
widened that range by a margin (:mod:`.calibration`); speech time shorter than the text needs
at the fastest rate is **truncated**, longer than it needs at the slowest is a **runaway** (a
model that does not stop). ``slack_s`` is added both ways, for short texts and breaths.

Limits: letters are a proxy for what is spoken; an abbreviation read out in full or a number
read as a year takes longer than its letters say, and a sentence cut at 60 % of its length and
spoken slowly can stay inside the range. Where a trusted recogniser covers the language its
text check catches such cuts as well.

Where the recogniser gives word times, ``trailing_audio_s`` is the speech span's end minus the
last recognised word's end: audio that goes on after the words stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from honora_tts.qa.speech.text_normalization import letter_count

SPEECH_FLOOR_DBFS = -45.0
FRAME_S = 0.020


@dataclass(frozen=True)
class SpeakingRate:
    """Letters per second a language is spoken at, lowest and highest accepted."""

    min_letters_per_s: float
    max_letters_per_s: float


@dataclass(frozen=True)
class Completeness:
    """Duration facts of one clip against its text."""

    letters: int
    speech_start_s: float
    speech_end_s: float
    span_s: float
    speech_s: float
    letters_per_s: float
    trailing_audio_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loud_frames(samples: np.ndarray, sample_rate: int, floor_dbfs: float) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    frame = max(1, int(FRAME_S * sample_rate))
    n = x.size // frame
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rms = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1))
    return np.nonzero(rms > 10 ** (floor_dbfs / 20))[0]


def speech_span(samples: np.ndarray, sample_rate: int,
                floor_dbfs: float = SPEECH_FLOOR_DBFS) -> tuple[float, float]:
    """(start, end) seconds of the part above ``floor_dbfs``; (0, 0) for a silent clip."""
    loud = _loud_frames(samples, sample_rate, floor_dbfs)
    if loud.size == 0:
        return 0.0, 0.0
    return float(loud[0] * FRAME_S), float((loud[-1] + 1) * FRAME_S)


def speech_time(samples: np.ndarray, sample_rate: int,
                floor_dbfs: float = SPEECH_FLOOR_DBFS) -> float:
    """Seconds of 20 ms frames above ``floor_dbfs``."""
    return float(_loud_frames(samples, sample_rate, floor_dbfs).size * FRAME_S)


def expected_span(letters: int, rate: SpeakingRate, slack_s: float,
                  min_longest_s: float = 0.0) -> tuple[float, float]:
    """(shortest, longest) speech span in seconds that ``letters`` letters may take; the
    longest is at least ``min_longest_s``."""
    return (max(0.0, letters / rate.max_letters_per_s - slack_s),
            max(min_longest_s, letters / rate.min_letters_per_s + slack_s))


def measure_completeness(samples: np.ndarray, sample_rate: int, text: str, language: str, *,
                         last_word_end_s: float = math.nan) -> Completeness:
    """Letters of the text, speech span, speaking rate and trailing audio (see the module)."""
    letters = letter_count(text, language)
    start, end = speech_span(samples, sample_rate)
    speech = speech_time(samples, sample_rate)
    trailing = end - last_word_end_s if math.isfinite(last_word_end_s) else math.nan
    return Completeness(
        letters=letters, speech_start_s=start, speech_end_s=end, span_s=end - start,
        speech_s=speech, letters_per_s=letters / speech if speech > 0 else math.nan,
        trailing_audio_s=max(0.0, trailing) if math.isfinite(trailing) else math.nan,
    )
