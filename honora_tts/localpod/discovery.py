"""The state file a running ``honora-tts localpod`` leaves for other processes: where it listens,
its key, its pid and workers. ``find_running`` is how a client attaches to it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil

from honora_tts.settings import cache_dir


def state_dir_for(endpoint_id: str) -> Path:
    """Where a foreground localpod keeps its worker logs."""
    return cache_dir() / "localpod" / endpoint_id


def state_file_path(endpoint_id: str = "localpod") -> Path:
    return cache_dir() / "localpod" / f"{endpoint_id}.json"


def write_state_file(path: Path, state: dict[str, Any]) -> None:
    """Write atomically, readable by the owner only (it holds the API key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    os.replace(tmp, path)


def read_state_file(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def find_running(endpoint_id: str = "localpod") -> dict[str, Any] | None:
    """The state of a running ``honora-tts localpod`` for ``endpoint_id`` (``base_url``,
    ``endpoint_id``, ``api_key``, ``pid``, ``workers``), or None. A state file left by a pod
    that died without stopping is removed, and worker processes it recorded are killed."""
    path = state_file_path(endpoint_id)
    state = read_state_file(path)
    if state is None:
        return None
    if _alive(state.get("pid")):
        return state
    reap_orphans(state)
    path.unlink(missing_ok=True)
    return None


def reap_orphans(state: dict[str, Any]) -> int:
    """Kill the process groups of workers a dead pod recorded, if they still are its workers:
    the process runs the recorded handler with that worker id and that pod's job-take URL (a
    load-balancing pod's: its recorded port; a recycled pid is left alone). Returns how many."""
    killed = 0
    base_url = state.get("base_url")
    for worker in state.get("workers") or []:
        pid, handler = worker.get("pid"), worker.get("handler")
        if not isinstance(pid, int) or not handler or not base_url or not _alive(pid):
            continue
        try:
            process = psutil.Process(pid)
            cmdline, env = process.cmdline(), process.environ()
        except psutil.Error:
            continue
        if state.get("mode") == "load_balancing":  # its workers serve HTTP on their port
            pointed_at_pod = env.get("PORT") == str(worker.get("port"))
        else:
            pointed_at_pod = env.get("RUNPOD_WEBHOOK_GET_JOB", "").startswith(f"{base_url}/")
        ours = (
            handler in cmdline
            and env.get("RUNPOD_POD_ID") == worker.get("id")
            and pointed_at_pod
        )
        if ours:
            try:
                os.killpg(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed
