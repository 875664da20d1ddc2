"""Helpers for the reliability tests: the bad-input corpus (data in ``bad_inputs.json``), a raw
HTTP driver for a localpod, worker-identity checks, a TCP proxy that drops connections, and the
figures every module records for the report.

The voice-test helpers (generated audio, the scripted HTTP server on 127.0.0.1 that counts
requests per path) are the voice tests' own, loaded from ``tests/voices/voice_test_support.py``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from localpod_fixtures import PodAPI

from honora_tts.localpod import LocalPod

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
CORPUS_PATH = HERE / "bad_inputs.json"
ARTIFACTS = TESTS.parent / "artifacts" / "reliability"
#: Every valid synthesis in these tests stays tiny.
TINY = {"max_new_tokens": 8}
EOF_CRASH = "EOF when reading a line"


def _load(relative: str, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


voice_support = _load("voices/voice_test_support.py", "honora_reliability_voice_support")
ScriptedServer = voice_support.ScriptedServer
voice_bytes = voice_support.voice_bytes
silent_wav = voice_support.silent_wav
flac_claiming_hours = voice_support.flac_claiming_hours
flac_hiding_length = voice_support.flac_hiding_length
flac_dense = voice_support.flac_dense
closed_port = voice_support.closed_port


# ---------------------------------------------------------------------------- figures

#: What each module measured, written to ``artifacts/reliability/report.json`` and printed
#: at the end of the session (see conftest).
FIGURES: dict[str, Any] = {}


def record(section: str, **facts: Any) -> None:
    FIGURES.setdefault(section, {}).update(facts)


# ---------------------------------------------------------------------------- corpus


def load_corpus() -> dict[str, Any]:
    return json.loads(CORPUS_PATH.read_text(encoding="utf-8"))


def substitute(value: Any, places: dict[str, str]) -> Any:
    """``value`` with ``{name}`` placeholders in strings replaced (recursively)."""
    if isinstance(value, str):
        for key, replacement in places.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [substitute(item, places) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, places) for key, item in value.items()}
    return value


def build_input(case: dict[str, Any], places: dict[str, str]) -> Any:
    """The job input of a corpus case: its literal ``input`` or its ``recipe``'s product."""
    if "input" in case:
        return substitute(case["input"], places)
    recipe = dict(case["recipe"])
    kind = recipe.pop("kind")
    base = substitute(recipe.pop("base", {}), places)
    if kind == "text":
        return {**base, recipe.get("field", "text"): recipe.get("char", "a") * recipe["chars"]}
    if kind == "sections":
        text = recipe.get("text", "Hello.")
        chars = recipe.get("chars")
        if chars:
            text = (text * (chars // len(text) + 1))[:chars]
        sections = [{"id": f"s{i}", "text": text} for i in range(recipe["count"])]
        return {**base, "sections": sections}
    if kind == "embedded_voice":
        blob = base64.b64encode(os.urandom(recipe["bytes"] * 3 // 4)).decode("ascii")
        return {**base, recipe["key"]: blob}
    if kind == "nested":
        nested: Any = recipe.get("leaf", 1)
        for _ in range(recipe["depth"]):
            nested = [nested]
        return {**base, recipe["field"]: nested}
    raise ValueError(f"unknown recipe kind {kind!r}")


def raw_body(case: dict[str, Any], places: dict[str, str]) -> bytes:
    """The HTTP body a case sends: ``raw_body`` verbatim, else ``{"input": ...}`` as JSON."""
    if "raw_body" in case:
        raw = case["raw_body"]
        if isinstance(raw, dict) and raw.get("kind") == "nested_body":
            depth = raw["depth"]
            nested = "[" * depth + "]" * depth
            return ('{"input": {"text": "hi", "params": ' + nested + "}}").encode()
        return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    body = {"input": build_input(case, places)}
    return json.dumps(body).encode()


def worker_error(status: dict[str, Any]) -> dict[str, Any]:
    """A FAILED job's structured error: the worker sends the JSON text of ``{code, message,
    field}``; errors localpod decides are objects."""
    error = status.get("error")
    if isinstance(error, str):
        return json.loads(error)
    assert isinstance(error, dict), status
    return error


# ---------------------------------------------------------------------------- pods


class PodDriver(PodAPI):
    """Raw RunPod API calls to one pod: what a caller that skips honora's client sends."""

    def run_to_end(self, job_input: Any, **extra: Any) -> dict[str, Any]:
        return self.wait_final(self.submit(job_input, **extra))


def live_workers(pod: LocalPod) -> list[dict[str, Any]]:
    return [w for w in pod.workers() if w["state"] != "dead"]


def stdin_target(pid: int) -> str:
    """Where a process's file descriptor 0 points (Linux)."""
    return os.readlink(f"/proc/{pid}/fd/0")


def worker_log(worker: dict[str, Any]) -> str:
    try:
        return Path(worker["log_path"]).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def wait_until(predicate: Callable[[], bool], timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ---------------------------------------------------------------------------- network faults


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of a pod. ``drop_status_polls(n)`` makes the next
    ``n`` connections that carry a ``GET .../status/`` request die without an answer: the
    first one carrying such a request is cut, and connections opened after it are closed
    before anything is read (what a dropped network looks like to the client) until ``n``
    connections were dropped."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._to_drop = 0
        self._dropping = False
        self.dropped = 0
        self.connections = 0
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def base_url(self, pod: LocalPod) -> str:
        return pod.base_url.replace(f":{self.target_port}/", f":{self.port}/")

    def drop_status_polls(self, n: int) -> None:
        with self._lock:
            self._to_drop = n
            self._dropping = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._sockets):
            _close_quietly(sock)

    def _take_drop(self, *, first_request: bytes | None) -> bool:
        with self._lock:
            if self._to_drop <= 0:
                return False
            if not self._dropping:
                if first_request is None or b"/status/" not in first_request:
                    return False
                self._dropping = True
            self._to_drop -= 1
            self.dropped += 1
            if self._to_drop == 0:
                self._dropping = False
            return True

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self._dropping and self._take_drop(first_request=b"/status/"):
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            _reset(client)
            return
        self._sockets += [client, upstream]
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client and data.startswith(b"GET ") and self._take_drop(
                    first_request=data.split(b"\r\n", 1)[0]
                ):
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _reset(source)
            _reset(sink)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), like a connection that died."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    _close_quietly(sock)


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
