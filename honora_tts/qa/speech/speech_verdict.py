"""One verdict per clip, with the evidence that decided it, and the text check reported apart.

Verdicts, in the order they are tested (the first that holds wins):

- ``not_speech``: non-finite samples; less than ``min_speech_s`` above the speech floor
  (silence); or DNSMOS SIG, P.808 or OVRL below its calibrated speech minimum (noise, buzz),
  unless a trusted recogniser hears the clip say its text.
- ``distorted``: more samples at full scale than the calibrated clipping ratio, or louder than
  the calibrated loudness (a clip driven into clipping).
- ``runaway`` (from the transcript): it says a phrase back to back more often than the
  calibration's right clips did (beyond the text's own repeats: a loop), or it says the text
  and then more words than calibrated.
- ``truncated`` (from the transcript): it misses more of the text's tail than calibrated, and
  what it says is the text's beginning.
- ``wrong_text``: a recogniser *trusted for the language* (calibrated) says the clip does not
  say its text.
- ``too_fast`` / ``truncated``: the speech is shorter than the text needs at the fastest
  calibrated rate: too fast when a trusted transcript says the whole text, else truncated.
- ``too_slow`` / ``runaway``: longer than the text takes at the slowest rate: too slow when a
  trusted transcript says the whole text (and nothing else), else a runaway; also a runaway
  when audio goes on more than the calibrated maximum after the last recognised word.
- ``wrong_voice``: similarity to the reference voice below the calibrated minimum.
- ``speech``: none of the above. The text check is reported apart: ``verified`` (a trusted
  recogniser's check accepts the text and its transcript agrees: WER at most
  :data:`TRANSCRIPT_AGREES_WER`), ``wrong``, or ``not_verified`` (no trusted recogniser covers
  the language, it could not judge this text, or its check and its transcript disagree), so a
  clip can be ``speech`` with ``text: not_verified``, and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from honora_tts.qa.speech.asr import POCKETSPHINX, asr_backend
from honora_tts.qa.speech.clip_measures import SpeechMeasures, measure_speech
from honora_tts.qa.speech.completeness import expected_span
from honora_tts.qa.speech.thresholds import SpeechThresholds, load_thresholds


class Verdict(StrEnum):
    SPEECH = "speech"
    NOT_SPEECH = "not_speech"
    DISTORTED = "distorted"
    WRONG_TEXT = "wrong_text"
    TRUNCATED = "truncated"
    RUNAWAY = "runaway"
    TOO_FAST = "too_fast"
    TOO_SLOW = "too_slow"
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


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


#: A transcript whose WER against the text is above this disagrees with it: the field's
#: per-clip catastrophe line (seed-tts-eval's serving gates); never ``verified``.
TRANSCRIPT_AGREES_WER = 0.5


def text_check(measures: SpeechMeasures, thresholds: SpeechThresholds
               ) -> tuple[TextCheck, str]:
    """verified / wrong / not_verified, and why."""
    from honora_tts.qa.speech.asr import WEAK_FALLBACK_NOTE

    if measures.transcript is None or measures.text_match is None:
        return TextCheck.NOT_VERIFIED, (f"no recogniser here covers language "
                                        f"{measures.language!r}")
    backend = measures.transcript.backend
    weak = f"; {WEAK_FALLBACK_NOTE}" if measures.weak_recogniser else ""
    trust = thresholds.text_trust_for(backend, measures.language)
    if trust is None:
        return TextCheck.NOT_VERIFIED, (f"{backend} was not calibrated for "
                                        f"{measures.language!r}{weak}")
    if not trust.trusted:
        return TextCheck.NOT_VERIFIED, (
            f"{backend} is not trusted for {measures.language!r}: in calibration it accepted "
            f"{trust.accepted_right:.0%} of right texts and rejected {trust.rejected_wrong:.0%} "
            f"of wrong ones{weak}")
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
        return TextCheck.NOT_VERIFIED, f"{backend} could not judge this text: {why}{weak}"
    if mismatch > trust.mismatch_max:
        return TextCheck.WRONG, (f"{backend} {measures.text_match.method}: the audio does not "
                                 f"say the text (mismatch {mismatch:.2f} > "
                                 f"{trust.mismatch_max:.2f}); heard "
                                 f"{measures.transcript.text[:120]!r}")
    wer = measures.error_rates.wer if measures.error_rates else math.nan
    if not (_finite(wer) and wer <= TRANSCRIPT_AGREES_WER):
        return TextCheck.NOT_VERIFIED, (
            f"{backend} {measures.text_match.method} accepts the text, but its transcript "
            f"disagrees (WER {wer:.2f} > {TRANSCRIPT_AGREES_WER}): "
            f"{measures.transcript.text[:120]!r}{weak}")
    return TextCheck.VERIFIED, f"{backend} {measures.text_match.method}: the text matches"


def evidence_of(measures: SpeechMeasures, thresholds: SpeechThresholds) -> dict[str, Any]:
    """The measures and the limits they were held to, flat (for tables and JSON)."""
    c = measures.completeness
    low, high = expected_span(c.letters, thresholds.speaking_rate(measures.language),
                              thresholds.slack_s, thresholds.min_expected_max_s)
    rates = measures.error_rates
    repeat = measures.repeat
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
        "missing_tail": rates.missing_tail if rates else math.nan,
        "extra_tail": rates.extra_tail if rates else math.nan,
        "head_wer": rates.head_wer if rates else math.nan,
        "repeated_phrase": repeat.phrase if repeat and repeat.count > 1 else "",
        "repeat_count": repeat.count if repeat else math.nan,
        "transcript": measures.transcript.text if measures.transcript else None,
        "text_mismatch": measures.text_match.mismatch if measures.text_match else math.nan,
        "speaker_similarity": measures.speaker_similarity,
        "backends": dict(measures.backends),
    }


def judge(measures: SpeechMeasures, thresholds: SpeechThresholds | None = None
          ) -> SpeechVerdict:
    """The verdict of a measured clip (see the module docstring for the rules)."""
    t = thresholds or load_thresholds()
    ev = evidence_of(measures, t)
    check, text_reason = text_check(measures, t)
    backend = measures.transcript.backend if measures.transcript else ""
    limits = t.recogniser(backend)
    trusted = check == TextCheck.VERIFIED
    # A trusted recogniser's transcript: one whose text check is calibrated and trusted here.
    trust = t.text_trust_for(backend, measures.language)
    heard = bool(trust and trust.trusted and measures.error_rates is not None)
    sig, p808, ovrl = ev["dnsmos_sig"], ev["dnsmos_p808"], ev["dnsmos_ovrl"]
    letters = measures.completeness.letters
    span = f"{ev['speech_s']:.2f} s of speech for {letters} letters"
    verdict, reasons = Verdict.SPEECH, []

    def outcome(kind: Verdict, why: str) -> None:
        nonlocal verdict, reasons
        if verdict == Verdict.SPEECH:
            verdict, reasons = kind, [why]

    if not measures.finite:
        outcome(Verdict.NOT_SPEECH, "the samples hold NaN or infinity")
    if ev["speech_s"] < t.min_speech_s:
        outcome(Verdict.NOT_SPEECH, f"silent: {ev['speech_s']:.2f} s above the speech floor "
                                    f"(< {t.min_speech_s:.2f} s)")
    if ev["clipping_ratio"] > t.clipping_ratio_max or (
            _finite(ev["loudness_lufs"]) and ev["loudness_lufs"] > t.loudness_max_lufs):
        outcome(Verdict.DISTORTED,
                f"clipped: {ev['clipping_ratio']:.2%} of samples at full scale (at most "
                f"{t.clipping_ratio_max:.2%}), peak {ev['peak_dbfs']:.1f} dBFS, loudness "
                f"{ev['loudness_lufs']:.1f} LUFS (at most {t.loudness_max_lufs:.1f}), DNSMOS "
                f"SIG {sig:.2f}")
    if not trusted and not (_finite(sig) and sig >= t.dnsmos_sig_min
                            and p808 >= t.dnsmos_p808_min and ovrl >= t.dnsmos_ovrl_min):
        outcome(Verdict.NOT_SPEECH,
                f"not speech-like: DNSMOS SIG {sig:.2f} (speech >= {t.dnsmos_sig_min:.2f}), "
                f"P.808 {p808:.2f} (>= {t.dnsmos_p808_min:.2f}), OVRL {ovrl:.2f} "
                f"(>= {t.dnsmos_ovrl_min:.2f})")
    if heard and limits and _finite(ev["repeat_count"]) \
            and ev["repeat_count"] > limits.repetition_max:
        outcome(Verdict.RUNAWAY,
                f"the transcript repeats {ev['repeated_phrase']!r} {ev['repeat_count']} times "
                f"in a row (a loop; right clips: at most {limits.repetition_max})")
    if heard and limits and _finite(ev["extra_tail"]) and ev["head_wer"] <= TRANSCRIPT_AGREES_WER \
            and ev["extra_tail"] > limits.extra_tail_max:
        outcome(Verdict.RUNAWAY,
                f"the text is said, then it goes on: {ev['extra_tail']:.0%} more words after "
                f"its last ({backend} heard {ev['transcript'][-100:]!r})")
    # Cut off: the tail is missing and what is there is the text's beginning (the errors other
    # than the missing tail are few; another sentence is wrong everywhere).
    if heard and limits and _finite(ev["missing_tail"]) \
            and ev["missing_tail"] > limits.missing_tail_max \
            and ev["wer"] - ev["missing_tail"] <= TRANSCRIPT_AGREES_WER:
        outcome(Verdict.TRUNCATED,
                f"the transcript stops short: the last {ev['missing_tail']:.0%} of the text's "
                f"words are missing ({backend} heard {ev['transcript'][:100]!r})")
    if check == TextCheck.WRONG:
        outcome(Verdict.WRONG_TEXT, text_reason)
    whole = heard and _finite(ev["wer"]) and ev["wer"] <= TRANSCRIPT_AGREES_WER and not (
        limits and _finite(ev["missing_tail"]) and ev["missing_tail"] > limits.missing_tail_max)
    if ev["speech_s"] < ev["expected_min_s"]:
        if whole:
            outcome(Verdict.TOO_FAST, f"spoken too fast: {span} ({ev['letters_per_s']:.1f} "
                                      f"letters/s); the text needs at least "
                                      f"{ev['expected_min_s']:.2f} s, though every word is there")
        outcome(Verdict.TRUNCATED, f"{span}; the text needs at least "
                                   f"{ev['expected_min_s']:.2f} s"
                                   + ("" if heard else " (cut off, or spoken too fast: no "
                                      "trusted recogniser here to tell)"))
    if ev["speech_s"] > ev["expected_max_s"]:
        if whole:
            outcome(Verdict.TOO_SLOW, f"spoken too slowly: {span} ({ev['letters_per_s']:.1f} "
                                      f"letters/s); the text takes at most "
                                      f"{ev['expected_max_s']:.2f} s, and nothing else is said")
        outcome(Verdict.RUNAWAY, f"{span}; the text takes at most {ev['expected_max_s']:.2f} s")
    trailing_max = limits.trailing_audio_max_s if limits else math.inf
    if _finite(ev["trailing_audio_s"]) and ev["trailing_audio_s"] > trailing_max:
        outcome(Verdict.RUNAWAY, f"{ev['trailing_audio_s']:.2f} s of audio after the last "
                                 f"recognised word (> {trailing_max:.2f} s)")
    if _finite(ev["speaker_similarity"]) and ev["speaker_similarity"] < t.similarity_min:
        outcome(Verdict.WRONG_VOICE, f"speaker similarity {ev['speaker_similarity']:.3f} to "
                                     f"the reference (same voice >= {t.similarity_min:.3f})")
    if verdict == Verdict.SPEECH:
        reasons = [(f"speech-like (DNSMOS SIG {sig:.2f}, P.808 {p808:.2f}), "
                   f"{ev['speech_s']:.2f} s within {ev['expected_min_s']:.2f}-"
                   f"{ev['expected_max_s']:.2f} s")]
    return SpeechVerdict(verdict, check, tuple(reasons), text_reason, ev)


def check_clip(samples: np.ndarray, sample_rate: int, text: str, language: str, *,
               reference: tuple[np.ndarray, int] | None = None,
               thresholds: SpeechThresholds | None = None,
               asr_model: str | None = None) -> SpeechVerdict:
    """Measure and judge one clip. ``asr_model``: a faster-whisper model, ``pocketsphinx``
    (at its calibrated alignment beam), or None: the default (:func:`.asr.asr_backend`)."""
    t = thresholds or load_thresholds()
    trust = t.text_trust_for(POCKETSPHINX, language) or t.text_trust_for(POCKETSPHINX, "en")
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
