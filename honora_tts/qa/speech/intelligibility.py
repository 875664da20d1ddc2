"""Intelligibility: word and character error rates (``jiwer``) of a transcript against the
expected text, both normalised first (:mod:`.text_normalization`; CER counts characters without
spaces), and two facts of the word alignment: ``missing_tail``, the share of the text's words
after the last one the transcript matched or substituted (a clip cut off misses its tail; a
clip spoken too fast mishears words all along but reaches the end), and ``extra_tail``, the
words the transcript adds after the text's last word, as a share of the text's words, with
``head_wer``, the WER without them (a model that says its text and then babbles on)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from honora_tts.qa.speech.text_normalization import normalize


@dataclass(frozen=True)
class ErrorRates:
    """WER and CER (0 = every word right; can exceed 1 with insertions), the share of the
    text's words missing at its end, the normalised texts compared, and the recogniser."""

    wer: float
    cer: float
    reference: str
    hypothesis: str
    backend: str = ""
    model: str = ""
    missing_tail: float = math.nan
    extra_tail: float = math.nan
    head_wer: float = math.nan

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
        return ErrorRates(1.0, 1.0, reference, hypothesis, backend, model, missing_tail=1.0,
                          extra_tail=0.0, head_wer=1.0)
    words = jiwer.process_words(reference, hypothesis)
    chunks = words.alignments[0]
    reached = max((chunk.ref_end_idx for chunk in chunks
                   if chunk.type in ("equal", "substitute")), default=0)
    total = len(reference.split())
    last = chunks[-1]
    added = last.hyp_end_idx - last.hyp_start_idx if last.type == "insert" else 0
    cer = float(jiwer.cer(reference.replace(" ", ""), hypothesis.replace(" ", "")))
    errors = words.substitutions + words.deletions + words.insertions
    return ErrorRates(float(words.wer), cer, reference, hypothesis, backend, model,
                      missing_tail=(total - reached) / total, extra_tail=added / total,
                      head_wer=(errors - added) / total)
