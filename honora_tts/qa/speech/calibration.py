"""``honora-tts calibrate-speech``: the speech verdict's thresholds, measured on espeak-ng
clips, written to ``calibration.json`` (read by :mod:`.thresholds`) and as tables into
``docs/speech_checks.md`` (between the ``calibration`` markers).

What is measured, per threshold:

- **speaking rates**: letters per second of speech time (frames above the speech floor) of
  golden-set sentences spoken at 160, 175 and 190 words per minute by two espeak voices per language; the accepted range is
  the observed one widened by :data:`RATE_MARGIN` both ways;
- **speech vs not speech**: DNSMOS SIG, P.808 and OVRL of speech clips (four languages, two
  voices) against white noise, pink noise, a tone and the synthetic buzz voice; the threshold
  is the midpoint of the gap when the classes separate, else :data:`QUALITY_MARGIN` below the
  lowest speech value;
- **voice**: resemblyzer similarity of clips to a reference of the same espeak speaker against
  the other speakers' references, threshold as above;
- **text**: pocketsphinx's forced alignment of the right text and of another golden sentence,
  for each alignment beam of :data:`ALIGN_BEAMS`; the beam kept is the one that rejects most
  wrong texts while accepting at least ``TRUST_MIN_ACCEPTED`` of the right ones, and the
  backend is trusted for English only when both rates meet :mod:`.thresholds`' minimums;
- **trailing audio**: audio after pocketsphinx's last recognised word on right clips, maximum
  plus :data:`TRAILING_MARGIN_S`.

Then every case the checks must tell apart (correct, noise, silence, cut in half, followed by
5 s of babble, another sentence, another voice, time-stretched) is judged with the new
thresholds; that table (measure x case) is the evidence that they work.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from honora_tts.qa.speech import espeak
from honora_tts.qa.speech.completeness import SpeakingRate, speech_span, speech_time
from honora_tts.qa.speech.golden_set import GoldenItem, golden_set
from honora_tts.qa.speech.languages import language_facts
from honora_tts.qa.speech.text_normalization import letter_count
from honora_tts.qa.speech.thresholds import (
    CALIBRATION_FILE,
    TRUST_MIN_ACCEPTED,
    TRUST_MIN_REJECTED,
    SpeechThresholds,
    TextTrust,
    write_thresholds,
)

LANGUAGES = ("en", "de", "es", "fr")
RATES_WPM = (160, 175, 190)
RATE_MARGIN = 1.1
SLACK_S = 0.25
#: A text of a few letters may take this long whatever its rate (breaths, a slow greeting).
MIN_EXPECTED_MAX_S = 1.5
#: When same-voice and other-voice similarities overlap, the voice threshold sits this far
#: below the lowest same-voice similarity: a wrong_voice verdict must not hit the right voice.
VOICE_MARGIN = 0.05
#: Likewise for the DNSMOS scores: a measure whose speech and non-speech values overlap gets a
#: threshold this far below the lowest speech value, so that it never calls speech noise.
QUALITY_MARGIN = 0.05
MIN_SPEECH_S = 0.15
TRAILING_MARGIN_S = 0.5
ALIGN_BEAMS = (1e-80, 1e-120, 1e-160)
CALIBRATION_SPEAKERS = ("m1", "f3")
DOC_FILE = Path("docs/speech_checks.md")
START_MARKER = "<!-- calibration:start (written by honora-tts calibrate-speech) -->"
END_MARKER = "<!-- calibration:end -->"


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
             high: Sequence[float], *, keep_high_margin: float | None = None) -> Separation:
    """The threshold between two classes: the midpoint of the gap when every low value lies
    below every high value; else the cut that classifies most values right or, with
    ``keep_high_margin``, the cut just below every high value."""
    lo = sorted(float(v) for v in low if math.isfinite(v))
    hi = sorted(float(v) for v in high if math.isfinite(v))
    if not lo or not hi:
        raise ValueError(f"{measure}: no finite values to calibrate on")
    if lo[-1] < hi[0]:
        threshold = (lo[-1] + hi[0]) / 2
        return Separation(measure, low_label, high_label, tuple(lo), tuple(hi), threshold,
                          True, 1.0)
    candidates = sorted(set(lo + hi))
    cuts = [(a + b) / 2 for a, b in itertools.pairwise(candidates)]

    def accuracy(cut: float) -> float:
        return (sum(v < cut for v in lo) / len(lo) + sum(v >= cut for v in hi) / len(hi)) / 2

    best = max(cuts, key=accuracy)
    if keep_high_margin is not None:
        best = hi[0] - keep_high_margin
        return Separation(measure, low_label, high_label, tuple(lo), tuple(hi), best, False,
                          accuracy(best))
    return Separation(measure, low_label, high_label, tuple(lo), tuple(hi), best, False,
                      accuracy(best))


def _sentences(language: str, count: int | None = None) -> list[GoldenItem]:
    items = [i for i in golden_set(languages=(language,))
             if "long" not in i.features and "short" not in i.features]
    return items[:count] if count else items


def _voice(language: str, speaker: str) -> str:
    return f"{language_facts(language).espeak_voice}+{speaker}"


def speaking_rates(progress: Callable[[str], None]) -> tuple[dict[str, SpeakingRate],
                                                              dict[str, tuple[float, float]]]:
    """Per language: accepted rate range and the observed (min, max) letters per second."""
    rates, observed = {}, {}
    for language in LANGUAGES:
        values = []
        for item in _sentences(language):
            for speaker in CALIBRATION_SPEAKERS:
                for wpm in RATES_WPM:
                    samples, rate = espeak.speak(item.text, _voice(language, speaker),
                                                 words_per_minute=wpm)
                    values.append(letter_count(item.text, language)
                                  / speech_time(samples, rate))
        observed[language] = (min(values), max(values))
        rates[language] = SpeakingRate(min(values) / RATE_MARGIN, max(values) * RATE_MARGIN)
        progress(f"rates {language}: {len(values)} clips, {min(values):.1f}-{max(values):.1f} "
                 "letters/s")
    return rates, observed


def _non_speech_clips() -> dict[str, np.ndarray]:
    from honora_tts.qa.reference_voice import synthetic_voice_samples

    rate = espeak.ESPEAK_RATE
    t = np.arange(int(2.5 * rate)) / rate
    return {
        "white noise 2.5 s": espeak.white_noise(2.5, seed=3),
        "white noise 6 s": espeak.white_noise(6.0, seed=4),
        "pink noise 2.5 s": espeak.pink_noise(2.5, seed=5),
        "pink noise 6 s": espeak.pink_noise(6.0, seed=6),
        "tone 220 Hz": (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        "synthetic buzz voice": synthetic_voice_samples(3.0, rate),
    }


def quality_separation(progress: Callable[[str], None]) -> list[Separation]:
    """DNSMOS SIG and P.808 of speech against non-speech."""
    from honora_tts.qa.speech.predicted_quality import predict_quality

    speech, noise = [], []
    for language in LANGUAGES:
        for item in _sentences(language, 3):
            for speaker in CALIBRATION_SPEAKERS:
                speech.append(predict_quality(*espeak.speak(item.text, _voice(language,
                                                                              speaker))))
    for samples in _non_speech_clips().values():
        noise.append(predict_quality(samples, espeak.ESPEAK_RATE))
    progress(f"DNSMOS: {len(speech)} speech clips, {len(noise)} non-speech clips")
    return [separate(f"DNSMOS {name}", "not speech", [getattr(q, attr) for q in noise],
                     "speech", [getattr(q, attr) for q in speech],
                     keep_high_margin=QUALITY_MARGIN)
            for name, attr in (("SIG", "sig"), ("P.808", "p808"), ("OVRL", "ovrl"))]


def voice_separation(progress: Callable[[str], None]) -> Separation:
    """resemblyzer similarity to the same espeak speaker against other speakers."""
    from honora_tts.qa.audio_metrics import SpeakerEncoder

    encoder = SpeakerEncoder.shared()
    same: list[float] = []
    other: list[float] = []
    for language in ("en", "de", "es"):
        items = _sentences(language, 3)
        refs = {s: encoder.embed(*espeak.speak(items[0].text, _voice(language, s)))
                for s in espeak.SPEAKERS}
        for speaker in espeak.SPEAKERS:
            for item in items[1:]:
                embedding = encoder.embed(*espeak.speak(item.text, _voice(language, speaker)))
                for ref_speaker, ref in refs.items():
                    value = float(np.dot(embedding, ref) / (np.linalg.norm(embedding)
                                                            * np.linalg.norm(ref)))
                    (same if ref_speaker == speaker else other).append(value)
    progress(f"voice: {len(same)} same-speaker pairs, {len(other)} other-speaker pairs")
    return separate("speaker similarity", "other voice", other, "same voice", same,
                    keep_high_margin=VOICE_MARGIN)


def text_trust(progress: Callable[[str], None]) -> tuple[TextTrust, float, list[dict[str, Any]]]:
    """pocketsphinx's alignment check on English: the trust record, the trailing-audio
    maximum, and one row per beam."""
    from honora_tts.qa.speech.asr import PocketsphinxBackend

    items = _sentences("en")
    clips = [(item, espeak.speak(item.text, _voice("en", speaker)))
             for item in items for speaker in CALIBRATION_SPEAKERS]
    rows = []
    trailing = []
    for beam in ALIGN_BEAMS:
        backend = PocketsphinxBackend(align_beam=beam)
        right = wrong = 0
        for index, (item, (samples, rate)) in enumerate(clips):
            other = items[(items.index(item) + 1 + index % 3) % len(items)]
            transcript = None
            if beam == ALIGN_BEAMS[0]:
                transcript = backend.transcribe(samples, rate, "en")
                _start, end = speech_span(samples, rate)
                if transcript.words:
                    trailing.append(end - transcript.last_word_end_s)
            right += backend.match_text(samples, rate, item.text, "en", transcript).mismatch == 0
            wrong += backend.match_text(samples, rate, other.text, "en", transcript).mismatch == 1
        rows.append({"beam": beam, "accepted_right": right / len(clips),
                     "rejected_wrong": wrong / len(clips), "clips": len(clips)})
        progress(f"pocketsphinx beam {beam:.0e}: right accepted {right}/{len(clips)}, wrong "
                 f"rejected {wrong}/{len(clips)}")
    eligible = [r for r in rows if r["accepted_right"] >= TRUST_MIN_ACCEPTED] or rows
    best = max(eligible, key=lambda r: (r["rejected_wrong"], r["accepted_right"]))
    trust = TextTrust(
        trusted=bool(best["accepted_right"] >= TRUST_MIN_ACCEPTED
                     and best["rejected_wrong"] >= TRUST_MIN_REJECTED),
        mismatch_max=0.5, accepted_right=best["accepted_right"],
        rejected_wrong=best["rejected_wrong"], clips=int(best["clips"]),
        align_beam=best["beam"])
    trailing_max = (max(trailing) if trailing else 0.0) + TRAILING_MARGIN_S
    return trust, trailing_max, rows


@dataclass(frozen=True)
class Case:
    """One clip the checks must judge, with what it should get."""

    name: str
    language: str
    text: str
    samples: np.ndarray
    rate: int
    reference: tuple[np.ndarray, int] | None
    expected: str


def cases(language: str) -> list[Case]:
    """The cases of one language: correct, noise, silence, cut, babble, other sentence,
    other voice, time-stretched."""
    items = _sentences(language)
    item = max(items, key=lambda i: len(i.text))
    other = min((i for i in items if i is not item and i is not items[2]),
                key=lambda i: abs(len(i.text) - len(item.text)))
    voice = _voice(language, "m1")
    samples, rate = espeak.speak(item.text, voice)
    reference = espeak.speak(items[2].text, voice)
    other_voice = espeak.speak(items[2].text, _voice(language, "f4"))
    wrong, _ = espeak.speak(other.text, voice)
    return [
        Case("correct", language, item.text, samples, rate, reference, "speech"),
        Case("white noise", language, item.text, espeak.white_noise(3.0, rate), rate,
             reference, "not_speech"),
        Case("silence", language, item.text, espeak.silence(3.0, rate), rate, reference,
             "not_speech"),
        Case("cut in half", language, item.text, espeak.cut(samples, 0.5), rate, reference,
             "truncated"),
        Case("+ 5 s babble", language, item.text,
             espeak.followed_by(samples, espeak.babble(5.0, voice)), rate, reference, "runaway"),
        Case("another sentence", language, item.text, wrong, rate, reference,
             "wrong_text (truncated if shorter)" if language == "en"
             else "speech, text not_verified"),
        Case("another voice", language, item.text, samples, rate, other_voice, "wrong_voice"),
        Case("time-stretched x1.35", language, item.text, espeak.time_stretched(samples), rate,
             reference, "speech or runaway"),
    ]


def judge_cases(thresholds: SpeechThresholds, progress: Callable[[str], None]
                ) -> list[dict[str, Any]]:
    from honora_tts.qa.speech.speech_verdict import check_clip

    rows = []
    for language in ("en", "de"):
        for case in cases(language):
            verdict = check_clip(case.samples, case.rate, case.text, language,
                                 reference=case.reference, thresholds=thresholds)
            ev = verdict.evidence
            rows.append({"case": f"{language}: {case.name}", "expected": case.expected,
                         "verdict": str(verdict.verdict), "text": str(verdict.text_check),
                         **{k: ev[k] for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_p808",
                                               "wer", "speech_s", "expected_min_s",
                                               "expected_max_s", "trailing_audio_s",
                                               "speaker_similarity", "text_mismatch")}})
            progress(f"{language}: {case.name}: {verdict.line()}")
    return rows


def calibrate(progress: Callable[[str], None] = print) -> tuple[SpeechThresholds, dict[str, Any]]:
    """Measure everything and return the thresholds and the tables behind them."""
    started = time.perf_counter()
    rates, observed = speaking_rates(progress)
    quality = quality_separation(progress)
    voice = voice_separation(progress)
    trust, trailing_max, beams = text_trust(progress)
    by_name = {s.measure: s for s in quality}
    thresholds = SpeechThresholds(
        dnsmos_sig_min=by_name["DNSMOS SIG"].threshold,
        dnsmos_p808_min=by_name["DNSMOS P.808"].threshold,
        dnsmos_ovrl_min=by_name["DNSMOS OVRL"].threshold,
        min_speech_s=MIN_SPEECH_S, speaking_rates=rates, slack_s=SLACK_S,
        min_expected_max_s=MIN_EXPECTED_MAX_S,
        trailing_audio_max_s={"pocketsphinx": trailing_max},
        similarity_min=voice.threshold,
        text_trust={"pocketsphinx": {"en": trust}},
        provenance={"command": "honora-tts calibrate-speech",
                    "espeak_ng": _espeak_version(),
                    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    )
    case_rows = judge_cases(thresholds, progress)
    tables = {"rates": observed, "separations": [*quality, voice], "beams": beams,
              "cases": case_rows, "seconds": time.perf_counter() - started}
    return thresholds, tables


def _espeak_version() -> str:
    import subprocess

    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def _f(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def markdown(thresholds: SpeechThresholds, tables: dict[str, Any]) -> str:
    """The calibration tables in markdown."""
    lines = [(f"Generated by `{thresholds.provenance['command']}` at "
             f"{thresholds.provenance['generated_at']} ({thresholds.provenance['espeak_ng']}) "
             f"in {tables['seconds']:.0f} s; thresholds in "
             "`honora_tts/qa/speech/calibration.json`."), "",
             "**Thresholds between classes** (values: min / median / max)", "",
             ("| measure | below | values | above | values | threshold | separated | "
             "accuracy |"), "|---|---|---|---|---|---|---|---|"]
    for s in tables["separations"]:
        def stats(v: Sequence[float]) -> str:
            return f"{min(v):.3f} / {float(np.median(v)):.3f} / {max(v):.3f} (n={len(v)})"

        lines.append(f"| {s.measure} | {s.low_label} | {stats(s.low)} | {s.high_label} | "
                     f"{stats(s.high)} | {s.threshold:.3f} | {'yes' if s.separated else 'NO'} "
                     f"| {s.accuracy:.2f} |")
    lines += ["", ("A clip is not speech when any of SIG, P.808 and OVRL is below its "
              "threshold. Where the classes overlap, a DNSMOS threshold sits "
              f"{QUALITY_MARGIN} below the lowest speech value and the voice threshold "
              f"{VOICE_MARGIN} below the lowest same-voice similarity, so that speech is never "
              "called noise nor the right voice wrong; the accuracy column is at the threshold "
              "kept."), "",
              (f"**Speaking rates** (letters per second of speech time; espeak-ng at "
              f"{', '.join(map(str, RATES_WPM))} wpm, voices "
              f"{', '.join(CALIBRATION_SPEAKERS)}; accepted = observed widened x{RATE_MARGIN}; "
              f"slack {SLACK_S} s both ways; the longest accepted span is never under "
              f"{MIN_EXPECTED_MAX_S} s)"), "",
              "| language | observed min | observed max | accepted min | accepted max |",
              "|---|---|---|---|---|"]
    for language, (low, high) in tables["rates"].items():
        rate = thresholds.speaking_rates[language]
        lines.append(f"| {language} | {low:.1f} | {high:.1f} | {rate.min_letters_per_s:.1f} | "
                     f"{rate.max_letters_per_s:.1f} |")
    lines += ["", ("**Text check: pocketsphinx forced alignment, English** (right text: the "
              "clip's own sentence; wrong: another golden sentence)"), "",
              "| beam | right accepted | wrong rejected | clips |", "|---|---|---|---|"]
    for row in tables["beams"]:
        lines.append(f"| {row['beam']:.0e} | {row['accepted_right']:.0%} | "
                     f"{row['rejected_wrong']:.0%} | {row['clips']} |")
    trust = thresholds.text_trust["pocketsphinx"]["en"]
    lines += ["", (f"Kept: beam {trust.align_beam:.0e}; trusted for English: "
              f"**{'yes' if trust.trusted else 'no'}** (needs >= {TRUST_MIN_ACCEPTED:.0%} "
              f"accepted and >= {TRUST_MIN_REJECTED:.0%} rejected). No other language has a "
              "calibrated recogniser here: their text check reports `not_verified`. "
              f"Trailing audio after the last recognised word: at most "
              f"{thresholds.trailing_audio_max_s['pocketsphinx']:.2f} s."), "",
              "**Every case judged with these thresholds** (measure x case)", "",
              ("| case | expected | verdict | text | OVRL | SIG | P.808 | WER | speech s | "
              "expected s | trailing s | similarity | mismatch |"),
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in tables["cases"]:
        lines.append(
            f"| {r['case']} | {r['expected']} | **{r['verdict']}** | {r['text']} | "
            f"{_f(r['dnsmos_ovrl'])} | {_f(r['dnsmos_sig'])} | {_f(r['dnsmos_p808'])} | "
            f"{_f(r['wer'])} | {_f(r['speech_s'])} | {_f(r['expected_min_s'])}-"
            f"{_f(r['expected_max_s'])} | {_f(r['trailing_audio_s'])} | "
            f"{_f(r['speaker_similarity'], 3)} | {_f(r['text_mismatch'], 0)} |")
    return "\n".join(lines) + "\n"


def write_doc(text: str, path: Path = DOC_FILE) -> Path:
    """Replace the part of ``path`` between the calibration markers with ``text``."""
    doc = path.read_text(encoding="utf-8")
    if START_MARKER not in doc or END_MARKER not in doc:
        raise ValueError(f"{path} has no calibration markers ({START_MARKER} ... {END_MARKER})")
    head, rest = doc.split(START_MARKER, 1)
    _, tail = rest.split(END_MARKER, 1)
    path.write_text(f"{head}{START_MARKER}\n{text}{END_MARKER}{tail}", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="honora-tts calibrate-speech",
        description="Calibrate the speech verdict's thresholds on espeak-ng clips; writes "
        "honora_tts/qa/speech/calibration.json and the tables in docs/speech_checks.md.")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE,
                        help="thresholds file to write")
    parser.add_argument("--doc", type=Path, default=DOC_FILE,
                        help="markdown file whose calibration section is rewritten ('' : none)")
    args = parser.parse_args(argv)
    if not espeak.espeak_available():
        print("honora-tts calibrate-speech: espeak-ng is not installed (apt-get install "
              "espeak-ng)", file=sys.stderr)
        return 2
    thresholds, tables = calibrate(lambda line: print(line, file=sys.stderr, flush=True))
    print(f"thresholds -> {write_thresholds(thresholds, args.out)}")
    text = markdown(thresholds, tables)
    if str(args.doc):
        print(f"tables -> {write_doc(text, args.doc)}")
    print(text)
    return 0
