"""End to end through localpod on the speaking stand-in (``tests/fixtures/speaking_worker.py``:
Piper behind the real worker loop, not XTTS): deploy verification (``honora-tts verify`` and its
speaks check), the release gate's noise floor and verdict. PASS on the good build with the
speaks check green; FAIL naming the evidence on each build that speaks badly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honora_tts.client import EndpointClient
from honora_tts.qa import verify_command as verify
from honora_tts.qa.speech import speaks_check
from honora_tts.qa.speech.gate_run import run_gate, run_noise_floor
from honora_tts.qa.speech.noise_floor import read_tolerances
from honora_tts.qa.verification import Status
from honora_tts.version import git_sha

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = Path(__file__).resolve().parents[1] / "fixtures" / "speaking_worker.py"
GATE_ITEMS = ["en-greeting", "en-question", "en-list"]
VERIFY = ["--probes", "2", "--parallel", "2", "--stress-sample", "1", "--quiet"]
#: What each bad build must be judged.
FAULTS = {"truncating": "truncated", "babbling": "runaway", "looping": "runaway",
          "wrong_text": "wrong_text", "clipped": "distorted"}


def _pod(localpod_factory, fault: str = ""):
    return localpod_factory(workers=1, handler_path=WORKER,
                            worker_env={"SPEAKING_WORKER_FAULT": fault}, timeout_s=120)


def _verify(pod, out: Path, monkeypatch, capsys) -> tuple[int, dict, str]:
    for name, value in pod.client_env().items():
        monkeypatch.setenv(name, value)
    code = verify.main([*VERIFY, "--out", str(out), "--expected-git-sha", git_sha()])
    captured = capsys.readouterr()
    return code, json.loads((out / "summary.json").read_text()), captured.out


@pytest.fixture(scope="module")
def good_build(tmp_path_factory):
    """The good build and its noise floor: the golden items spoken twice (seeds 1 and 2)."""
    from honora_tts.localpod import LocalPod

    out = tmp_path_factory.mktemp("noise-floor")
    with LocalPod(workers=1, handler_path=WORKER, worker_env={"SPEAKING_WORKER_FAULT": ""}) \
            as pod:
        floor = run_noise_floor([pod.endpoint_id], out, runs=2, items=GATE_ITEMS,
                                api_base=pod.base_url, api_key=pod.api_key, progress=False)
        yield pod, out, floor


def test_verify_passes_on_the_speaking_build_with_the_speaks_check_green(
        good_build, tmp_path, monkeypatch, capsys):
    pod, _, _ = good_build
    code, summary, out = _verify(pod, tmp_path / "verify", monkeypatch, capsys)
    assert code == 0 and "VERDICT: PASS" in out, summary["reasons"]
    speaks = next(c for c in summary["checks"] if c["name"] == "speaks")
    assert speaks["status"] == "PASS", speaks["summary"]
    assert "verified" in speaks["summary"] and "not_verified" not in speaks["summary"]
    assert all(clip["verdict"] == "speech" for clip in summary["speech"])
    assert any("not XTTS" in (w["model_name"] or "") for w in summary["workers"])


def test_the_noise_floor_and_a_same_build_gate(good_build, tmp_path):
    pod, floor_dir, floor = good_build
    assert floor.runs == 2 and floor.comparisons == 1
    by = {m.measure: m for m in floor.measures}
    assert by["wer"].measured and by["dnsmos_ovrl"].measured
    assert not by["speaker_similarity"].measured  # no reference voices
    data = json.loads((floor_dir / "noise_floor.json").read_text())
    assert data["details"]["seeds"] == [1, 2]
    assert data["details"]["judges"]["asr"]["files"]["model.bin"]
    tolerances = read_tolerances(floor_dir / "noise_floor.json")
    run = run_gate(str(floor_dir / "run1"), pod.endpoint_id, tmp_path, items=GATE_ITEMS,
                   tolerances=tolerances, api_base=pod.base_url, api_key=pod.api_key,
                   progress=False, plots=False)
    assert run.result.passed, run.result.reasons
    headline = run.result.headline()
    assert "NOT MEASURED: speaker similarity" in headline and "within tolerance: WER" in headline
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "noise floor" in summary["tolerances"]["source"]
    judges = summary["judges"]
    assert set(judges) == {"quality", "asr", "voice", "calibration"}
    assert all(len(h) == 64 for j in judges.values() for h in j["files"].values())


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_build_that_speaks_badly_fails_verification_and_the_gate(
        fault, good_build, localpod_factory, tmp_path):
    _, floor_dir, _ = good_build
    pod = _pod(localpod_factory, fault)
    client = EndpointClient(api_key=pod.api_key, endpoint_id=pod.endpoint_id,
                            api_base=pod.base_url)
    text = "This is a short test of the deployed voice."
    result = client.synthesize(text)
    result.save(tmp_path / "voice.wav")
    judged = speaks_check.judge_clips(
        [speaks_check.SpokenClip("text_and_voice", tmp_path / "voice.wav", text)],
        progress=False)
    check = speaks_check.speaks_check(judged, result.version.model_name)
    assert check.status == Status.FAIL, check.summary
    assert f"text_and_voice: {FAULTS[fault]}" in check.summary
    assert [a.key for a in speaks_check.advice(check)] == [f"speech_{FAULTS[fault]}"]

    run = run_gate(str(floor_dir / "run1"), pod.endpoint_id, tmp_path / "gate",
                   items=GATE_ITEMS, tolerances=read_tolerances(floor_dir / "noise_floor.json"),
                   api_base=pod.base_url, api_key=pod.api_key, progress=False, plots=False)
    assert not run.result.passed
    assert f"{FAULTS[fault]} x" in run.result.headline(), run.result.reasons


def test_verify_fails_on_the_wrong_text_build_naming_the_evidence(
        localpod_factory, tmp_path, monkeypatch, capsys):
    pod = _pod(localpod_factory, "wrong_text")
    code, summary, out = _verify(pod, tmp_path / "verify", monkeypatch, capsys)
    assert code == 1 and "VERDICT: FAIL" in out
    speaks = next(c for c in summary["checks"] if c["name"] == "speaks")
    assert speaks["status"] == "FAIL" and "wrong_text" in speaks["summary"]
    assert "does not say the text" in speaks["summary"]
    advice = {a["key"] for a in summary["troubleshooting"]}
    assert "speech_wrong_text" in advice
