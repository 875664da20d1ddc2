"""``honora-tts verify``: the exit code follows the verdict; results land in the output folder."""

import json

import pytest

from honora_tts.qa import verify_command as verify
from honora_tts.version import git_sha

pytestmark = [pytest.mark.notebooks, pytest.mark.integration]

SMALL = ["--probes", "2", "--parallel", "2", "--max-new-tokens", "8", "--quiet"]


def test_configured_endpoint_passes_with_exit_code_0(localpod, tmp_path, monkeypatch, capsys):
    for name, value in localpod.client_env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "verify"
    code = verify.main([*SMALL, "--out", str(out), "--expected-git-sha", git_sha()])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert "VERDICT: PASS" in captured.out
    assert "NOISE" not in captured.err  # a configured endpoint: no localpod was started
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["endpoint"]["api_base"] == localpod.base_url
    executed = out / "01_deploy_verification.ipynb"
    html = (out / "01_deploy_verification.html").read_text()
    assert "VERDICT: PASS" in html
    for text in (executed.read_text(), html, json.dumps(summary)):
        assert localpod.api_key not in text  # the key travelled in the environment only


@pytest.mark.slow
def test_stale_localpod_fails_with_exit_code_1(tmp_path, monkeypatch, capsys):
    for name in ("RUNPOD_ENDPOINT_ID", "RUNPOD_API_KEY", "RUNPOD_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "verify"
    code = verify.main([*SMALL, "--out", str(out), "--workers", "0", "--stale-workers", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "TINY RANDOM-WEIGHTS" in captured.err and "NOISE" in captured.err
    assert "VERDICT: FAIL" in captured.out and "stale-1" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stale_workers"] == ["stale-1"]
    assert (out / "01_deploy_verification.html").exists()


def test_endpoint_without_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "abc123")
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    with pytest.raises(SystemExit, match="RUNPOD_API_KEY"):
        verify.main(["--out", str(tmp_path), "--quiet"])


def test_expected_sha_defaults(monkeypatch):
    monkeypatch.delenv("EXPECTED_GIT_SHA", raising=False)
    assert verify.expected_sha(None) == git_sha()
    assert verify.expected_sha("") == ""
    monkeypatch.setenv("EXPECTED_GIT_SHA", "abcdef1")
    assert verify.expected_sha(None) == "abcdef1"
