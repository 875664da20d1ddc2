"""Rated MOS against predicted MOS (DNSMOS P.808, and OVRL) per listening-test condition, with
their correlation: does the offline predictor rank the conditions as the raters did?"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PREDICTORS = {"dnsmos_p808": "DNSMOS P.808", "dnsmos_ovrl": "DNSMOS OVRL"}


def rated_vs_predicted(mos: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: rated MOS (mean, CI) and the mean predicted scores of its clips.
    ``mos`` is :func:`honora_tts.qa.statistics.mos_table`; ``measures`` has ``condition`` and
    the DNSMOS columns."""
    predicted = measures.groupby("condition")[list(PREDICTORS)].mean(numeric_only=True)
    table = mos.set_index("condition")[["n", "mean", "ci_low", "ci_high"]].rename(
        columns={"mean": "rated_mos"})
    return table.join(predicted, how="inner").reset_index()


def correlation(table: pd.DataFrame, predictor: str = "dnsmos_p808") -> dict[str, float]:
    """Pearson and Spearman correlation of rated and predicted MOS over conditions (NaN with
    fewer than three conditions or no spread)."""
    from scipy.stats import pearsonr, spearmanr

    data = table[["rated_mos", predictor]].dropna()
    n = len(data)
    if n < 3 or data["rated_mos"].nunique() < 2 or data[predictor].nunique() < 2:
        return {"conditions": n, "pearson_r": math.nan, "spearman_rho": math.nan}
    return {"conditions": n,
            "pearson_r": float(pearsonr(data["rated_mos"], data[predictor]).statistic),
            "spearman_rho": float(spearmanr(data["rated_mos"], data[predictor]).statistic)}


def plot_rated_vs_predicted(table: pd.DataFrame) -> Figure:
    """Rated MOS (with its CI) against each predictor, one point per condition, with r."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PREDICTORS), figsize=(5.5 * len(PREDICTORS), 4.3),
                             squeeze=False)
    for ax, (column, label) in zip(axes[0], PREDICTORS.items(), strict=True):
        r = correlation(table, column)
        yerr = np.vstack([table["rated_mos"] - table["ci_low"],
                          table["ci_high"] - table["rated_mos"]])
        ax.errorbar(table[column], table["rated_mos"], yerr=yerr, fmt="o", capsize=4)
        for _, row in table.iterrows():
            ax.annotate(str(row["condition"]), (row[column], row["rated_mos"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel(f"predicted: {label} (mean of the condition's clips)")
        ax.set_ylabel("rated MOS (95% CI)")
        ax.set_ylim(1, 5)
        pearson = "n/a" if math.isnan(r["pearson_r"]) else f"{r['pearson_r']:.2f}"
        spearman = "n/a" if math.isnan(r["spearman_rho"]) else f"{r['spearman_rho']:.2f}"
        ax.set_title(f"{label}: Pearson r {pearson}, Spearman {spearman} "
                     f"({r['conditions']} conditions)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("Rated against predicted MOS per condition")
    fig.tight_layout()
    return fig
