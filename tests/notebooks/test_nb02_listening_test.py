"""Notebook 02 against localpod: clips generated through the client, the UI built, simulated
raters' MOS analysed, objective measures per clip."""

import csv
import json
import sqlite3

import pytest
from notebook_outputs import cell_calling, cell_text, output_text

pytestmark = [pytest.mark.notebooks, pytest.mark.integration]


def test_generates_clips_rates_and_analyses(run_notebook, endpoint_parameters, tmp_path):
    out = tmp_path / "listening"
    db = tmp_path / "ratings.sqlite"
    executed = run_notebook("02_listening_test", {
        **endpoint_parameters,
        "texts": ["Hello there."],
        "conditions": {"cool": {"temperature": 0.6}, "warm": {"temperature": 0.9}},
        "max_new_tokens": 8, "rater": "ci-rater", "test_type": "mos", "seed": 3,
        "simulated_raters": 2, "ratings_db": str(db), "artifacts_dir": str(out),
    })
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clips"] == 2 and summary["random_weights"] is True
    assert summary["raters"] == ["simulated-1", "simulated-2"]
    assert summary["rated_by_this_rater"] == 0  # nobody clicked in a headless run
    mos = {row["condition"]: row for row in summary["mos"]}
    assert set(mos) == {"cool", "warm"}
    assert all(row["n"] == 2 and 1 <= row["mean"] <= 5 for row in mos.values())

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT rater, hidden_condition, score, versions FROM ratings").fetchall()
    assert len(rows) == 4 and {r[1] for r in rows} == {"cool", "warm"}
    assert all("tiny" in json.loads(r[3])["A"]["model_name"] for r in rows)

    with (out / "clip_metrics.csv").open() as handle:
        metrics = list(csv.DictReader(handle))
    assert {m["condition"] for m in metrics} == {"cool", "warm"}
    for m in metrics:
        assert float(m["duration_s"]) > 0 and float(m["real_time_factor"]) > 0
        assert -1.0 <= float(m["speaker_similarity"]) <= 1.0
        # The tiny model's noise: predicted MOS is measured and the verdict says so.
        assert 1.0 <= float(m["dnsmos_p808"]) <= 5.0 and m["verdict"] != "speech"
        assert m["text_check"] in {"verified", "wrong", "not_verified"} and m["wer"] != ""
    rated = {row["condition"]: row for row in summary["rated_vs_predicted"]}
    assert set(rated) == {"cool", "warm"} and all(r["dnsmos_p808"] > 0 for r in rated.values())
    assert summary["predicted_mos_correlation"]["conditions"] == 2
    assert (out / "rated_vs_predicted.png").read_bytes()[:4] == b"\x89PNG"
    manifest = (out / "clips" / "manifest.csv").read_text()
    assert "cool" in manifest and "warm" in manifest
    for name in ("mos.png", "clip_metrics.png", "mos.csv", "ratings.csv"):
        assert (out / name).exists()

    text = output_text(executed)
    assert "random weights" in text and "noise" in text  # said where the audio is played
    ui_cell = cell_calling(executed, "ListeningTestUI(")
    widget_views = [o for o in ui_cell.outputs
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_views, "the listening UI was not displayed"
    clips_shown = cell_text(cell_calling(executed, "clips_from_directory"))
    assert "2 clips" in clips_shown
    assert "cool" not in clips_shown and "warm" not in clips_shown  # blind before rating


def test_ab_preference_branch(run_notebook, endpoint_parameters, tmp_path):
    out = tmp_path / "ab"
    run_notebook("02_listening_test", {
        **endpoint_parameters,
        "texts": ["Hello there.", "Please call Stella."],
        "conditions": {"cool": {"temperature": 0.6}, "warm": {"temperature": 0.9}},
        "max_new_tokens": 8, "rater": "ci-rater", "test_type": "ab", "seed": 5,
        "simulated_raters": 3, "ratings_db": str(tmp_path / "ab.sqlite"),
        "artifacts_dir": str(out),
    })
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_type"] == "ab" and summary["mos"] is None
    [pair] = summary["preference"]
    assert {pair["a"], pair["b"]} == {"cool", "warm"}
    assert pair["prefer_a"] + pair["prefer_b"] + pair["ties"] == 3 * 2  # raters x items
    assert 0.0 <= pair["p_value"] <= 1.0 and pair["ci_low"] <= pair["share_a"] <= pair["ci_high"]
    assert (out / "preference.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "preference.csv").exists() and not (out / "mos.csv").exists()
