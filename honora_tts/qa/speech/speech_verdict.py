"""One verdict per clip, with the evidence that decided it, and the text check reported apart.

Verdicts, in the order they are tested (the first that holds wins):

- ``not_speech``: non-finite samples; less than ``min_speech_s`` above the speech floor
  (silence); or DNSMOS SIG, P.808 or OVRL below its calibrated speech minimum (noise, buzz).
- ``truncated``: the speech span is shorter than the text needs at the fastest calibrated
  speaking rate.
- ``runaway``: the span is longer than the text needs at the slowest rate, or audio goes on
  more than the calibrated maximum after the last recognised word.
- ``wrong_text``: a recogniser *trusted for the language* (calibrated) says the clip does not
  say its text.
- ``wrong_voice``: similarity to the reference voice below the calibrated minimum.
- ``speech``: none of the above. It is reachable from predicted quality, duration and signal
  alone: the text check is reported apart as ``verified``, ``wrong`` or ``not_verified``
  (no trusted recogniser covers the language, or it could not judge this text), so a clip can
  be ``speech`` with ``text: not_verified``, and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from honora_tts.qa.speech.asr import asr_backend
from honora_tts.qa.speech.clip_measures import SpeechMeasures, measure_speech
from honora_tts.qa.speech.completeness import expected_span
from honora_tts.qa.speech.thresholds import SpeechThresholds, load_thresholds


class Verdict(StrEnum):
    SPEECH = "speech"
    NOT_SPEECH = "not_speech"
    WRONG_TEXT = "wrong_text"
    TRUNCATED = "truncated"
    RUNAWAY = "runaway"
    WRONG_VOICE = "wrong_voice"


class TextCheck(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    NOT_VERIFIED = "not_verified"


@dataclass(frozen=True)
class SpeechVerdict:
    """A clip's verdict, its text check, why, and the measures (flat, JSON-ready)."""

    verdict: Verdict
    text_check: TextCheck
    reasons: tuple[str, ...]
    text_reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def is_speech(self) -> bool:
        return self.verdict == Verdict.SPEECH

    def line(self) -> str:
        """One line for people: verdict, text check and the first reason."""
        why = self.reasons[0] if self.reasons else ""
        return f"{self.verdict} (text: {self.text_check}){': ' + why if why else ''}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"], data["text_check"] = str(self.verdict), str(self.text_check)
        data["reasons"] = list(self.reasons)
        return data


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def text_check(measures: SpeechMeasures, thresholds: SpeechThresholds
               ) -> tuple[TextCheck, str]:
    """verified / wrong / not_verified, and why."""
    if measures.transcript is None or measures.text_match is None:
        return TextCheck.NOT_VERIFIED, (f"no recogniser here covers language "
                                        f"{measures.language!r}")
    backend = measures.transcript.backend
    trust = thresholds.text_trust_for(backend, measures.language)
    if trust is None:
        return TextCheck.NOT_VERIFIED, (f"{backend} was not calibrated for "
                                        f"{measures.language!r}")
    if not trust.trusted:
        return TextCheck.NOT_VERIFIED, (
            f"{backend} is not trusted for {measures.language!r}: in calibration it accepted "
            f"{trust.accepted_right:.0%} of right texts and rejected {trust.rejected_wrong:.0%} "
            "of wrong ones")
    mismatch = measures.text_match.mismatch
    if not _finite(mismatch):
        detail = measures.text_match.detail
        if "too_few_words" in detail:
            why = (f"{detail['too_few_words']} word(s); its check needs at least "
                   f"{detail['min_words']}")
        elif detail.get("missing_from_dictionary"):
            why = f"words missing from its dictionary: {detail['missing_from_dictionary']}"
        else:
            why = str(detail.get("error", detail))
        return TextCheck.NOT_VERIFIED, f"{backend} could not judge this text: {why}"
    if mismatch <= trust.mismatch_max:
        return TextCheck.VERIFIED, f"{backend} {measures.text_match.method}: the text matches"
    return TextCheck.WRONG, (f"{backend} {measures.text_match.method}: the audio does not say "
                             f"the text (mismatch {mismatch:.2f} > {trust.mismatch_max:.2f})")


def evidence_of(measures: SpeechMeasures, thresholds: SpeechThresholds) -> dict[str, Any]:
    """The measures and the limits they were held to, flat (for tables and JSON)."""
    c = measures.completeness
    low, high = expected_span(c.letters, thresholds.speaking_rate(measures.language),
                              thresholds.slack_s, thresholds.min_expected_max_s)
    rates = measures.error_rates
    return {
        "duration_s": measures.signal.duration_s,
        "speech_s": c.speech_s, "span_s": c.span_s, "expected_min_s": low, "expected_max_s": high,
        "letters_per_s": c.letters_per_s, "trailing_audio_s": c.trailing_audio_s,
        "silence_ratio": measures.signal.silence_ratio,
        "clipping_ratio": measures.signal.clipping_ratio,
        "peak_dbfs": measures.signal.peak_dbfs, "loudness_lufs": measures.signal.loudness_lufs,
        "finite": measures.finite,
        "dnsmos_ovrl": measures.quality.ovrl, "dnsmos_sig": measures.quality.sig,
        "dnsmos_bak": measures.quality.bak, "dnsmos_p808": measures.quality.p808,
        "wer": rates.wer if rates else math.nan, "cer": rates.cer if rates else math.nan,
        "transcript": measures.transcript.text if measures.transcript else None,
        "text_mismatch": measures.text_match.mismatch if measures.text_match else math.nan,
        "speaker_similarity": measures.speaker_similarity,
        "backends": dict(measures.backends),
    }


def judge(measures: SpeechMeasures, thresholds: SpeechThresholds | None = None
          ) -> SpeechVerdict:
    """The verdict of measured clip (see the module docstring for the rules)."""
    t = thresholds or load_thresholds()
    ev = evidence_of(measures, t)
    check, text_reason = text_check(measures, t)
    backend = measures.transcript.backend if measures.transcript else ""
    trailing_max = t.trailing_audio_max_s.get(backend, math.inf)
    sig, p808, ovrl = ev["dnsmos_sig"], ev["dnsmos_p808"], ev["dnsmos_ovrl"]
    reasons: list[str] = []
    verdict = Verdict.SPEECH
    if not measures.finite:
        verdict, reasons = Verdict.NOT_SPEECH, ["the samples hold NaN or infinity"]
    elif ev["speech_s"] < t.min_speech_s:
        verdict = Verdict.NOT_SPEECH
        reasons = [(f"silent: {ev['speech_s']:.2f} s above the speech floor "
                   f"(< {t.min_speech_s:.2f} s)")]
    elif not (_finite(sig) and sig >= t.dnsmos_sig_min and p808 >= t.dnsmos_p808_min
              and ovrl >= t.dnsmos_ovrl_min):
        verdict = Verdict.NOT_SPEECH
        reasons = [(f"not speech-like: DNSMOS SIG {sig:.2f} (speech >= {t.dnsmos_sig_min:.2f}), "
                   f"P.808 {p808:.2f} (>= {t.dnsmos_p808_min:.2f}), OVRL {ovrl:.2f} "
                   f"(>= {t.dnsmos_ovrl_min:.2f})")]
    elif ev["speech_s"] < ev["expected_min_s"]:
        verdict = Verdict.TRUNCATED
        reasons = [(f"{ev['speech_s']:.2f} s of speech for {measures.completeness.letters} "
                   f"letters; the text needs at least {ev['expected_min_s']:.2f} s")]
    elif ev["speech_s"] > ev["expected_max_s"]:
        verdict = Verdict.RUNAWAY
        reasons = [(f"{ev['speech_s']:.2f} s of speech for {measures.completeness.letters} "
                   f"letters; the text takes at most {ev['expected_max_s']:.2f} s")]
    elif _finite(ev["trailing_audio_s"]) and ev["trailing_audio_s"] > trailing_max:
        verdict = Verdict.RUNAWAY
        reasons = [(f"{ev['trailing_audio_s']:.2f} s of audio after the last recognised word "
                   f"(> {trailing_max:.2f} s)")]
    elif check == TextCheck.WRONG:
        verdict, reasons = Verdict.WRONG_TEXT, [text_reason]
    elif _finite(ev["speaker_similarity"]) and ev["speaker_similarity"] < t.similarity_min:
        verdict = Verdict.WRONG_VOICE
        reasons = [(f"speaker similarity {ev['speaker_similarity']:.3f} to the reference "
                   f"(same voice >= {t.similarity_min:.3f})")]
    if verdict == Verdict.SPEECH:
        reasons = [(f"speech-like (DNSMOS SIG {sig:.2f}, P.808 {p808:.2f}), "
                   f"{ev['speech_s']:.2f} s within {ev['expected_min_s']:.2f}-"
                   f"{ev['expected_max_s']:.2f} s")]
    return SpeechVerdict(verdict, check, tuple(reasons), text_reason, ev)


def check_clip(samples: np.ndarray, sample_rate: int, text: str, language: str, *,
               reference: tuple[np.ndarray, int] | None = None,
               thresholds: SpeechThresholds | None = None,
               asr_model: str | None = None) -> SpeechVerdict:
    """Measure and judge one clip. ``asr_model``: a faster-whisper model (what
    ``HONORA_ASR_MODEL`` names); None: pocketsphinx at its calibrated alignment beam."""
    t = thresholds or load_thresholds()
    trust = t.text_trust_for("pocketsphinx", language) or t.text_trust_for("pocketsphinx", "en")
    beam = trust.align_beam if trust and trust.align_beam else None
    asr = asr_backend(asr_model, **({"align_beam": beam} if beam else {}))
    measures = measure_speech(samples, sample_rate, text, language, reference=reference, asr=asr)
    return judge(measures, t)


def check_file(path: str | Path, text: str, language: str, *,
               reference: str | Path | None = None,
               thresholds: SpeechThresholds | None = None,
               asr_model: str | None = None) -> SpeechVerdict:
    """:func:`check_clip` of an audio file (and a reference voice file)."""
    from honora_tts.qa.audio_metrics import read_audio

    samples, rate = read_audio(path)
    ref = read_audio(reference) if reference else None
    return check_clip(samples, rate, text, language, reference=ref, thresholds=thresholds,
                      asr_model=asr_model)
