"""The state file a foreground localpod leaves, and how a client finds (or cleans up) a pod."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from honora_tts.localpod import find_running, read_state_file, state_file_path
from honora_tts.localpod.discovery import write_state_file


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HONORA_CACHE_DIR", str(tmp_path))
    return tmp_path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_state_file_round_trip_and_live_pod(cache: Path) -> None:
    path = state_file_path("ep1")
    assert path == cache / "localpod" / "ep1.json"
    state = {"base_url": "http://127.0.0.1:1/v2", "endpoint_id": "ep1", "api_key": "k",
             "pid": os.getpid(), "workers": []}  # fmt: skip
    write_state_file(path, state)
    assert path.stat().st_mode & 0o777 == 0o600, "the file holds the API key"
    assert read_state_file(path) == state
    assert find_running("ep1") == state
    assert find_running("other") is None


def test_state_of_a_dead_pod_is_removed_and_its_workers_reaped(cache: Path) -> None:
    fake_handler = "/nonexistent/fake_worker_handler.py"
    base_url = "http://127.0.0.1:1/v2"
    worker_env = {
        **os.environ, "RUNPOD_POD_ID": "worker-1",
        "RUNPOD_WEBHOOK_GET_JOB": f"{base_url}/ep2/job-take/$ID?token=t",
    }  # fmt: skip
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", fake_handler],
        start_new_session=True, stdin=subprocess.DEVNULL, env=worker_env,
    )  # fmt: skip
    try:
        path = state_file_path("ep2")
        write_state_file(path, {
            "base_url": base_url, "endpoint_id": "ep2", "api_key": "k",
            "pid": dead_pid(), "workers": [{"id": "worker-1", "pid": orphan.pid,
                                            "handler": fake_handler}],
        })  # fmt: skip
        assert find_running("ep2") is None
        assert not path.exists()
        assert orphan.wait(timeout=10) == -9
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_a_recycled_pid_is_left_alone(cache: Path) -> None:
    """Same pid and even the same handler file, but not that pod's worker: not killed."""
    handler = "/nonexistent/fake_worker_handler.py"
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", handler],
        start_new_session=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        write_state_file(state_file_path("ep3"), {
            "base_url": "http://127.0.0.1:1/v2", "pid": dead_pid(),
            "workers": [{"id": "worker-1", "pid": bystander.pid, "handler": handler}],
        })  # fmt: skip
        assert find_running("ep3") is None
        assert bystander.poll() is None and psutil.Process(bystander.pid).is_running()
    finally:
        bystander.kill()
        bystander.wait()
