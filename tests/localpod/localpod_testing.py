"""Helpers for localpod's tests: the scripted worker's settings and an HTTP client bound to a
pod."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from honora_tts.localpod import LocalPod

SCRIPTED_HANDLER = Path(__file__).with_name("scripted_handler.py")
SCRIPTED = {"handler_path": SCRIPTED_HANDLER, "enforce_policy_minimums": False}


class PodClient(httpx.Client):
    """httpx bound to one pod's endpoint URL, with its API key."""

    def __init__(self, pod: LocalPod) -> None:
        super().__init__(
            base_url=pod.endpoint_url,
            headers={"Authorization": f"Bearer {pod.api_key}"},
            timeout=60,
        )
        self.pod = pod

    def submit(self, job_input: dict[str, Any], **body: Any) -> str:
        response = self.post("/run", json={"input": job_input, **body})
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/status/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(
        self, job_id: str, until: Callable[[dict[str, Any]], bool], timeout_s: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(job_id)
            if until(status) or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def wait_final(self, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
        final = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
        return self.wait_status(job_id, lambda s: s["status"] in final, timeout_s)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
