"""Rated against predicted MOS per condition: the table, the correlation and the plot."""

import math

import matplotlib
import pandas as pd

from honora_tts.qa.speech import predicted_vs_rated

matplotlib.use("Agg")


def _tables(rated: list[float], predicted: list[float]):
    conditions = [f"c{i}" for i in range(len(rated))]
    mos = pd.DataFrame({"condition": conditions, "n": 4, "mean": rated,
                        "ci_low": [r - 0.3 for r in rated], "ci_high": [r + 0.3 for r in rated]})
    measures = pd.DataFrame({"condition": [c for c in conditions for _ in range(2)],
                             "dnsmos_p808": [p + d for p in predicted for d in (-0.1, 0.1)],
                             "dnsmos_ovrl": [p - 0.5 for p in predicted for _ in range(2)]})
    return mos, measures


def test_table_pairs_each_condition_with_its_mean_prediction():
    table = predicted_vs_rated.rated_vs_predicted(*_tables([4.0, 2.0, 3.0], [3.5, 2.5, 3.0]))
    row = table.set_index("condition").loc["c0"]
    assert row["rated_mos"] == 4.0 and math.isclose(row["dnsmos_p808"], 3.5)
    r = predicted_vs_rated.correlation(table)
    assert r["conditions"] == 3 and math.isclose(r["pearson_r"], 1.0)
    assert math.isclose(r["spearman_rho"], 1.0)
    figure = predicted_vs_rated.plot_rated_vs_predicted(table)
    assert "Pearson r 1.00" in figure.axes[0].get_title()


def test_too_few_conditions_have_no_correlation():
    table = predicted_vs_rated.rated_vs_predicted(*_tables([4.0, 2.0], [3.5, 2.5]))
    r = predicted_vs_rated.correlation(table)
    assert r["conditions"] == 2 and math.isnan(r["pearson_r"])
    assert "n/a" in predicted_vs_rated.plot_rated_vs_predicted(table).axes[0].get_title()
