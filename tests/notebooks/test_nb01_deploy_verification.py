"""Notebook 01 against localpod: PASS on a current fleet, FAIL naming the stale worker."""

import json
from pathlib import Path

import pytest
from notebook_outputs import output_text

from honora_tts import audio
from honora_tts.version import git_sha

pytestmark = [pytest.mark.notebooks, pytest.mark.integration]

CI_PARAMETERS = {"probes": 4, "parallel": 4, "max_new_tokens": 8, "tiny_text": "Hi.",
                 "voice_text": "A short test.", "stress_text": "Stress.", "stress_sample": 2}


def test_current_fleet_passes(run_notebook, endpoint_parameters, localpod, tmp_path):
    out = tmp_path / "results"
    # The key goes in as a parameter here, to prove it reaches neither an output nor the
    # executed notebook's injected-parameters cell.
    executed = run_notebook("01_deploy_verification", {
        **endpoint_parameters, **CI_PARAMETERS, "api_key": localpod.api_key,
        "expected_git_sha": git_sha(), "artifacts_dir": str(out),
    })
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "PASS", summary["reasons"]
    assert summary["stale_workers"] == [] and summary["troubleshooting"] == []
    assert [c["name"] for c in summary["checks"]] == [
        "version census", "tiny text", "text + voice file", "stress test (4 parallel)", "speaks"]
    assert {c["status"] for c in summary["checks"][:-1]} == {"PASS"}
    # The tiny model's noise is not speech: the speaks check runs and WARNs, saying why.
    speaks = summary["checks"][-1]
    assert speaks["status"] == "WARN", speaks["summary"]
    assert "random-weights" in speaks["summary"] and "not_speech" in speaks["summary"]
    assert any(w.startswith("speaks:") for w in summary["warnings"])
    judged = {clip["clip"] for clip in summary["speech"]}
    assert {"tiny_text", "text_and_voice"} <= judged and len(judged) == 2 + 2
    assert all(clip["dnsmos_p808"] > 0 for clip in summary["speech"])
    workers = {w["worker_id"]: w for w in summary["workers"]}
    live = {w["id"] for w in localpod.workers() if w["state"] != "dead"}
    assert set(workers) <= live and len(workers) >= 1
    assert all(w["handler_version"] == 2 and w["ok"] for w in workers.values())
    assert any("noise" in w for w in summary["warnings"])  # tiny model: said loudly

    for name in ("tiny_text", "text_and_voice"):
        samples, rate = audio.decode((out / f"{name}.wav").read_bytes())
        assert rate == 24_000 and samples.size > 0
    stress = (out / "stress_requests.csv").read_text().splitlines()
    assert len(stress) == 1 + 4
    assert (out / "stress_requests.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "census.csv").exists() and (out / "speech_checks.csv").exists()

    text = output_text(executed)
    assert "The audio below is NOISE" in text and "VERDICT: PASS" in text
    assert localpod.api_key not in json.dumps(executed)


@pytest.mark.slow
def test_stale_worker_fails_and_is_named(run_notebook, localpod_factory, tmp_path):
    pod = localpod_factory(workers=1, stale_workers=1)
    stale = [w["id"] for w in pod.workers() if w["kind"] == "stale"]
    out = tmp_path / "stale"
    executed = run_notebook("01_deploy_verification", {
        "endpoint": pod.endpoint_id, "api_base": pod.base_url, **CI_PARAMETERS,
        "artifacts_dir": str(out),
    }, env={"RUNPOD_API_KEY": pod.api_key}, record_time=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "FAIL"
    assert summary["stale_workers"] == stale
    assert stale[0] in summary["headline"]
    census = next(c for c in summary["checks"] if c["name"] == "version census")
    assert census["status"] == "FAIL" and stale[0] in census["worker_ids"]
    advice = {a["key"]: a for a in summary["troubleshooting"]}
    assert "stale_workers" in advice and "unique tag" in advice["stale_workers"]["fix"]
    assert any(stale[0] in e for e in advice["stale_workers"]["evidence"])
    text = output_text(executed)
    assert "VERDICT: FAIL" in text and pod.api_key not in text
    assert Path(out / "census.csv").read_text().count(stale[0]) == 1
