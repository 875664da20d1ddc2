"""MOS confidence intervals and the A/B sign test against values computed by hand."""

import math

import pandas as pd
import pytest
from scipy import stats

from honora_tts.qa import statistics


def test_mos_interval_is_student_t():
    estimate = statistics.mos_estimate("a", [3, 4, 5])
    assert estimate.mean == pytest.approx(4.0)
    assert estimate.std == pytest.approx(1.0)
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # 4.303 / 1.732
    assert half == pytest.approx(2.4841, abs=1e-4)
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((4 - half, 4 + half))


def test_mos_interval_narrows_with_more_ratings():
    few = statistics.mos_estimate("a", [2, 4] * 3)
    many = statistics.mos_estimate("a", [2, 4] * 30)
    assert many.half_width < few.half_width
    assert few.mean == many.mean == pytest.approx(3.0)


def test_single_rating_has_no_interval():
    estimate = statistics.mos_estimate("a", [4])
    assert estimate.n == 1 and estimate.mean == 4
    assert math.isnan(estimate.ci_low) and math.isnan(estimate.ci_high)


def test_no_ratings_is_an_error():
    with pytest.raises(ValueError, match="no ratings"):
        statistics.mos_estimate("a", [])


def test_mos_table_groups_by_hidden_condition_best_first():
    ratings = pd.DataFrame({
        "test_type": ["mos"] * 6 + ["ab"],
        "hidden_condition": ["old", "old", "old", "new", "new", "new", "old"],
        "hidden_condition_b": [None] * 6 + ["new"],
        "score": [2, 3, 2, 5, 4, 5, 1.0],
    })
    table = statistics.mos_table(ratings)
    assert list(table["condition"]) == ["new", "old"]
    assert list(table["n"]) == [3, 3]  # the A/B row is not a MOS rating
    assert table.loc[0, "mean"] == pytest.approx(14 / 3)
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()


def test_preference_matches_exact_binomial():
    result = statistics.preference_test("new", "old", prefer_a=9, prefer_b=1, ties=3)
    assert result.p_value == pytest.approx(0.021484375)  # 2 * (1 + 10) / 1024
    assert result.significant and result.verdict == "new preferred"
    assert result.share_a == pytest.approx(0.9)
    assert result.ci_low < 0.9 < result.ci_high


def test_even_split_is_not_significant():
    result = statistics.preference_test("a", "b", 5, 5)
    assert result.p_value == pytest.approx(1.0)
    assert not result.significant and result.verdict == "no significant preference"


def test_only_ties_decide_nothing():
    result = statistics.preference_test("a", "b", 0, 0, ties=4)
    assert result.verdict == "no decided trials" and not result.significant


def test_preference_table_counts_either_presentation_order():
    # "x" wins whether it was played as A (score 1.0) or as B (score 0.0).
    ratings = pd.DataFrame({
        "test_type": ["ab"] * 5,
        "hidden_condition": ["x", "y", "x", "y", "x"],
        "hidden_condition_b": ["y", "x", "y", "x", "y"],
        "score": [1.0, 0.0, 1.0, 0.5, 0.0],
    })
    table = statistics.preference_table(ratings)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["a"], row["b"]) == ("x", "y")
    assert (row["prefer_a"], row["prefer_b"], row["ties"]) == (3, 1, 1)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="hidden_condition_b"):
        statistics.preference_table(pd.DataFrame({"hidden_condition": [], "score": []}))


def test_plots_draw_one_point_per_condition():
    import matplotlib

    matplotlib.use("Agg")
    table = statistics.mos_table(pd.DataFrame({
        "hidden_condition": ["a", "a", "b", "b"], "score": [3, 4, 2, 2]}))
    ax = statistics.plot_mos(table)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == ["a", "b"]
    pref = statistics.preference_table(pd.DataFrame({
        "hidden_condition": ["a"], "hidden_condition_b": ["b"], "score": [1.0]}))
    ax = statistics.plot_preference(pref)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a vs b"]
