"""The release gate: the golden set spoken by a baseline and a candidate build (each an
endpoint or a clip directory), measured clip by clip, paired by (voice, sentence), and one
verdict against the tolerances of :class:`Tolerances` (documented in
``docs/speech_checks.md``).

Per measure: the mean paired delta (candidate - baseline) with a 95 % bootstrap confidence
interval and the Wilcoxon signed-rank p-value. The gate FAILs when

- a gated measure's whole confidence interval lies beyond its tolerance (worse by more than
  the tolerance with 95 % confidence; a mean past the tolerance whose interval still reaches
  it is reported, not failed): the tolerances come from the build's own noise floor
  (:mod:`.noise_floor`: the golden set spoken twice by the same build with different seeds),
  else the defaults of :class:`Tolerances`;
- any clip is catastrophic: its WER rises above :data:`CATASTROPHIC_WER` (the baseline's was
  not), or its verdict becomes one of :data:`BAD_VERDICTS` (the baseline's was not).

A gated measure with no pairs (speaker similarity without reference voices) is reported as not
measured, and a PASS says so: it cannot claim what it did not measure.

Clip directories hold ``<voice>/<item id>.wav`` (``<item id>.wav`` at the top for clips made
without a reference voice); the items are the golden set's ids.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from honora_tts.qa.speech.golden_set import GoldenItem, golden_set

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from honora_tts.client import EndpointClient

NO_VOICE = "-"
#: A voice name is a folder of clips (``<dir>/<voice>/<id>.wav``): one path component.
VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Verdicts a candidate may not newly produce.
BAD_VERDICTS = ("not_speech", "distorted", "truncated", "runaway", "too_fast", "too_slow",
                "wrong_text")
#: A clip whose WER rises above this fails the gate by itself (the field's per-clip line).
CATASTROPHIC_WER = 0.5


class GateInputError(ValueError):
    """The clips to compare are missing or do not pair up (what is missing is named)."""


@dataclass(frozen=True)
class Tolerance:
    """How much worse a measure's mean paired delta may get. ``higher_is_better``: a drop
    counts as worse (similarity, DNSMOS), else a rise does (WER)."""

    measure: str
    label: str
    limit: float
    higher_is_better: bool


@dataclass(frozen=True)
class Tolerances:
    """How much worse each gated measure's mean may get, and where the figures came from
    (``source``: the defaults, or the noise-floor file they were read from)."""

    wer: float = 0.02
    speaker_similarity: float = 0.03
    dnsmos_ovrl: float = 0.1
    source: str = "defaults"

    def rules(self) -> list[Tolerance]:
        return [Tolerance("wer", "WER", self.wer, False),
                Tolerance("speaker_similarity", "speaker similarity",
                          self.speaker_similarity, True),
                Tolerance("dnsmos_ovrl", "DNSMOS OVRL", self.dnsmos_ovrl, True)]


DEFAULT_TOLERANCES = Tolerances()

#: Measures whose deltas are shown besides the gated ones.
REPORTED = ("wer", "cer", "speaker_similarity", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_p808",
            "speech_s")


# ------------------------------------------------------------------------------ clip tables


def check_voice_names(voices: Mapping[str, object]) -> None:
    """Refuse a voice name that is not one plain folder name (``../x`` would write outside
    the results folder): letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit."""
    for name in voices:
        if name != NO_VOICE and (not VOICE_NAME.fullmatch(name) or set(name) == {"."}):
            raise GateInputError(
                f"voice name {name!r} is not a folder name: use letters, digits, '.', '_' and "
                "'-' (starting with a letter or digit), e.g. --voice billy=voices/billy.wav")


def select_items(languages: Sequence[str] = (), items: Sequence[str] = ()) -> list[GoldenItem]:
    """The golden set, narrowed to ``languages`` and ``items`` (ids) when given; unknown ids
    are refused with the known ones."""
    chosen = golden_set(languages=tuple(languages))
    if items:
        known = {i.id for i in golden_set()}
        unknown = sorted(set(items) - known)
        if unknown:
            raise GateInputError(f"unknown golden-set ids {unknown}; known: {sorted(known)}")
        chosen = [i for i in chosen if i.id in set(items)]
    if not chosen:
        raise GateInputError(f"no golden-set sentence for languages {list(languages)} and "
                             f"ids {list(items)}")
    return chosen


def clips_from_directory(root: str | Path, items: Sequence[GoldenItem] | None = None,
                         voices: Mapping[str, str | Path] | None = None) -> pd.DataFrame:
    """One row per golden item found under ``root`` (``<voice>/<id>.wav`` or ``<id>.wav``):
    columns voice, item, language, text, path, reference (the voice file from ``voices``,
    by voice name)."""
    root = Path(root)
    if not root.is_dir():
        raise GateInputError(f"clip directory {root} does not exist")
    items = list(items or golden_set())
    by_id = {i.id: i for i in items}
    voices = {k: str(v) for k, v in (voices or {}).items()}
    rows = []
    for path in sorted(root.rglob("*.wav")):
        relative = path.relative_to(root)
        if path.stem not in by_id or len(relative.parts) > 2:
            continue
        if not path.is_file():
            raise GateInputError(f"clip {path} is not a regular file (a device, FIFO or a "
                                 "link to one): the gate reads audio files only")
        voice = relative.parts[0] if len(relative.parts) == 2 else NO_VOICE
        item = by_id[path.stem]
        rows.append({"voice": voice, "item": item.id, "language": item.language,
                     "text": item.text, "path": str(path),
                     "reference": voices.get(voice, "")})
    if not rows:
        raise GateInputError(f"no golden-set clip (<voice>/<id>.wav with ids like "
                             f"{items[0].id!r}) under {root}")
    return pd.DataFrame(rows)


def synthesize_clips(client: EndpointClient, out_dir: str | Path,
                     items: Sequence[GoldenItem] | None = None,
                     voices: Mapping[str, str | Path] | None = None, *,
                     params: dict[str, Any] | None = None, deadline_s: float = 600.0,
                     progress: bool = True) -> pd.DataFrame:
    """Speak every golden item with every voice through an endpoint into
    ``<out_dir>/<voice>/<id>.wav`` and return the clip table."""
    from tqdm.auto import tqdm

    items = list(items or golden_set())
    voices = dict(voices or {NO_VOICE: ""})
    check_voice_names(voices)
    out = Path(out_dir)
    jobs = [(v, i) for v in voices for i in items]
    for voice, item in tqdm(jobs, desc=f"synthesizing {out.name}", disable=not progress,
                            unit="clip"):
        folder = out if voice == NO_VOICE else out / voice
        folder.mkdir(parents=True, exist_ok=True)
        result = client.synthesize(item.text, voice=voices[voice] or None,
                                   language=item.language, params=params,
                                   deadline_s=deadline_s)
        result.save(folder / f"{item.id}.wav")
    return clips_from_directory(out, items, {k: v for k, v in voices.items() if v})


# ---------------------------------------------------------------------------------- pairing


def pair(baseline: pd.DataFrame, candidate: pd.DataFrame) -> pd.DataFrame:
    """Baseline and candidate measures side by side, one row per (voice, item) both have;
    columns ``<measure>_base``, ``<measure>_cand`` and ``<measure>_delta``."""
    keys = ["voice", "item"]
    merged = baseline.merge(candidate, on=keys, suffixes=("_base", "_cand"), how="inner")
    if merged.empty:
        raise GateInputError("baseline and candidate share no (voice, item) clip: check that "
                             "both directories use the same voices and golden-set ids")
    for measure in REPORTED:
        if f"{measure}_base" in merged:
            merged[f"{measure}_delta"] = (pd.to_numeric(merged[f"{measure}_cand"], "coerce")
                                          - pd.to_numeric(merged[f"{measure}_base"], "coerce"))
    merged["language"] = merged["language_base"]
    merged["text"] = merged["text_base"]
    return merged


def bootstrap_ci(values: np.ndarray, *, level: float = 0.95, resamples: int = 4000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean."""
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(resamples, values.size), replace=True).mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def wilcoxon_p(deltas: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired deltas (1.0 when every delta is 0,
    NaN with fewer than two pairs)."""
    from scipy.stats import wilcoxon

    if deltas.size < 2:
        return math.nan
    if np.allclose(deltas, 0.0):
        return 1.0
    return float(wilcoxon(deltas, zero_method="wilcox").pvalue)


@dataclass(frozen=True)
class MeasureDelta:
    """One measure's paired comparison and, for gated measures, its verdict: ``regressed``
    when the whole interval is worse than the tolerance, ``beyond_mean`` when only the mean
    is (reported, not failed)."""

    measure: str
    pairs: int
    baseline_mean: float
    candidate_mean: float
    mean_delta: float
    ci_low: float
    ci_high: float
    wilcoxon_p: float
    tolerance: float | None = None
    higher_is_better: bool | None = None
    regressed: bool = False
    beyond_mean: bool = False

    @property
    def gated(self) -> bool:
        return self.tolerance is not None

    @property
    def measured(self) -> bool:
        return self.pairs > 0

    def worse(self, value: float) -> float:
        """How much worse ``value`` (a delta) is, in this measure's bad direction."""
        return -value if self.higher_is_better else value

    @property
    def worst_bound(self) -> float:
        """The interval's bound nearest to no change, in the bad direction: the least the
        candidate is worse by, with 95 % confidence."""
        return min(self.worse(self.ci_low), self.worse(self.ci_high))


def deltas(paired: pd.DataFrame, tolerances: Tolerances = DEFAULT_TOLERANCES) -> list[MeasureDelta]:
    rules = {r.measure: r for r in tolerances.rules()}
    out = []
    for measure in REPORTED:
        if f"{measure}_delta" not in paired:
            continue
        frame = paired[[f"{measure}_base", f"{measure}_cand", f"{measure}_delta"]].apply(
            pd.to_numeric, errors="coerce").dropna()
        d = frame[f"{measure}_delta"].to_numpy(dtype=float)
        low, high = bootstrap_ci(d)
        rule = rules.get(measure)
        mean = float(d.mean()) if d.size else math.nan
        delta = MeasureDelta(
            measure=measure, pairs=int(d.size),
            baseline_mean=float(frame[f"{measure}_base"].mean()) if d.size else math.nan,
            candidate_mean=float(frame[f"{measure}_cand"].mean()) if d.size else math.nan,
            mean_delta=mean, ci_low=low, ci_high=high, wilcoxon_p=wilcoxon_p(d),
            tolerance=rule.limit if rule else None,
            higher_is_better=rule.higher_is_better if rule else None)
        if rule is not None and d.size:
            delta = replace(delta, regressed=delta.worst_bound > rule.limit,
                            beyond_mean=delta.worse(mean) > rule.limit)
        out.append(delta)
    return out


def new_bad_clips(paired: pd.DataFrame) -> pd.DataFrame:
    """Catastrophic clips: the candidate's verdict is one of :data:`BAD_VERDICTS` while the
    baseline's was not, or its WER rose above :data:`CATASTROPHIC_WER` from at most that.
    Column ``why`` says which."""
    bad = paired["verdict_cand"].isin(BAD_VERDICTS) & ~paired["verdict_base"].isin(BAD_VERDICTS)
    why = pd.Series("", index=paired.index, dtype=object)
    why[bad] = paired.loc[bad, "verdict_cand"].astype(str)
    if "wer_cand" in paired and "wer_base" in paired:
        cand = pd.to_numeric(paired["wer_cand"], errors="coerce")
        base = pd.to_numeric(paired["wer_base"], errors="coerce")
        risen = (cand > CATASTROPHIC_WER) & ~(base > CATASTROPHIC_WER)
        for index in paired.index[risen]:
            rise = f"WER {base[index]:.2f} -> {cand[index]:.2f}"
            why[index] = f"{why[index]}, {rise}" if why[index] else rise
        bad = bad | risen
    columns = [c for c in ("voice", "item", "verdict_base", "verdict_cand", "wer_base",
                           "wer_cand", "reason_cand") if c in paired]
    return paired.loc[bad, columns].assign(why=why[bad])


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict (PASS/FAIL), what regressed, and the tables behind it. ``judges``:
    the models that measured (:mod:`.judges`), pinned by hash."""

    verdict: str
    reasons: tuple[str, ...]
    deltas: tuple[MeasureDelta, ...]
    new_bad: tuple[dict[str, Any], ...]
    pairs: int
    tolerances: Tolerances = DEFAULT_TOLERANCES
    judges: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    @property
    def not_measured(self) -> tuple[str, ...]:
        """Gated measures without a single pair."""
        return tuple(d.measure for d in self.deltas if d.gated and not d.measured)

    @property
    def within(self) -> tuple[str, ...]:
        return tuple(d.measure for d in self.deltas if d.gated and d.measured)

    def headline(self) -> str:
        labels = {r.measure: r.label for r in self.tolerances.rules()}
        missing = ", ".join(labels[m] for m in self.not_measured)
        unmeasured = f"; NOT MEASURED: {missing}" if missing else ""
        if self.passed:
            checked = ", ".join(labels[m] for m in self.within) or "no gated measure"
            return (f"GATE: PASS ({self.pairs} paired clips; within tolerance: {checked}; no "
                    f"catastrophic clip{unmeasured})")
        return f"GATE: FAIL: {'; '.join(self.reasons)}{unmeasured}"

    def deltas_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(d) for d in self.deltas])

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "passed": self.passed, "headline": self.headline(),
                "reasons": list(self.reasons), "pairs": self.pairs,
                "tolerances": asdict(self.tolerances), "not_measured": list(self.not_measured),
                "deltas": [asdict(d) for d in self.deltas], "new_bad_clips": list(self.new_bad),
                "judges": self.judges}


def decide(paired: pd.DataFrame, tolerances: Tolerances = DEFAULT_TOLERANCES, *,
           judges: dict[str, Any] | None = None) -> GateResult:
    """The gate's verdict of a paired table (see the module docstring)."""
    measured = deltas(paired, tolerances)
    reasons = []
    labels = {r.measure: r.label for r in tolerances.rules()}
    for d in measured:
        if d.regressed:
            direction = "fell" if d.higher_is_better else "rose"
            reasons.append(
                f"{labels[d.measure]} {direction} by {abs(d.mean_delta):.3f} (95% CI "
                f"{d.ci_low:+.3f} to {d.ci_high:+.3f}, the whole interval past the tolerance "
                f"{d.tolerance:.3g} ({tolerances.source}); Wilcoxon p={d.wilcoxon_p:.3g})")
    bad = new_bad_clips(paired)
    if len(bad):
        counts = bad["why"].str.split(",").str[0].str.replace(r"^WER.*", "WER > 0.5",
                                                              regex=True).value_counts()
        names = ", ".join(f"{r.voice}/{r.item} ({r.why})" for r in bad.head(6).itertuples())
        more = f" and {len(bad) - 6} more" if len(bad) > 6 else ""
        reasons.append("catastrophic clips: "
                       + ", ".join(f"{k} x{v}" for k, v in counts.to_dict().items())
                       + f": {names}{more}")
    return GateResult("FAIL" if reasons else "PASS", tuple(reasons), tuple(measured),
                      tuple(bad.to_dict("records")), len(paired), tolerances, judges or {})


# ------------------------------------------------------------------------------------ plots


def verdict_html(result: GateResult) -> str:
    """A banner for the notebook: green PASS or red FAIL with what regressed, what was not
    measured, and the tolerances' source."""
    import html

    colour = "#1a7f37" if result.passed else "#c00"
    items = "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
    missing = ", ".join(result.not_measured)
    note = (f"<div style='color:#9a6700'><b>Not measured:</b> {html.escape(missing)} (no "
            "pairs: e.g. no reference voices); this verdict says nothing about it.</div>"
            if missing else "")
    return (f'<div style="border:3px solid {colour};padding:10px;font-size:1.2em">'
            f'<b style="color:{colour};font-size:1.4em">GATE: {result.verdict}</b> '
            f"({result.pairs} paired clips; tolerances: "
            f"{html.escape(result.tolerances.source)})"
            f"{'<ul>' + items + '</ul>' if items else ''}{note}</div>")


def plot_paired_deltas(paired: pd.DataFrame, result: GateResult) -> Figure:
    """One panel per gated measure: each clip's delta (dot), the mean with its 95 % CI, zero
    and the tolerance line."""
    import matplotlib.pyplot as plt

    gated = [d for d in result.deltas if d.tolerance is not None]
    fig, axes = plt.subplots(1, len(gated), figsize=(4.2 * len(gated), 4), squeeze=False)
    for ax, d in zip(axes[0], gated, strict=True):
        values = pd.to_numeric(paired[f"{d.measure}_delta"], errors="coerce").dropna()
        jitter = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(jitter[: len(values)], values, alpha=0.5, s=18, color="#555")
        colour = "#c00" if d.regressed else "#1a7f37"
        if math.isfinite(d.mean_delta):
            ax.errorbar([0.4], [d.mean_delta], yerr=[[d.mean_delta - d.ci_low],
                                                     [d.ci_high - d.mean_delta]],
                        fmt="o", color=colour, capsize=6, markersize=8, label="mean, 95% CI")
        tolerance = float(d.tolerance or 0.0)
        limit = -tolerance if d.higher_is_better else tolerance
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axhline(limit, color="#c00", linestyle=":", label=f"tolerance {limit:+.2f}")
        ax.set_xticks([])
        state = ("REGRESSED" if d.regressed else "mean past tolerance, CI not" if d.beyond_mean
                 else "ok" if d.pairs else "NOT MEASURED")
        ax.set_title(f"{d.measure}: {state}\n"
                     f"Wilcoxon p={d.wilcoxon_p:.3g}, n={d.pairs}", fontsize=10, color=colour)
        ax.set_ylabel("candidate - baseline")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"Paired deltas per clip: {result.verdict}")
    fig.tight_layout()
    return fig


def plot_sentence_heatmap(paired: pd.DataFrame) -> Figure:
    """Rows: golden sentences (averaged over voices); columns: measures; colour: the delta,
    scaled per column, red = worse."""
    import matplotlib.pyplot as plt

    measures = [m for m in ("wer", "cer", "speaker_similarity", "dnsmos_ovrl", "dnsmos_sig",
                            "dnsmos_p808", "speech_s") if f"{m}_delta" in paired]
    table = paired.groupby("item")[[f"{m}_delta" for m in measures]].mean()
    table.columns = measures
    worse = table.copy()
    for column in ("speaker_similarity", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_p808"):
        if column in worse:
            worse[column] = -worse[column]
    scale = worse.abs().max().replace(0, 1).fillna(1)
    fig, ax = plt.subplots(figsize=(1.4 * len(measures) + 3, 0.3 * len(table) + 1.5))
    image = ax.imshow((worse / scale).to_numpy(dtype=float), cmap="RdYlGn_r", vmin=-1, vmax=1,
                      aspect="auto")
    # Each column is scaled by its own largest change: the colour bar is in those units, and
    # each column's label says what full colour means in that measure's own units.
    ax.set_xticks(range(len(measures)),
                  [f"{m}\n(full colour = {scale[m]:.3g})" for m in measures], rotation=30,
                  ha="right", fontsize=8)
    ax.set_yticks(range(len(table)), table.index, fontsize=7)
    for (row, col), value in np.ndenumerate(table.to_numpy(dtype=float)):
        if math.isfinite(value):
            ax.text(col, row, f"{value:+.2f}", ha="center", va="center", fontsize=6)
    bar = fig.colorbar(image, ax=ax, ticks=[-1, -0.5, 0, 0.5, 1])
    bar.ax.set_yticklabels(["better by the column's\nlargest change", "half", "no change",
                            "half", "worse by the column's\nlargest change"], fontsize=7)
    bar.set_label("change as a share of the column's largest change (its label)", fontsize=8)
    ax.set_title("Per-sentence delta (candidate - baseline)")
    fig.tight_layout()
    return fig


def summary(result: GateResult, *, baseline: str, candidate: str,
            parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``summary.json`` holds."""
    from honora_tts.qa.artifacts import json_ready

    return json_ready({**result.to_dict(), "baseline": baseline, "candidate": candidate,
                       "parameters": parameters or {},
                       "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
