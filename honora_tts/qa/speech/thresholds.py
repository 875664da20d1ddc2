"""The calibrated thresholds of the speech verdict, read from ``calibration.json`` beside this
module. That file is written by ``honora-tts calibrate-speech`` (:mod:`.calibration`) from
Piper (neural) and espeak-ng clips, never by hand; ``docs/speech_checks.md`` shows the tables
and plots it came from. Thresholds that depend on the recogniser (its text check, word times,
how it hears loops and cuts) are kept per recogniser (:class:`RecogniserThresholds`).

A recogniser's text check is *trusted* for a language only when the calibration found that it
accepted at least :data:`TRUST_MIN_ACCEPTED` of the clips that say their text and rejected at
least :data:`TRUST_MIN_REJECTED` of those that say another sentence. Otherwise the text check of
that language reports ``not_verified``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from honora_tts.qa.speech.completeness import SpeakingRate

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
TRUST_MIN_ACCEPTED = 0.95
TRUST_MIN_REJECTED = 0.90


class CalibrationMissing(RuntimeError):
    """No calibration file: run ``honora-tts calibrate-speech`` (needs espeak-ng and Piper)."""


@dataclass(frozen=True)
class TextTrust:
    """How one recogniser's text check did on one language in the calibration."""

    trusted: bool
    mismatch_max: float
    accepted_right: float
    rejected_wrong: float
    clips: int
    align_beam: float | None = None


@dataclass(frozen=True)
class RecogniserThresholds:
    """What one recogniser's transcripts are held to (they differ per recogniser: word times,
    how it hears a clip cut off or a loop)."""

    trailing_audio_max_s: float
    #: A phrase said back to back more times than this (beyond the text's own) is a runaway.
    repetition_max: int
    #: More of the text's tail missing from the transcript than this share: truncated.
    missing_tail_max: float
    #: More words after the text's last one than this share of its words: a runaway.
    extra_tail_max: float
    text_trust: dict[str, TextTrust]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecogniserThresholds:
        return cls(trailing_audio_max_s=float(data["trailing_audio_max_s"]),
                   repetition_max=int(data["repetition_max"]),
                   missing_tail_max=float(data["missing_tail_max"]),
                   extra_tail_max=float(data["extra_tail_max"]),
                   text_trust={lang: TextTrust(**t) for lang, t in data["text_trust"].items()})


@dataclass(frozen=True)
class SpeechThresholds:
    """Everything the verdict compares against (see ``docs/speech_checks.md``)."""

    dnsmos_sig_min: float
    dnsmos_p808_min: float
    dnsmos_ovrl_min: float
    min_speech_s: float
    speaking_rates: dict[str, SpeakingRate]
    slack_s: float
    min_expected_max_s: float
    clipping_ratio_max: float
    loudness_max_lufs: float
    similarity_min: float
    recognisers: dict[str, RecogniserThresholds]
    provenance: dict[str, Any] = field(default_factory=dict)

    def speaking_rate(self, language: str) -> SpeakingRate:
        """The language's calibrated rate, else the widest range over calibrated languages."""
        from honora_tts.qa.speech.languages import language_facts

        code = language_facts(language).code
        if code in self.speaking_rates:
            return self.speaking_rates[code]
        rates = list(self.speaking_rates.values())
        return SpeakingRate(min(r.min_letters_per_s for r in rates),
                            max(r.max_letters_per_s for r in rates))

    def recogniser(self, backend: str) -> RecogniserThresholds | None:
        return self.recognisers.get(backend)

    def text_trust_for(self, backend: str, language: str) -> TextTrust | None:
        from honora_tts.qa.speech.languages import language_facts

        limits = self.recognisers.get(backend)
        return limits.text_trust.get(language_facts(language).code) if limits else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeechThresholds:
        return cls(
            dnsmos_sig_min=float(data["dnsmos_sig_min"]),
            dnsmos_p808_min=float(data["dnsmos_p808_min"]),
            dnsmos_ovrl_min=float(data["dnsmos_ovrl_min"]),
            min_speech_s=float(data["min_speech_s"]),
            speaking_rates={k: SpeakingRate(**v) for k, v in data["speaking_rates"].items()},
            slack_s=float(data["slack_s"]),
            min_expected_max_s=float(data["min_expected_max_s"]),
            clipping_ratio_max=float(data["clipping_ratio_max"]),
            loudness_max_lufs=float(data["loudness_max_lufs"]),
            similarity_min=float(data["similarity_min"]),
            recognisers={b: RecogniserThresholds.from_dict(r)
                         for b, r in data["recognisers"].items()},
            provenance=dict(data.get("provenance", {})),
        )


def write_thresholds(thresholds: SpeechThresholds, path: Path = CALIBRATION_FILE) -> Path:
    path.write_text(json.dumps(thresholds.to_dict(), indent=2, sort_keys=True) + "\n",
                    encoding="utf-8")
    load_thresholds.cache_clear()
    return path


@lru_cache(maxsize=4)
def load_thresholds(path: Path = CALIBRATION_FILE) -> SpeechThresholds:
    """The calibrated thresholds (cached per path)."""
    if not path.is_file():
        raise CalibrationMissing(f"no speech calibration at {path}: run `honora-tts "
                                 "calibrate-speech` (needs espeak-ng)")
    return SpeechThresholds.from_dict(json.loads(path.read_text(encoding="utf-8")))
