"""What ``honora-tts calibrate-speech`` writes for people: the plots (one per measure: each
clip a dot, by kind and source, with the threshold kept) and the markdown tables of
``docs/speech_checks.md``'s calibration section."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from honora_tts.qa.speech.calibration import (
    CLEAN_MARGIN,
    MIN_EXPECTED_MAX_S,
    QUALITY_MARGIN,
    RATE_MARGIN,
    SLACK_S,
    VOICE_MARGIN,
    Measured,
    Separation,
    case_summary,
)
from honora_tts.qa.speech.calibration_clips import (
    ESPEAK_RATES_WPM,
    KINDS,
    PIPER_LENGTH_SCALES,
)
from honora_tts.qa.speech.intelligibility import error_rates
from honora_tts.qa.speech.speech_verdict import TRANSCRIPT_AGREES_WER
from honora_tts.qa.speech.thresholds import (
    TRUST_MIN_ACCEPTED,
    TRUST_MIN_REJECTED,
    SpeechThresholds,
)

_SOURCES = {"piper": "#1f77b4", "espeak": "#ff7f0e", "signal": "#7f7f7f", "tiny XTTS": "#d62728"}


def _strip(ax: Any, groups: Sequence[tuple[str, list[tuple[str, float]]]],
           threshold: float | None = None, label: str = "", log: bool = False) -> None:
    """One column per group, each value a dot coloured by source, a line at the threshold."""
    for position, (_name, values) in enumerate(groups):
        for offset, (source, value) in enumerate(values):
            if math.isfinite(value):
                jitter = ((offset * 0.618) % 1 - 0.5) * 0.5
                ax.scatter(position + jitter, max(value, 1e-6) if log else value, s=12,
                           alpha=0.7, color=_SOURCES.get(source, "#333"))
    if threshold is not None and math.isfinite(threshold):
        ax.axhline(threshold, color="#c00", linestyle="--", linewidth=1,
                   label=f"threshold {threshold:.3g}")
        ax.legend(fontsize=7, loc="best")
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], rotation=35, ha="right",
                  fontsize=7)
    ax.set_title(label, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def _by_kind(rows: Sequence[Measured], kinds: Sequence[str],
             value: Callable[[Any], float], backend: str | None = None
             ) -> list[tuple[str, list[tuple[str, float]]]]:
    groups = []
    for kind in kinds:
        values = []
        for row in rows:
            if row.clip.kind != kind:
                continue
            measures = row.by_backend.get(backend) if backend else row.any()
            if measures is not None:
                values.append((row.clip.source, float(value(measures))))
        groups.append((kind, values))
    return groups


def _legend(fig: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=s)
               for s, c in _SOURCES.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)


def save_plots(thresholds: SpeechThresholds, tables: dict[str, Any], folder: Path
               ) -> dict[str, Path]:
    """One PNG per measure under ``folder``; returns name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from honora_tts.qa.artifacts import save_figure

    rows: list[Measured] = tables["rows"]
    kinds = list(KINDS)
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Path] = {}

    def finish(fig: Any, name: str, title: str) -> None:
        fig.suptitle(title, fontsize=10)
        _legend(fig)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        saved[name] = save_figure(fig, folder / f"{name}.png")
        plt.close(fig)

    backends = [b for b in thresholds.recognisers if b != "pocketsphinx"] + ["pocketsphinx"]
    fig, axes = plt.subplots(1, len(backends), figsize=(5.5 * len(backends), 4), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=True):
        right, wrong = [], []
        for r in rows:
            measures = r.by_backend.get(backend)
            if r.clip.kind != "correct" or measures is None or measures.transcript is None \
                    or measures.error_rates is None:
                continue
            right.append((r.clip.source, min(measures.error_rates.wer, 1.5)))
            if r.other_text:
                wrong.append((r.clip.source, min(error_rates(
                    r.other_text, measures.transcript.text, r.clip.language).wer, 1.5)))
        trust = thresholds.text_trust_for(backend, "en")
        _strip(ax, [("right text", right), ("wrong text", wrong)],
               trust.mismatch_max if trust and trust.align_beam is None else None,
               f"{backend}: transcript WER, right vs wrong text")
    finish(fig, "wer_right_vs_wrong", "Does the transcript say the text?")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for ax, (name, attr, limit) in zip(axes, (
            ("SIG", "sig", thresholds.dnsmos_sig_min),
            ("P.808", "p808", thresholds.dnsmos_p808_min),
            ("OVRL", "ovrl", thresholds.dnsmos_ovrl_min)), strict=True):
        _strip(ax, _by_kind(rows, kinds, attrgetter(f"quality.{attr}")), limit,
               f"DNSMOS {name}")
    finish(fig, "dnsmos", "Speech vs not speech: DNSMOS per clip kind")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    _strip(axes[0], _by_kind(rows, kinds, lambda m: m.signal.clipping_ratio),
           thresholds.clipping_ratio_max, "clipping ratio (share of samples at full scale)",
           log=True)
    _strip(axes[1], _by_kind(rows, kinds, lambda m: m.signal.loudness_lufs),
           thresholds.loudness_max_lufs, "loudness (LUFS)")
    finish(fig, "distortion", "Clean vs clipped")

    rate = thresholds.speaking_rate("en")
    fig, ax = plt.subplots(figsize=(9, 4))
    english = [r for r in rows if r.clip.language == "en"]
    _strip(ax, _by_kind(english, ["correct", "wrong_text", "truncated", "fast_3x", "slow_3x",
                                  "babble", "loop"],
                        lambda m: m.completeness.letters_per_s), None,
           "letters per second of speech time (English), accepted band shaded")
    ax.axhspan(rate.min_letters_per_s, rate.max_letters_per_s, color="#1a7f37", alpha=0.12)
    finish(fig, "speaking_rate", "Spans: speech time against the text's length")

    backend = backends[0]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    limits = thresholds.recogniser(backend)
    assert limits is not None
    speech = ["correct", "wrong_text", "truncated", "babble", "loop", "clipped", "fast_3x",
              "slow_3x"]
    _strip(axes[0], _by_kind(rows, speech, lambda m: m.error_rates.missing_tail
                             if m.error_rates else math.nan, backend),
           limits.missing_tail_max, "share of the text missing at its end")
    _strip(axes[1], _by_kind(rows, speech, lambda m: m.error_rates.extra_tail
                             if m.error_rates else math.nan, backend),
           limits.extra_tail_max, "words after the text (share of its words)")
    _strip(axes[2], _by_kind(rows, speech, lambda m: m.repeat.count if m.repeat else math.nan,
                             backend), limits.repetition_max + 0.5,
           "most back-to-back repeats of a phrase (log)", log=True)
    finish(fig, "transcript_spans", f"What the transcript says ({backend})")
    return saved


def _stats(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return (f"{min(values):.3g} / {float(np.median(values)):.3g} / {max(values):.3g} "
            f"(n={len(values)})")


def _separation_rows(separations: Sequence[Separation]) -> list[str]:
    lines = ["| measure | below | values | above | values | threshold | separated | accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for s in separations:
        lines.append(f"| {s.measure} | {s.low_label} | {_stats(s.low)} | {s.high_label} | "
                     f"{_stats(s.high)} | {s.threshold:.3g} | {'yes' if s.separated else 'NO'} "
                     f"| {s.accuracy:.2f} |")
    return lines


def markdown(thresholds: SpeechThresholds, tables: dict[str, Any], plots: dict[str, str]
             ) -> str:
    """The calibration section of ``docs/speech_checks.md``."""
    p = thresholds.provenance
    lines = [(f"Generated by `{p['command']}` at {p['generated_at']} in "
              f"{tables['seconds']:.0f} s on {tables['clips']} clips; voices: {p['piper']}, "
              f"{p['espeak_ng'].split(' Data')[0]}; recognisers: "
              + "; ".join(f"{k} = {v}" for k, v in p["recognisers"].items())
              + ". Thresholds in `honora_tts/qa/speech/calibration.json`."), ""]
    lines += [("**Every clip judged with these thresholds** (kind x source x recogniser: clips "
              "that got a verdict their kind allows; for `correct`: `speech`)"), "",
              ("| kind | source | recogniser | as expected | verdicts | WER median | "
              "text verified |"), "|---|---|---|---|---|---|---|"]
    for r in case_summary(tables["judged"]):
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(r["verdicts"].items()))
        wer = "-" if not math.isfinite(r["wer_median"]) else f"{r['wer_median']:.2f}"
        lines.append(f"| {r['kind']} | {r['source']} | {r['backend']} | "
                     f"**{r['as_expected']}/{r['clips']}** | {verdicts} | {wer} | "
                     f"{r['verified']} |")
    for name, title in (("wer_right_vs_wrong", "right vs wrong text"),
                        ("dnsmos", "speech vs not speech"), ("distortion", "clean vs clipped"),
                        ("speaking_rate", "spans"),
                        ("transcript_spans", "cut, babble and loops in the transcript")):
        if name in plots:
            lines += ["", f"![{title}]({plots[name]})"]
    lines += ["", "**Thresholds between classes** (values: min / median / max)", "",
              *_separation_rows(tables["separations"])]
    lines += ["", ("A clip is not speech when any of SIG, P.808 and OVRL is below its "
              f"threshold (unless a trusted recogniser hears its text). Where classes "
              f"overlap, a DNSMOS threshold sits {QUALITY_MARGIN} below the lowest speech "
              f"value, the voice threshold {VOICE_MARGIN} below the lowest same-voice "
              "similarity, a transcript threshold "
              f"{CLEAN_MARGIN} above the highest clean value: a bad verdict never hits a "
              "clean clip; the accuracy column is at the threshold kept."), ""]
    lines += [("**Per recogniser** (its text check: the clip's own text against another "
               f"sentence's; trusted when it accepts >= {TRUST_MIN_ACCEPTED:.0%} and rejects "
               f">= {TRUST_MIN_REJECTED:.0%}; a transcript with WER above "
               f"{TRANSCRIPT_AGREES_WER} never prints `verified`)"), "",
              ("| recogniser | language | trusted | accepted right | rejected wrong | "
              "check | repeats allowed | tail missing max | words after max | "
              "trailing audio max |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, limits in thresholds.recognisers.items():
        for language, trust in limits.text_trust.items():
            check = (f"alignment, beam {trust.align_beam:.0e}" if trust.align_beam
                     else f"WER <= {trust.mismatch_max:.2f}")
            lines.append(f"| {backend} | {language} | **{'yes' if trust.trusted else 'no'}** | "
                         f"{trust.accepted_right:.0%} | {trust.rejected_wrong:.0%} | {check} | "
                         f"{limits.repetition_max} | {limits.missing_tail_max:.2f} | "
                         f"{limits.extra_tail_max:.2f} | {limits.trailing_audio_max_s:.2f} s |")
    lines += ["", *_separation_rows([*tables["wer"], *tables["transcript"]])]
    if tables["beams"]:
        lines += ["", "pocketsphinx forced alignment per beam (English clean clips):", "",
                  "| beam | right accepted | wrong rejected | clips |", "|---|---|---|---|"]
        lines += [f"| {b['beam']:.0e} | {b['accepted_right']:.0%} | {b['rejected_wrong']:.0%} "
                  f"| {b['clips']} |" for b in tables["beams"]]
    lines += ["", (f"**Speaking rates** (letters per second of speech time; Piper at length "
              f"scales {', '.join(map(str, PIPER_LENGTH_SCALES))}, espeak-ng at "
              f"{', '.join(map(str, ESPEAK_RATES_WPM))} wpm with two voices; accepted = "
              f"observed widened x{RATE_MARGIN}; slack {SLACK_S} s both ways; the longest "
              f"accepted span is never under {MIN_EXPECTED_MAX_S} s)"), "",
              "| language | observed (per source) | accepted min | accepted max |",
              "|---|---|---|---|"]
    for language, by_source in tables["rates"].items():
        rate = thresholds.speaking_rates[language]
        seen = "; ".join(f"{s} {lo:.1f}-{hi:.1f}" for s, (lo, hi) in by_source.items())
        lines.append(f"| {language} | {seen} | {rate.min_letters_per_s:.1f} | "
                     f"{rate.max_letters_per_s:.1f} |")
    return "\n".join(lines) + "\n"
