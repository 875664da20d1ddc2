"""Intelligibility: word and character error rates (``jiwer``) of a transcript against the
expected text, both normalised first (:mod:`.text_normalization`). CER counts characters
without spaces."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from honora_tts.qa.speech.text_normalization import normalize


@dataclass(frozen=True)
class ErrorRates:
    """WER and CER (0 = every word right; can exceed 1 with insertions), the normalised texts
    compared, and the recogniser that heard it."""

    wer: float
    cer: float
    reference: str
    hypothesis: str
    backend: str = ""
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_rates(expected: str, heard: str, language: str = "en", *, backend: str = "",
                model: str = "") -> ErrorRates:
    """WER/CER of ``heard`` against ``expected``; NaN when the expected text has no words."""
    import jiwer

    reference, hypothesis = normalize(expected, language), normalize(heard, language)
    if not reference:
        return ErrorRates(math.nan, math.nan, reference, hypothesis, backend, model)
    if not hypothesis:
        return ErrorRates(1.0, 1.0, reference, hypothesis, backend, model)
    wer = float(jiwer.wer(reference, hypothesis))
    cer = float(jiwer.cer(reference.replace(" ", ""), hypothesis.replace(" ", "")))
    return ErrorRates(wer, cer, reference, hypothesis, backend, model)
