"""``honora-tts localpod`` as a user runs it: a foreground process with real workers and the
tiny model, stopped with SIGTERM."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from honora_tts.localpod import find_running, state_file_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

URL_DEADLINE_S = 15
READY_TIMEOUT_S = 300


def _lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def _wait_for(lines: queue.Queue, prefix: str, timeout_s: float, seen: list[str]) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r} in {timeout_s} s; got {seen}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_cli_starts_serves_and_stops_cleanly(tmp_path: Path) -> None:
    endpoint_id = f"cli-{secrets.token_hex(4)}"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "honora_tts.cli", "localpod", "--workers", "2", "--port", "0",
         "--endpoint-id", endpoint_id, "--state-dir", str(tmp_path), "--model", "tiny"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    children: list[psutil.Process] = []
    try:
        base = _wait_for(lines, "RUNPOD_API_BASE=", URL_DEADLINE_S, seen).split("=", 1)[1]
        assert time.monotonic() - started < URL_DEADLINE_S
        endpoint = _wait_for(lines, "RUNPOD_ENDPOINT_ID=", 5, seen).split("=", 1)[1]
        api_key = _wait_for(lines, "RUNPOD_API_KEY=", 5, seen).split("=", 1)[1]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v2")
        assert endpoint == endpoint_id

        state = find_running(endpoint_id)
        assert state is not None
        assert (state["base_url"], state["api_key"], state["pid"]) == (base, api_key, process.pid)

        ready = _wait_for(lines, "localpod: ready:", READY_TIMEOUT_S, seen)
        assert "2 worker(s)" in ready
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2
        health = httpx.get(
            f"{base}/{endpoint_id}/health", headers={"Authorization": f"Bearer {api_key}"}
        ).json()
        assert health["workers"]["ready"] == 2
        answer = httpx.post(
            f"{base}/{endpoint_id}/runsync", json={"input": {"action": "health"}},
            headers={"Authorization": f"Bearer {api_key}"}, timeout=120,
        ).json()  # fmt: skip
        assert answer["status"] == "COMPLETED" and answer["output"]["status"] == "healthy"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert _wait_for(lines, "localpod: stopped", 5, seen)
    assert all(_gone(child.pid) for child in children), "a worker outlived localpod"
    assert not state_file_path(endpoint_id).exists()
    assert find_running(endpoint_id) is None
