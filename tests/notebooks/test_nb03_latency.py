"""Notebook 03 against localpod: per-request records, summary per condition, plots."""

import csv
import json

import pytest

pytestmark = [pytest.mark.notebooks, pytest.mark.integration]

PLOTS = ("ecdf", "components", "over_time", "rtf_vs_length", "throughput")


def test_campaign_records_and_plots(run_notebook, endpoint_parameters, tmp_path):
    out = tmp_path / "latency"
    run_notebook("03_latency", {
        **endpoint_parameters, "requests": 2, "concurrency": [1, 2],
        "texts": {"short": "Hi.", "long": "This sentence is a little longer than that."},
        "warmup": 1, "max_new_tokens": 8, "artifacts_dir": str(out),
    })
    with (out / "requests.csv").open() as handle:
        requests = list(csv.DictReader(handle))
    measured = [r for r in requests if r["warmup"] == "False"]
    assert len(measured) == 2 * 2 * 2
    assert len(requests) - len(measured) == 2  # one warm-up round at concurrency 2
    for r in measured:
        assert r["ok"] == "True", r["error"]
        client, delay, execution = (float(r[k]) for k in ("client_ms", "delay_ms",
                                                          "execution_ms"))
        assert client >= execution > 0 and delay >= 0
        assert float(r["generation_ms"]) > 0 and float(r["audio_s"]) > 0
        assert float(r["rtf"]) > 0 and r["worker_id"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and len(summary["conditions"]) == 4
    for condition in summary["conditions"]:
        assert condition["p50_ms"] <= condition["p95_ms"] <= condition["p99_ms"]
        assert condition["requests_per_s"] > 0
    assert {c["concurrency"] for c in summary["conditions"]} == {1, 2}
    for name in PLOTS:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_streaming_and_cold_conditions(run_notebook, localpod_factory, tmp_path):
    pod = localpod_factory(workers=1, streaming=True)
    out = tmp_path / "stream"
    run_notebook("03_latency", {
        "endpoint": pod.endpoint_id, "api_base": pod.base_url, "requests": 2,
        "concurrency": [1], "texts": {"short": "Hi there."}, "starts": ["warm", "cold"],
        "streaming": [True], "warmup": 1, "max_new_tokens": 24, "artifacts_dir": str(out),
    }, env={"RUNPOD_API_KEY": pod.api_key}, record_time=False)
    with (out / "requests.csv").open() as handle:
        measured = [r for r in csv.DictReader(handle) if r["warmup"] == "False"]
    assert {r["start"] for r in measured} == {"warm", "cold"} and len(measured) == 4
    for r in measured:
        assert r["ok"] == "True", r["error"]
        assert r["stream"] == "True" and 0 < float(r["ttfa_ms"]) <= float(r["client_ms"])
    cold = [r for r in measured if r["start"] == "cold"]
    assert {r["cache_voice"] for r in cold} == {"miss"}  # a fresh voice for every request
    assert {r["cache_latents"] for r in cold} == {"miss"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and len(summary["conditions"]) == 2
    _assert_continuity(out, summary, modes={"queue"}, levels={1})


def test_continuity_of_load_balanced_streams(run_notebook, lb_localpod, tmp_path):
    """The HTTP mode's streams (localpod --load-balancing) through the same campaign."""
    lb_localpod.wait_ready(3, timeout_s=300)
    out = tmp_path / "lb"
    run_notebook("03_latency", {
        "endpoint": lb_localpod.endpoint_id, "api_base": lb_localpod.base_url,
        "endpoint_mode": "load_balancing", "requests": 2, "concurrency": [1, 2],
        "texts": {"short": "Hi there."}, "streaming": [True], "warmup": 0,
        "max_new_tokens": 24, "artifacts_dir": str(out),
    }, env={"RUNPOD_API_KEY": lb_localpod.api_key}, record_time=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and summary["endpoint"]["mode"] == "load_balancing"
    _assert_continuity(out, summary, modes={"load_balancing"}, levels={1, 2})


def _assert_continuity(out, summary, *, modes, levels) -> None:
    rows = summary["continuity"]
    assert {r["mode"] for r in rows} == modes and {r["concurrency"] for r in rows} == levels
    assert {r["buffer_ms"] for r in rows} == {50, 100, 200}
    for r in rows:
        assert r["streams"] >= 2 and 0.0 <= r["never_dry_share"] <= 1.0
        assert r["worst_underrun_ms"] >= r["p95_underrun_ms"] >= 0
        assert r["median_start_ms"] >= r["median_first_chunk_ms"] > 0
    with (out / "continuity.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    for name in ("continuity", "worst_stream_buffer"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
