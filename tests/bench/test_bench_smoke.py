"""Every benchmark runs with its smallest parameters (``--quick``) and writes the figures it
promises. Never asserts on speed: a slow machine is a figure, not a failure."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks as bench
from benchmarks.report import BenchResult, write_json

#: Figures each benchmark must report with a value in a --quick run.
EXPECTED = {
    "p1": ["handler_ms", "honora_own_ms", "sdk_own_ms", "own_ratio", "added_ratio",
           "worker_path_ms"],
    "p2": ["first_ms_6s", "repeat_ms_6s", "pure_ms_6s", "repeat_over_pure_6s",
           "repeat_downloads_6s", "first_ms_30s", "repeat_over_pure_30s"],
    "p3": ["throughput_1w_2", "throughput_2w_2", "ratio_2w_1w_2", "idle_gap_1w_4",
           "ratio_1w-c2_1w_4"],
    "p4": ["tiny_whole_ms", "tiny_ttfa_ms", "tiny_ttfa_over_whole", "tiny_coqui_ttfa_ms"],
    "p5": ["url_request_bytes_30s", "base64_request_bytes_30s", "size_ratio_30s"],
    "p6": ["fp32_ttfa_ms", "fp32_rtf", "coqui_ttfa_ms", "coqui_rtf", "vs_coqui_rtf"],
    "p7": ["bare_kernel_s", "01_deploy_verification_s"],
    "p8": ["probe_total_ms", "phase_model load (bare)", "total_over_load"],
    "p9": ["serialized_throughput_2", "batched_throughput_2", "batched_latency_2",
           "batched_ttfa_2", "batched_ttfa_cpu_2", "throughput_ratio_2", "latency_ratio_2",
           "throughput_ratio_cpu_2", "latency_ratio_cpu_2"],
    "p10": ["load_ms", "clip_s", "dnsmos_ms", "asr_ms", "align_ms", "voice_ms"],
    "p11": ["never_dry_queue_c1_100ms", "never_dry_load_balancing_c2_100ms",
            "worst_underrun_queue_c2", "worst_underrun_load_balancing_c1", "first12_ttfa_ms",
            "first20_ttfa_ms"],
}
REPO_ROOT = Path(__file__).resolve().parents[2]
SLOW = {"p1", "p2", "p3", "p4", "p6", "p7", "p8", "p9", "p10", "p11"}


def _run(name: str, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", name, "--quick", "--out", str(out)], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=1200, check=False, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"== {name}:" in done.stdout  # the table was printed
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1300)])
    if n in SLOW else n for n in EXPECTED
])
def test_quick_run_writes_its_figures(name, tmp_path):
    data = _run(name, tmp_path)
    assert data["benchmark"] == name and data["quick"] is True and data["error"] is None
    machine = data["machine"]
    assert machine["cores"] >= 1 and machine["torch"] and machine["load_average_at_start"]
    assert data["command"].startswith(f"python -m benchmarks {name} --quick")
    figures = {f["key"]: f for f in data["figures"]}
    for key in EXPECTED[name]:
        assert key in figures, f"{name} lacks {key}: {sorted(figures)}"
        value = figures[key]["value"]
        assert isinstance(value, (int, float)) and math.isfinite(value), figures[key]
    for figure in data["figures"]:
        assert figure["met"] in (True, False, None, "open", "skipped"), figure


def test_router_lists_and_refuses_unknown_names(capsys):
    assert bench.main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in bench.BENCHMARKS)
    assert bench.resolve_names(["voice-reuse", "p2", "P5"]) == ["p2", "p5"]
    assert bench.resolve_names([]) == list(bench.BENCHMARKS)
    with pytest.raises(SystemExit):
        bench.resolve_names(["p99"])


def test_summary_table_collects_every_figure(tmp_path):
    result = BenchResult(name="p5", title="t", machine={"cores": 2, "load_average_at_start": [1]},
                         quick=True, command="python -m benchmarks p5")
    result.add("a", "figure a", 1.5, "ms", target="<= 2", met=True)
    result.add("b", "figure b", float("nan"), "x")
    path = write_json(result, tmp_path)
    assert json.loads(path.read_text())["figures"][1]["value"] is None  # NaN is not JSON
    summary = bench.write_summary(["p5", "p1"], tmp_path, "python -m benchmarks p5 p1").read_text()
    assert "| p5 | figure a | 1.5 ms |" in summary and "| p1 | (no result)" in summary
