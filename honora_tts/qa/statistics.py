"""Listening-test statistics: mean opinion scores with t-distribution confidence intervals and
A/B preference shares with an exact binomial (sign) test.

Ratings come as a :class:`pandas.DataFrame` shaped like the rows of
:class:`honora_tts.qa.listening.RatingStore` (``hidden_condition``, ``score``, and for A/B also
``hidden_condition_b``). MOS scores are 1 to 5; an A/B score is 1.0 when A was preferred, 0.0
when B was, 0.5 for no preference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CONFIDENCE = 0.95
#: Significance level of the preference test.
ALPHA = 0.05


@dataclass(frozen=True)
class MosEstimate:
    """The mean opinion score of one condition and its confidence interval (NaN below 2 ratings:
    one rating says nothing about the spread)."""

    condition: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2.0


def mos_estimate(condition: str, scores: np.ndarray | list[float],
                 confidence: float = CONFIDENCE) -> MosEstimate:
    """MOS of ``scores`` with a two-sided Student-t interval: mean ± t(1-α/2, n-1)·s/√n."""
    values = np.asarray(scores, dtype=float)
    values = values[~np.isnan(values)]
    n = int(values.size)
    if n == 0:
        raise ValueError(f"condition {condition!r} has no ratings")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    mean = float(values.mean())
    if n < 2:
        return MosEstimate(condition, n, mean, math.nan, math.nan, math.nan, confidence)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * std / math.sqrt(n)
    return MosEstimate(condition, n, mean, std, mean - half, mean + half, confidence)


def mos_table(ratings: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per hidden condition: n, mean, std, ci_low, ci_high, half_width (best first)."""
    _require_columns(ratings, ["hidden_condition", "score"])
    mos = ratings[ratings["test_type"] == "mos"] if "test_type" in ratings.columns else ratings
    rows = []
    for condition, group in mos.groupby("hidden_condition", sort=True):
        estimate = mos_estimate(str(condition), group["score"].to_numpy(), confidence)
        rows.append({**asdict(estimate), "half_width": estimate.half_width})
    columns = ["condition", "n", "mean", "std", "ci_low", "ci_high", "half_width", "confidence"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("mean", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class PreferenceResult:
    """How often condition ``a`` beat condition ``b``. Ties (no preference) are reported but
    left out of the sign test, as usual for a sign test."""

    a: str
    b: str
    prefer_a: int
    prefer_b: int
    ties: int
    share_a: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool

    @property
    def verdict(self) -> str:
        if self.prefer_a + self.prefer_b == 0:
            return "no decided trials"
        if not self.significant:
            return "no significant preference"
        return f"{self.a} preferred" if self.prefer_a > self.prefer_b else f"{self.b} preferred"


def preference_test(a: str, b: str, prefer_a: int, prefer_b: int, ties: int = 0,
                    alpha: float = ALPHA) -> PreferenceResult:
    """Exact two-sided binomial test of H0 "a and b are equally preferred" over decided trials,
    with a Clopper-Pearson interval on a's share."""
    if min(prefer_a, prefer_b, ties) < 0:
        raise ValueError("counts must not be negative")
    decided = prefer_a + prefer_b
    if decided == 0:
        return PreferenceResult(a, b, 0, 0, ties, math.nan, math.nan, math.nan, 1.0, False)
    result = stats.binomtest(prefer_a, decided, 0.5, alternative="two-sided")
    interval = result.proportion_ci(confidence_level=1.0 - alpha, method="exact")
    return PreferenceResult(
        a, b, prefer_a, prefer_b, ties,
        share_a=prefer_a / decided,
        ci_low=float(interval.low), ci_high=float(interval.high),
        p_value=float(result.pvalue), significant=bool(result.pvalue < alpha),
    )


def preference_table(ratings: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per unordered pair of conditions, from A/B ratings in either presentation order."""
    _require_columns(ratings, ["hidden_condition", "hidden_condition_b", "score"])
    ab = ratings[ratings["test_type"] == "ab"] if "test_type" in ratings.columns else ratings
    ab = ab.dropna(subset=["hidden_condition_b"])
    counts: dict[tuple[str, str], list[int]] = {}
    for cond_a, cond_b, score in ab[["hidden_condition", "hidden_condition_b", "score"]].itertuples(
        index=False
    ):
        first, second = sorted((str(cond_a), str(cond_b)))
        tally = counts.setdefault((first, second), [0, 0, 0])
        if score == 0.5:
            tally[2] += 1
        elif (score == 1.0) == (str(cond_a) == first):
            tally[0] += 1
        else:
            tally[1] += 1
    rows = []
    for (first, second), (wins_first, wins_second, ties) in sorted(counts.items()):
        result = preference_test(first, second, wins_first, wins_second, ties, alpha)
        rows.append({**asdict(result), "verdict": result.verdict})
    columns = ["a", "b", "prefer_a", "prefer_b", "ties", "share_a", "ci_low", "ci_high",
               "p_value", "significant", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def _require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"ratings lack column(s) {', '.join(missing)}; got {list(frame.columns)}")


def plot_mos(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """MOS per condition with its confidence interval, on the 1-5 scale."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.6 * max(len(table), 2) + 1.2))
    ordered = table.iloc[::-1]
    positions = np.arange(len(ordered))
    errors = ordered["half_width"].fillna(0.0).to_numpy()
    ax.errorbar(ordered["mean"], positions, xerr=errors, fmt="o", capsize=5, color="tab:blue")
    for y, (mean, n) in enumerate(zip(ordered["mean"], ordered["n"], strict=True)):
        ax.annotate(f"{mean:.2f} (n={n})", (mean, y), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=8)
    ax.set_yticks(positions, ordered["condition"])
    ax.set_xlim(0.8, 5.2)
    ax.set_xlabel(f"mean opinion score, {int(CONFIDENCE * 100)} % CI (t)")
    ax.set_title("MOS per condition")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_preference(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of decided trials won by A for each pair, with its exact interval and p-value."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.6 * max(len(table), 2) + 1.2))
    labels = [f"{a} vs {b}" for a, b in zip(table["a"], table["b"], strict=True)]
    positions = np.arange(len(table))
    shares = table["share_a"].to_numpy(dtype=float)
    low = np.nan_to_num(shares - table["ci_low"].to_numpy(dtype=float))
    high = np.nan_to_num(table["ci_high"].to_numpy(dtype=float) - shares)
    colors = ["tab:green" if s else "tab:gray" for s in table["significant"]]
    ax.barh(positions, np.nan_to_num(shares, nan=0.5), xerr=[low, high], color=colors,
            capsize=5, alpha=0.8)
    ax.axvline(0.5, color="black", linestyle="--", linewidth=1)
    for y, p_value in enumerate(table["p_value"]):
        ax.annotate(f"p={p_value:.3g}", (0.02, y), va="center", fontsize=8)
    ax.set_yticks(positions, labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of decided trials preferring the first condition")
    ax.set_title("A/B preference (green: significant, sign test)")
    return ax
