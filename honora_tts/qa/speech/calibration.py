"""``honora-tts calibrate-speech``: the speech verdict's thresholds, measured on neural speech
(Piper) and formant speech (espeak-ng), clean and degraded (:mod:`.calibration_clips`), with
every recogniser installed here (faster-whisper with the installed Whisper model, and
pocketsphinx), written to ``calibration.json`` (read by :mod:`.thresholds`), and as tables and
plots into ``docs/speech_checks.md`` (between the ``calibration`` markers) and
``docs/images/speech_calibration/``.

What is measured, per threshold:

- **speaking rates**: letters per second of speech time of the held-out sentences at natural
  paces (Piper at length scales 0.85-1.15, espeak at 160-190 wpm, two voices); accepted = the
  observed range widened by :data:`RATE_MARGIN` both ways;
- **speech vs not speech**: DNSMOS SIG, P.808 and OVRL of clean speech (right and wrong text)
  against noise, a tone, a buzz and the tiny model; the midpoint of the gap where the classes
  separate, else :data:`QUALITY_MARGIN` below the lowest speech value;
- **distortion**: the clipping ratio and the loudness of clean clips against clipped ones;
  the midpoint of the gap, else just above every clean clip;
- **voice**: resemblyzer similarity of espeak clips to the same speaker against the others;
- **per recogniser**: its text check on right texts against another sentence's text (Whisper:
  the transcript's WER; pocketsphinx: forced alignment at each beam of :data:`ALIGN_BEAMS`;
  trusted for a language only when it accepts at least ``TRUST_MIN_ACCEPTED`` of right texts
  and rejects ``TRUST_MIN_REJECTED`` of wrong ones); the most back-to-back repeats a clip that
  does not loop shows; the share of the text's tail missing (clean against truncated) and of
  words added after it (clean against babble); audio after the last recognised word.

Then every clip is judged with the new thresholds by each recogniser; that table (kind x
source x recogniser: how many got the verdict they should) and the plots are the evidence.
"""

from __future__ import annotations

import itertools
import math
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from honora_tts.qa.speech import calibration_clips as clips_module
from honora_tts.qa.speech import espeak
from honora_tts.qa.speech.calibration_clips import LabelledClip
from honora_tts.qa.speech.clip_measures import SpeechMeasures, measure_speech
from honora_tts.qa.speech.completeness import SpeakingRate, speech_time
from honora_tts.qa.speech.intelligibility import error_rates
from honora_tts.qa.speech.text_normalization import letter_count
from honora_tts.qa.speech.thresholds import (
    TRUST_MIN_ACCEPTED,
    TRUST_MIN_REJECTED,
    RecogniserThresholds,
    SpeechThresholds,
    TextTrust,
)

RATE_MARGIN = 1.1
SLACK_S = 0.25
#: A text of a few letters may take this long whatever its rate (breaths, a slow greeting).
MIN_EXPECTED_MAX_S = 1.5
#: When same-voice and other-voice similarities overlap, the voice threshold sits this far
#: below the lowest same-voice similarity: a wrong_voice verdict must not hit the right voice.
VOICE_MARGIN = 0.05
#: Likewise for the DNSMOS scores: never call speech noise.
QUALITY_MARGIN = 0.05
#: Where clean and degraded overlap on a transcript or distortion measure, its threshold sits
#: this far above the highest clean value: never call a clean clip bad.
CLEAN_MARGIN = 0.05
#: The same for the transcript's shares (of the text's words missing at its end, or added
#: after it): a fifth of the text's words above the highest clean value.
TRANSCRIPT_MARGIN = 0.2
MIN_SPEECH_S = 0.15
TRAILING_MARGIN_S = 0.5
ALIGN_BEAMS = (1e-80, 1e-120, 1e-160)
DOC_FILE = Path("docs/speech_checks.md")
PLOT_DIR = Path("docs/images/speech_calibration")
START_MARKER = "<!-- calibration:start (written by honora-tts calibrate-speech) -->"
END_MARKER = "<!-- calibration:end -->"
CLEAN_KINDS = ("correct", "wrong_text")


@dataclass(frozen=True)
class Separation:
    """How one measure separates a low class from a high class, and the threshold chosen."""

    measure: str
    low_label: str
    high_label: str
    low: tuple[float, ...]
    high: tuple[float, ...]
    threshold: float
    separated: bool
    accuracy: float


def separate(measure: str, low_label: str, low: Sequence[float], high_label: str,
             high: Sequence[float], *, keep_high_margin: float | None = None,
             keep_low_margin: float | None = None) -> Separation:
    """The threshold between two classes: the midpoint of the gap when every low value lies
    below every high value; else the cut that classifies most values right or, with
    ``keep_high_margin``, just below every high value, or with ``keep_low_margin`` just above
    every low value."""
    lo = sorted(float(v) for v in low if math.isfinite(v))
    hi = sorted(float(v) for v in high if math.isfinite(v))
    if not lo or not hi:
        raise ValueError(f"{measure}: no finite values to calibrate on")

    def accuracy(cut: float) -> float:
        return (sum(v < cut for v in lo) / len(lo) + sum(v >= cut for v in hi) / len(hi)) / 2

    if lo[-1] < hi[0]:
        return Separation(measure, low_label, high_label, tuple(lo), tuple(hi),
                          (lo[-1] + hi[0]) / 2, True, 1.0)
    if keep_high_margin is not None:
        best = hi[0] - keep_high_margin
    elif keep_low_margin is not None:
        best = lo[-1] + keep_low_margin
    else:
        candidates = sorted(set(lo + hi))
        best = max(((a + b) / 2 for a, b in itertools.pairwise(candidates)), key=accuracy)
    return Separation(measure, low_label, high_label, tuple(lo), tuple(hi), best, False,
                      accuracy(best))


@dataclass(frozen=True)
class Measured:
    """One calibration clip and its measures, once per recogniser (by backend name)."""

    clip: LabelledClip
    by_backend: dict[str, SpeechMeasures]
    other_text: str

    def any(self) -> SpeechMeasures:
        return next(iter(self.by_backend.values()))


def recognisers(progress: Callable[[str], None]) -> dict[str, Any]:
    """Every recogniser installed here, by backend name (pocketsphinx always)."""
    from honora_tts.qa.speech.asr import (
        POCKETSPHINX,
        AsrUnavailable,
        asr_backend,
        installed_whisper_model,
    )

    found: dict[str, Any] = {POCKETSPHINX: asr_backend(POCKETSPHINX, align_beam=ALIGN_BEAMS[0])}
    model = installed_whisper_model()
    if model:
        try:
            backend = asr_backend(model)
            found[backend.name] = backend
        except AsrUnavailable as exc:
            progress(f"faster-whisper not calibrated: {exc}")
    progress("recognisers: " + "; ".join(b.model for b in found.values()))
    return found


def measure_clips(clips: Iterable[LabelledClip], backends: dict[str, Any],
                  progress: Callable[[str], None]) -> list[Measured]:
    """Each clip measured once per recogniser (DNSMOS once per clip)."""
    from honora_tts.qa.speech.predicted_quality import predict_quality

    rows: list[Measured] = []
    texts: dict[tuple[str, str], list[str]] = {}
    started = time.perf_counter()
    for clip in clips:
        quality = predict_quality(clip.samples, clip.rate)
        measured = {name: measure_speech(clip.samples, clip.rate, clip.text, clip.language,
                                         asr=backend, quality=quality)
                    for name, backend in backends.items()}
        same = texts.setdefault((clip.source, clip.language), [])
        if clip.text not in same:
            same.append(clip.text)
        rows.append(Measured(clip, measured, ""))
        if len(rows) % 25 == 0:
            progress(f"measured {len(rows)} clips ({time.perf_counter() - started:.0f} s)")
    for index, row in enumerate(rows):  # another sentence of the same source and language
        pool = [t for t in texts[(row.clip.source, row.clip.language)] if t != row.clip.text]
        rows[index] = replace(row, other_text=pool[row.clip.sentence % len(pool)] if pool
                              else "")
    return rows


def _values(rows: Iterable[Measured], kinds: Sequence[str], value: Callable[[SpeechMeasures],
            float], backend: str | None = None) -> list[float]:
    out = []
    for row in rows:
        if row.clip.kind in kinds:
            measures = row.by_backend.get(backend) if backend else row.any()
            if measures is not None:
                out.append(float(value(measures)))
    return [v for v in out if math.isfinite(v)]


def speaking_rates(progress: Callable[[str], None]
                   ) -> tuple[dict[str, SpeakingRate], dict[str, dict[str, tuple[float, float]]]]:
    """Per language: the accepted rate range, and the observed (min, max) per source."""
    observed: dict[str, dict[str, list[float]]] = {}
    for source, language, text, samples, rate in clips_module.rate_clips():
        seconds = speech_time(samples, rate)
        if seconds > 0:
            observed.setdefault(language, {}).setdefault(source, []).append(
                letter_count(text, language) / seconds)
    rates, ranges = {}, {}
    for language, by_source in observed.items():
        values = [v for vs in by_source.values() for v in vs]
        rates[language] = SpeakingRate(min(values) / RATE_MARGIN, max(values) * RATE_MARGIN)
        ranges[language] = {s: (min(v), max(v)) for s, v in by_source.items()}
        progress(f"rates {language}: {len(values)} clips, {min(values):.1f}-{max(values):.1f} "
                 "letters/s")
    return rates, ranges


def voice_separation(progress: Callable[[str], None]) -> Separation:
    """resemblyzer similarity to the same espeak speaker against other speakers."""
    from honora_tts.qa.audio_metrics import SpeakerEncoder, cosine

    encoder = SpeakerEncoder.shared()
    same: list[float] = []
    other: list[float] = []
    for language in ("en", "de", "es"):
        items = clips_module.espeak_sentences(language)[:3]
        refs = {s: encoder.embed(*espeak.speak(items[0], clips_module.espeak_voice(language, s)))
                for s in espeak.SPEAKERS}
        for speaker in espeak.SPEAKERS:
            for text in items[1:]:
                embedding = encoder.embed(*espeak.speak(
                    text, clips_module.espeak_voice(language, speaker)))
                for ref_speaker, ref in refs.items():
                    (same if ref_speaker == speaker else other).append(cosine(embedding, ref))
    progress(f"voice: {len(same)} same-speaker pairs, {len(other)} other-speaker pairs")
    return separate("speaker similarity", "other voice", other, "same voice", same,
                    keep_high_margin=VOICE_MARGIN)


def whisper_trust(rows: list[Measured], backend: str, language: str
                  ) -> tuple[TextTrust, Separation] | None:
    """The WER check of a transcribing recogniser on ``language``: right text (the clip's
    own) against wrong (another sentence), on every clean clip it transcribed."""
    right, wrong = [], []
    for row in rows:
        measures = row.by_backend.get(backend)
        if row.clip.kind != "correct" or row.clip.language != language or measures is None \
                or measures.transcript is None or not row.other_text:
            continue
        right.append(min(measures.error_rates.wer, 1.0) if measures.error_rates else 1.0)
        wrong.append(min(error_rates(row.other_text, measures.transcript.text, language).wer, 1.0))
    if not right:
        return None
    split = separate(f"{backend} WER ({language})", "right text", right, "wrong text", wrong)
    accepted = sum(v <= split.threshold for v in right) / len(right)
    rejected = sum(v > split.threshold for v in wrong) / len(wrong)
    trust = TextTrust(trusted=accepted >= TRUST_MIN_ACCEPTED and rejected >= TRUST_MIN_REJECTED,
                      mismatch_max=split.threshold, accepted_right=accepted,
                      rejected_wrong=rejected, clips=len(right))
    return trust, split


def alignment_trust(rows: list[Measured], progress: Callable[[str], None]
                    ) -> tuple[TextTrust, list[dict[str, Any]]]:
    """pocketsphinx's forced alignment on English clean clips, per beam."""
    from honora_tts.qa.speech.asr import PocketsphinxBackend

    clean = [r for r in rows if r.clip.kind == "correct" and r.clip.language == "en"
             and r.other_text]
    table = []
    for beam in ALIGN_BEAMS:
        backend = PocketsphinxBackend(align_beam=beam)
        right = wrong = 0
        for row in clean:
            c = row.clip
            right += backend.match_text(c.samples, c.rate, c.text, "en").mismatch == 0
            wrong += backend.match_text(c.samples, c.rate, row.other_text, "en").mismatch == 1
        table.append({"beam": beam, "accepted_right": right / len(clean),
                      "rejected_wrong": wrong / len(clean), "clips": len(clean)})
        progress(f"pocketsphinx beam {beam:.0e}: right accepted {right}/{len(clean)}, wrong "
                 f"rejected {wrong}/{len(clean)}")
    eligible = [r for r in table if r["accepted_right"] >= TRUST_MIN_ACCEPTED] or table
    best = max(eligible, key=lambda r: (r["rejected_wrong"], r["accepted_right"]))
    trust = TextTrust(
        trusted=bool(best["accepted_right"] >= TRUST_MIN_ACCEPTED
                     and best["rejected_wrong"] >= TRUST_MIN_REJECTED),
        mismatch_max=0.5, accepted_right=best["accepted_right"],
        rejected_wrong=best["rejected_wrong"], clips=int(best["clips"]), align_beam=best["beam"])
    return trust, table


def recogniser_thresholds(rows: list[Measured], backend: str, trust: dict[str, TextTrust]
                          ) -> tuple[RecogniserThresholds, list[Separation]]:
    """A recogniser's transcript thresholds (see the module docstring)."""
    whole = ("correct", "slow_3x", "clipped", "clipped_mild")

    def rates(kinds: Sequence[str], attr: str) -> list[float]:
        return _values(rows, kinds, lambda m: getattr(m.error_rates, attr)
                       if m.error_rates else math.nan, backend)

    tail = separate(f"{backend}: text missing at the end", "whole (clean, slow, clipped)",
                    rates(whole, "missing_tail"), "truncated",
                    rates(("truncated",), "missing_tail"), keep_low_margin=TRANSCRIPT_MARGIN)
    extra = separate(f"{backend}: words after the text", "clean, clipped, fast, slow, cut",
                     rates((*whole, "fast_3x", "truncated"), "extra_tail"), "babble",
                     rates(("babble",), "extra_tail"), keep_low_margin=TRANSCRIPT_MARGIN)
    repeats = _values(rows, (*whole, "fast_3x", "truncated", "wrong_text"),
                      lambda m: m.repeat.count if m.repeat else math.nan, backend)
    loops = _values(rows, ("loop",), lambda m: m.repeat.count if m.repeat else math.nan, backend)
    repetition = separate(f"{backend}: back-to-back repeats", "no loop", repeats, "loop", loops,
                          keep_low_margin=0.5)
    trailing = _values(rows, ("correct",), lambda m: m.completeness.trailing_audio_s, backend)
    limits = RecogniserThresholds(
        trailing_audio_max_s=(max(trailing) if trailing else 0.0) + TRAILING_MARGIN_S,
        repetition_max=max(1, math.floor(repetition.threshold)),
        missing_tail_max=tail.threshold, extra_tail_max=extra.threshold, text_trust=trust)
    return limits, [tail, extra, repetition]


def calibrate(progress: Callable[[str], None] = print, *, tiny_model_clips: int = 4,
              measures_file: Path | None = None) -> tuple[SpeechThresholds, dict[str, Any]]:
    """Measure everything and return the thresholds and the tables behind them.
    ``measures_file``: where the measured clips are kept (pickle) and, when it exists, read
    back instead of measuring again (thresholds and tables change without re-measuring)."""
    started = time.perf_counter()
    backends = recognisers(progress)
    rates, observed = speaking_rates(progress)
    voice = voice_separation(progress)
    clips = itertools.chain(clips_module.piper_clips(), clips_module.espeak_clips("en"),
                            *(clips_module.espeak_clips(lang) for lang in ("de", "es", "fr")),
                            clips_module.not_speech_clips(tiny_model_clips))
    if measures_file is not None and measures_file.is_file():
        with measures_file.open("rb") as handle:
            rows = pickle.load(handle)
        progress(f"measures read back from {measures_file} ({len(rows)} clips)")
    else:
        rows = measure_clips(clips, backends, progress)
        if measures_file is not None:
            with measures_file.open("wb") as handle:
                pickle.dump(rows, handle)
    quality = [separate(f"DNSMOS {name}", "not speech",
                        _values(rows, clips_module.NOT_SPEECH_KINDS, attrgetter(f"quality.{attr}")),
                        "speech", _values(rows, CLEAN_KINDS, attrgetter(f"quality.{attr}")),
                        keep_high_margin=QUALITY_MARGIN)
               for name, attr in (("SIG", "sig"), ("P.808", "p808"), ("OVRL", "ovrl"))]
    clipping = separate("clipping ratio", "clean", _values(
        rows, CLEAN_KINDS, lambda m: m.signal.clipping_ratio), "clipped", _values(
        rows, ("clipped", "clipped_mild"), lambda m: m.signal.clipping_ratio),
        keep_low_margin=0.001)
    loudness = separate("loudness (LUFS)", "clean", _values(
        rows, CLEAN_KINDS, lambda m: m.signal.loudness_lufs), "clipped x8", _values(
        rows, ("clipped",), lambda m: m.signal.loudness_lufs), keep_low_margin=1.0)
    per_backend: dict[str, RecogniserThresholds] = {}
    transcript_separations: list[Separation] = []
    beams: list[dict[str, Any]] = []
    wer_separations: list[Separation] = []
    for name in backends:
        trust: dict[str, TextTrust] = {}
        if name == "pocketsphinx":
            trust["en"], beams = alignment_trust(rows, progress)
        else:
            for language in clips_module.ESPEAK_LANGUAGES:
                found = whisper_trust(rows, name, language)
                if found:
                    trust[language], split = found
                    wer_separations.append(split)
        per_backend[name], separations = recogniser_thresholds(rows, name, trust)
        transcript_separations += separations
    by_name = {s.measure: s for s in quality}
    thresholds = SpeechThresholds(
        dnsmos_sig_min=by_name["DNSMOS SIG"].threshold,
        dnsmos_p808_min=by_name["DNSMOS P.808"].threshold,
        dnsmos_ovrl_min=by_name["DNSMOS OVRL"].threshold,
        min_speech_s=MIN_SPEECH_S, speaking_rates=rates, slack_s=SLACK_S,
        min_expected_max_s=MIN_EXPECTED_MAX_S, clipping_ratio_max=clipping.threshold,
        loudness_max_lufs=loudness.threshold, similarity_min=voice.threshold,
        recognisers=per_backend,
        provenance={"command": "honora-tts calibrate-speech",
                    "espeak_ng": _espeak_version(),
                    "recognisers": {n: b.model for n, b in backends.items()},
                    "piper": "piper-tts " + _version("piper-tts") + " "
                             + clips_module.piper_voice.VOICE_NAME,
                    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    )
    judged = judge_rows(rows, thresholds)
    tables = {"rates": observed, "separations": [*quality, clipping, loudness, voice],
              "wer": wer_separations, "transcript": transcript_separations, "beams": beams,
              "judged": judged, "rows": rows, "clips": len(rows),
              "seconds": time.perf_counter() - started}
    return thresholds, tables


def judge_rows(rows: list[Measured], thresholds: SpeechThresholds) -> list[dict[str, Any]]:
    """Every clip judged by every recogniser: one row each, flat."""
    from honora_tts.qa.speech.speech_verdict import judge

    out = []
    for row in rows:
        for backend, measures in row.by_backend.items():
            verdict = judge(measures, thresholds)
            ev = verdict.evidence
            caught = str(verdict.verdict) in row.clip.expected
            if row.clip.kind == "correct":
                caught = verdict.verdict == "speech"
            out.append({"source": row.clip.source, "kind": row.clip.kind,
                        "language": row.clip.language, "backend": backend,
                        "verdict": str(verdict.verdict), "text": str(verdict.text_check),
                        "as_expected": caught, "reason": verdict.reasons[0],
                        **{k: ev[k] for k in ("wer", "dnsmos_sig", "dnsmos_p808",
                                              "dnsmos_ovrl", "speech_s", "letters_per_s",
                                              "expected_min_s", "expected_max_s",
                                              "clipping_ratio", "loudness_lufs",
                                              "missing_tail", "extra_tail", "repeat_count")}})
    return out


def _espeak_version() -> str:
    import subprocess

    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def write_doc(text: str, path: Path = DOC_FILE) -> Path:
    """Replace the part of ``path`` between the calibration markers with ``text``."""
    doc = path.read_text(encoding="utf-8")
    if START_MARKER not in doc or END_MARKER not in doc:
        raise ValueError(f"{path} has no calibration markers ({START_MARKER} ... {END_MARKER})")
    head, rest = doc.split(START_MARKER, 1)
    _, tail = rest.split(END_MARKER, 1)
    path.write_text(f"{head}{START_MARKER}\n{text}{END_MARKER}{tail}", encoding="utf-8")
    return path


def case_summary(judged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (kind, source, recogniser): clips, how many got the verdict they should, and the
    verdicts given."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in judged:
        source = row["source"] if row["source"] != "espeak" else f"espeak {row['language']}"
        groups.setdefault((row["kind"], source, row["backend"]), []).append(row)
    order = list(clips_module.KINDS)
    out = []
    for (kind, source, backend), members in sorted(
            groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1], kv[0][2])):
        verdicts: dict[str, int] = {}
        for m in members:
            verdicts[m["verdict"]] = verdicts.get(m["verdict"], 0) + 1
        wers = [m["wer"] for m in members if math.isfinite(m["wer"])]
        out.append({"kind": kind, "source": source, "backend": backend, "clips": len(members),
                    "as_expected": sum(m["as_expected"] for m in members),
                    "flagged": sum(m["verdict"] != "speech" for m in members),
                    "verdicts": verdicts,
                    "wer_median": float(np.median(wers)) if wers else math.nan,
                    "verified": sum(m["text"] == "verified" for m in members)})
    return out
