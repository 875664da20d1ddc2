"""Client test support: a voice-file writer and a scripted RunPod endpoint.

The endpoint sits behind ``httpx.MockTransport`` and counts every request.

Jobs finish after ``polls_to_finish`` status polls with what ``worker(input)`` answers (a RunPod
job result: ``{"output": ...}`` and/or ``{"error": ...}``). ``fail(route, *faults)`` makes the
next requests on a route fail: an ``httpx`` exception class raised before the request reaches
the endpoint, ``Reached(exc)`` raised after the endpoint handled it, or an HTTP status (with
optional headers).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from honora_tts import audio
from honora_tts.protocol import HANDLER_VERSION

API_BASE = "https://api.runpod.test/v2"
ENDPOINT_ID = "ep-test"
API_KEY = "rpa_SECRETKEY1234567890abcdef"


def write_voice(path: Path, seconds: float = 2.5, rate: int = 24_000) -> Path:
    """A voiced signal: a 140 Hz fundamental with harmonics and a slow vibrato."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 6 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.25 * signal * envelope).astype(np.float32), rate, subtype="PCM_16")
    return path



def version_dict(**overrides: Any) -> dict[str, Any]:
    record = {
        "handler_version": HANDLER_VERSION,
        "package_version": "0.1.0",
        "git_sha": "a" * 40,
        "build_time": "2026-01-01T00:00:00Z",
        "python_version": "3.11.9",
        "model_name": "tiny",
        "device": "cpu",
        "worker_id": "worker-1",
        "streaming": False,
    }
    record.update(overrides)
    return record


def wav_bytes(seconds: float = 0.5, rate: int = 24_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return audio.encode((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, "wav")


def audio_payload(data: bytes, fmt: str = "wav", rate: int = 24_000, seconds: float = 0.5):
    return {
        "format": fmt, "sample_rate": rate, "channels": 1, "duration_s": seconds,
        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "delivery": "base64",
        "base64": base64.b64encode(data).decode("ascii"),
    }


def honora_worker(version: dict[str, Any] | None = None) -> Callable[[dict], dict]:
    """A current worker: health answers, simple and batch synthesis."""
    data = wav_bytes()
    version = version or version_dict()

    def work(job_input: dict[str, Any]) -> dict[str, Any]:
        request_id = job_input.get("request_id")
        if job_input.get("action") == "health":
            return {"output": {
                "request_id": request_id, "status": "healthy", "version": version,
                "health": {"model_loaded": True},
            }}
        if job_input.get("sections"):
            sections = []
            for index, section in enumerate(job_input["sections"]):
                if section["text"].startswith("FAIL"):
                    sections.append({"id": section["id"], "index": index, "status": "error",
                                     "error": {"code": "synthesis_failed", "message": "boom"}})
                else:
                    sections.append({
                        "id": section["id"], "index": index, "status": "ok",
                        "audio": audio_payload(data), "text_chars": len(section["text"]),
                        "pieces": 1, "timings": {"generation_ms": 5.0},
                        "cache": {"voice": "default", "latents": "hit"},
                    })
            return {"output": {"request_id": request_id, "status": "ok", "version": version,
                               "sections": sections}}
        if job_input.get("text", "").startswith("FAIL"):
            return {
                "output": {"request_id": request_id, "status": "error", "version": version},
                "error": {"code": "synthesis_failed", "message": "the model failed",
                          "field": None},
            }
        return {"output": {
            "request_id": request_id, "status": "ok", "version": version,
            "audio": audio_payload(data), "language": job_input.get("language"),
            "text_chars": len(job_input.get("text", "")), "pieces": 1,
            "timings": {"voice_fetch_ms": 1.0, "latents_ms": 2.0, "generation_ms": 30.0,
                        "encode_ms": 1.0, "total_ms": 34.0},
            "cache": {"voice": "default", "latents": "hit"},
        }}

    return work


def stale_worker(job_input: dict[str, Any]) -> dict[str, Any]:
    """The batch-only worker (handler version 1)."""
    return {"error": "No sections provided"}


@dataclass
class Reached:
    """A transport error raised after the endpoint handled the request."""

    exc: type[httpx.TransportError]


@dataclass
class FakeJob:
    id: str
    input: dict[str, Any]
    worker_id: str
    polls_left: int
    result: dict[str, Any] | None = None
    status: str = "IN_QUEUE"
    stream: list[Any] = field(default_factory=list)


class FakeRunPod:
    def __init__(
        self,
        worker: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        *,
        polls_to_finish: int = 1,
        never_finish: bool = False,
    ) -> None:
        self.workers: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
            ("worker-1", worker or honora_worker())
        ]
        self.polls_to_finish = polls_to_finish
        self.never_finish = never_finish
        self.jobs: dict[str, FakeJob] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self.faults: dict[str, list[Any]] = {}
        self.stream_script: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._next_worker = 0

    # --- setup
    def add_worker(self, worker_id: str, worker: Callable[[dict], dict]) -> None:
        self.workers.append((worker_id, worker))

    def fail(self, route: str, *faults: Any) -> None:
        self.faults.setdefault(route, []).extend(faults)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def posts(self) -> int:
        return sum(n for route, n in self.calls.items() if route.startswith("POST"))

    @property
    def job_inputs(self) -> list[dict[str, Any]]:
        return [job.input for job in self.jobs.values()]

    # --- the endpoint
    def handle(self, request: httpx.Request) -> httpx.Response:
        prefix = f"/v2/{ENDPOINT_ID}/"
        path = request.url.path
        assert path.startswith(prefix), path
        rest = path[len(prefix):]
        route = rest.split("/")[0]
        with self._lock:
            self.requests.append(request)
            pending = self.faults.get(route)
            fault = pending.pop(0) if pending else None
        if isinstance(fault, type) and issubclass(fault, httpx.TransportError):
            raise fault("injected", request=request)
        with self._lock:
            self.calls[f"{request.method} {route}"] += 1
        if isinstance(fault, tuple):
            status, headers = fault
            return httpx.Response(status, headers=headers, json={"error": "injected"})
        if isinstance(fault, int):
            return httpx.Response(fault, json={"error": "injected"})
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return httpx.Response(401, json={"error": "unauthorized"})
        response = self._route(request, route, rest)
        if isinstance(fault, Reached):
            raise fault.exc("injected after the endpoint handled it", request=request)
        return response

    def _route(self, request: httpx.Request, route: str, rest: str) -> httpx.Response:
        if route in ("run", "runsync") and request.method == "POST":
            body = json.loads(request.content)
            job = self._create(body["input"])
            if route == "runsync":
                job.polls_left = 0
                return httpx.Response(200, json=self._advance(job))
            return httpx.Response(200, json={"id": job.id, "status": "IN_QUEUE"})
        if route == "status" and request.method == "GET":
            job = self.jobs.get(rest.split("/")[1])
            if job is None:
                return httpx.Response(404, json={"error": "job not found"})
            return httpx.Response(200, json=self._advance(job))
        if route == "cancel" and request.method == "POST":
            job = self.jobs[rest.split("/")[1]]
            if job.status not in ("COMPLETED", "FAILED"):
                job.status = "CANCELLED"
            return httpx.Response(200, json={"id": job.id, "status": job.status})
        if route == "stream" and request.method == "GET":
            job = self.jobs[rest.split("/")[1]]
            return httpx.Response(200, json=self._stream(job))
        if route == "health" and request.method == "GET":
            return httpx.Response(200, json={
                "jobs": {"completed": sum(j.status == "COMPLETED" for j in self.jobs.values()),
                         "inQueue": 0},
                "workers": {"idle": len(self.workers), "running": 0},
            })
        if route == "purge-queue" and request.method == "POST":
            return httpx.Response(200, json={"removed": 0, "status": "completed"})
        return httpx.Response(404, json={"error": f"no route {request.method} {rest}"})

    def _create(self, job_input: dict[str, Any]) -> FakeJob:
        with self._lock:
            worker_id, _ = self.workers[self._next_worker % len(self.workers)]
            self._next_worker += 1
            job = FakeJob(
                id=f"job-{len(self.jobs) + 1}", input=job_input, worker_id=worker_id,
                polls_left=self.polls_to_finish,
            )
            self.jobs[job.id] = job
        return job

    def _advance(self, job: FakeJob) -> dict[str, Any]:
        with self._lock:
            if job.status in ("IN_QUEUE", "IN_PROGRESS") and not self.never_finish:
                if job.polls_left <= 0:
                    worker = dict(self.workers)[job.worker_id]
                    job.result = worker(job.input)
                    job.status = "FAILED" if job.result.get("error") else "COMPLETED"
                else:
                    job.polls_left -= 1
                    job.status = "IN_PROGRESS"
            elif job.status == "IN_QUEUE":
                job.status = "IN_PROGRESS"
            view: dict[str, Any] = {"id": job.id, "status": job.status}
            if job.status in ("COMPLETED", "FAILED"):
                view.update(delayTime=3, executionTime=40, workerId=job.worker_id)
                view.update(job.result or {})
            return view

    def _stream(self, job: FakeJob) -> dict[str, Any]:
        with self._lock:
            script = self.stream_script or []
            if job.stream is not None and not job.stream and job.status == "IN_QUEUE":
                job.stream = list(script)
                job.status = "IN_PROGRESS"
            if job.stream:
                item = job.stream.pop(0)
                return {"status": "IN_PROGRESS", "stream": [{"output": item}]}
            if self.never_finish:
                return {"status": job.status, "stream": []}
            final = next((i for i in script if i.get("type") == "final"), None)
            job.status = "COMPLETED"
            job.result = {"output": [final] if final else []}
            return {"status": "COMPLETED", "stream": []}
