"""pytest fixtures for tests that run against localpod (register with
``pytest_plugins = ["localpod_fixtures"]``).

- ``localpod``: one pod per test session, two current workers (``worker/handler.py``) with the
  tiny model, ready before the first test that uses it.
- ``lb_localpod``: one load-balancing pod per test session (``honora-tts localpod
  --load-balancing``): three HTTP workers (``HONORA_SERVE=http``) with the tiny model behind
  one base URL.
- ``localpod_factory(**kwargs)``: starts a pod with :class:`LocalPod`'s keyword arguments (plus
  ``wait_ready`` and ``timeout_s`` for :meth:`LocalPod.start`) and stops it after the test.

:class:`PodAPI` makes raw RunPod API calls to a pod, for tests of the API itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from honora_tts.localpod.jobs import TERMINAL_STATES
from honora_tts.localpod.lb_pod import LoadBalancedPod
from honora_tts.localpod.pod import LocalPod

SESSION_READY_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def localpod() -> Iterator[LocalPod]:
    """A running pod shared by the whole session: 2 current workers, tiny model."""
    pod = LocalPod(workers=2, model="tiny")
    pod.start(timeout_s=SESSION_READY_TIMEOUT_S)
    try:
        yield pod
    finally:
        pod.stop()


@pytest.fixture(scope="session")
def lb_localpod() -> Iterator[LoadBalancedPod]:
    """A load-balancing pod shared by the whole session: 3 HTTP workers, tiny model (each
    worker has its own cache, as separate machines do)."""
    pod = LoadBalancedPod(workers=3, model="tiny")
    pod.start(timeout_s=SESSION_READY_TIMEOUT_S)
    try:
        yield pod
    finally:
        pod.stop()


@pytest.fixture
def localpod_factory() -> Iterator[Callable[..., LocalPod]]:
    """Start custom pods for one test; every pod it started is stopped at teardown."""
    pods: list[LocalPod] = []

    def start(**kwargs: Any) -> LocalPod:
        wait_ready = kwargs.pop("wait_ready", True)
        timeout_s = kwargs.pop("timeout_s", SESSION_READY_TIMEOUT_S)
        pod = LocalPod(**kwargs)
        pods.append(pod)
        return pod.start(wait_ready=wait_ready, timeout_s=timeout_s)

    try:
        yield start
    finally:
        for pod in reversed(pods):
            pod.stop()


class PodAPI(httpx.Client):
    """Raw RunPod API calls to one pod's endpoint URL with its API key: what a caller that
    skips honora's client sends. Answers other than 200 fail the test where noted."""

    def __init__(self, pod: LocalPod, timeout_s: float = 120.0) -> None:
        super().__init__(
            base_url=pod.endpoint_url,
            headers={"Authorization": f"Bearer {pod.api_key}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )
        self.pod = pod

    def post_body(self, route: str, body: bytes) -> httpx.Response:
        """POST raw bytes as JSON (for bodies that are not valid JSON, or not UTF-8)."""
        return self.post(f"/{route}", content=body, headers={"Content-Type": "application/json"})

    def submit(self, job_input: Any, route: str = "run", **body: Any) -> str:
        """Submit a job (200 expected) and return its id."""
        response = self.post_body(route, json.dumps({"input": job_input, **body}).encode())
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/status/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, job_id: str, until: Callable[[dict[str, Any]], bool],
                    timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll until ``until(status)`` holds; the last status either way."""
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            status = self.status(job_id)
            if until(status) or time.monotonic() > deadline:
                return status
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def wait_final(self, job_id: str, timeout_s: float = 240.0) -> dict[str, Any]:
        """Poll until the job is final; fails the test when it is not within ``timeout_s``."""
        status = self.wait_status(job_id, lambda s: s["status"] in TERMINAL_STATES, timeout_s)
        assert status["status"] in TERMINAL_STATES, f"job {job_id} not final: {status}"
        return status
