"""worker/handler.py as RunPod's official local paths run it: a real process, stdin closed."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update({"HONORA_XTTS_MODEL": "tiny", "PYTHONUNBUFFERED": "1", **extra})
    return env


def _test_input(repo_root, payload: dict, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "worker/handler.py", "--test_input", json.dumps({"input": payload})],
        cwd=repo_root, env=_env(**env), stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=600, check=False,
    )


def _job_result(output: str) -> dict:
    """The SDK logs ``Job result: {python repr}``; read it back."""
    match = re.search(r"Job result: (\{.*\})\s*$", output, re.MULTILINE)
    assert match, output[-2000:]
    return ast.literal_eval(match.group(1))


def test_test_input_health_prints_the_version(repo_root):
    done = _test_input(repo_root, {"action": "health"}, GIT_SHA="feedc0de", BUILD_TIME="now")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = _job_result(done.stdout + done.stderr)
    version = result["output"]["version"]
    assert version["git_sha"] == "feedc0de" and version["build_time"] == "now"
    for key in ("handler_version", "package_version", "torch_version", "python_version",
                "model_name", "model_sha256", "device"):
        assert version[key]
    assert len(version["model_sha256"]) == 64
    # Every field is named, the ones without a value on a CPU outside RunPod too.
    for key in ("cuda_version", "gpu_name", "worker_id"):
        assert key in version


@pytest.mark.parametrize("how", ["-m", "package file"])
def test_the_package_entry_runs_the_same_worker(repo_root, tmp_path, how):
    """``python -m honora_tts.worker``, and the package's entry file run by path from elsewhere
    (what localpod runs where the package is installed without its checkout)."""
    from honora_tts import checkout

    entry = (["-m", "honora_tts.worker"] if how == "-m"
             else [str(checkout.PACKAGE_WORKER_ENTRY)])
    done = subprocess.run(
        [sys.executable, *entry, "--test_input", json.dumps({"input": {"action": "health"}})],
        cwd=repo_root if how == "-m" else tmp_path, env=_env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = _job_result(done.stdout + done.stderr)
    assert result["output"]["status"] == "healthy"
    assert result["output"]["health"]["model_loaded"] is True


def test_test_input_bad_request_fails_cleanly(repo_root):
    done = _test_input(repo_root, {})
    out = done.stdout + done.stderr
    assert done.returncode == 1  # RunPod's local path exits 1 for a failed job
    assert "invalid_input" in out
    assert "Traceback" not in out and "EOF when reading a line" not in out


def test_a_worker_whose_model_cannot_load_still_answers(repo_root, tmp_path):
    done = _test_input(repo_root, {"action": "health"}, HONORA_XTTS_CHECKPOINT=str(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert "model_not_ready" in out


def test_a_worker_with_an_invalid_setting_stays_up_and_names_it(repo_root):
    done = _test_input(repo_root, {"action": "health"}, HONORA_PREFETCH="maybe")
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert "model_not_ready" in out and "HONORA_PREFETCH" in out
    assert "Traceback" not in out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rp_serve_api_serves_synthesis_then_more_jobs(repo_root, tmp_path):
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "worker/handler.py", "--rp_serve_api", "--rp_api_port", str(port),
         "--rp_api_host", "127.0.0.1"],
        cwd=repo_root, env=_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/docs", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(1)
        bad = httpx.post(f"{base}/runsync", json={"input": {"text": ""}}, timeout=300).json()
        assert bad["status"] == "FAILED"
        assert json.loads(bad["error"])["code"] == "text_empty"
        good = httpx.post(
            f"{base}/runsync",
            json={"input": {"text": "Served.", "request_id": "srv-1",
                            "params": {"max_new_tokens": 24}}},
            timeout=300,
        ).json()
        assert good["status"] == "COMPLETED", good
        assert good["output"]["request_id"] == "srv-1"
        assert good["output"]["audio"]["sample_rate"] == 24_000
        assert process.poll() is None  # still serving after a failed job
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
