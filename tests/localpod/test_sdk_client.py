"""The official runpod SDK client (``runpod.Endpoint``), which nobody here wrote, against
localpod: scripted workers for the API surface, the real worker for a synthesis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import runpod
from localpod_testing import SCRIPTED

from honora_tts.localpod import LocalPod

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk_pointed_at(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[LocalPod], runpod.Endpoint]]:
    """Point the SDK's module-level settings at a pod (undone after the test)."""

    def point(pod: LocalPod) -> runpod.Endpoint:
        monkeypatch.setattr(runpod, "api_key", pod.api_key)
        monkeypatch.setattr(runpod, "endpoint_url_base", pod.base_url)
        return runpod.Endpoint(pod.endpoint_id)

    yield point


def test_sdk_surface_on_scripted_workers(scripted_pod: LocalPod, sdk_pointed_at) -> None:
    endpoint = sdk_pointed_at(scripted_pod)
    assert endpoint.run_sync({"action": "echo", "n": 1}, timeout=60)["echo"]["n"] == 1

    job = endpoint.run({"input": {"action": "sleep", "seconds": 1}})
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS")
    assert job.output(timeout=60)["slept"] == 1
    assert job.status() == "COMPLETED"

    doomed = endpoint.run({"action": "sleep", "seconds": 30})
    assert doomed.cancel()["status"] == "CANCELLED"
    assert endpoint.purge_queue()["status"] == "completed"
    health = endpoint.health()
    assert health["jobs"]["completed"] >= 2 and health["workers"]["ready"] >= 1


def test_sdk_stream_reads_every_chunk_once(localpod_factory, sdk_pointed_at) -> None:
    pod = localpod_factory(workers=1, streaming=True, **SCRIPTED)
    endpoint = sdk_pointed_at(pod)
    job = endpoint.run({"chunks": 4, "interval_s": 0.3})
    chunks = list(job.stream())
    assert [chunk["seq"] for chunk in chunks] == [0, 1, 2, 3]
    assert job.status() == "COMPLETED"
    assert [item["seq"] for item in job.output()] == [0, 1, 2, 3], "aggregated output"


@pytest.mark.slow
def test_sdk_synthesis_on_the_real_worker(localpod: LocalPod, sdk_pointed_at) -> None:
    endpoint = sdk_pointed_at(localpod)
    queued = endpoint.run({"input": {"text": "Hello.", "language": "en", "request_id": "a"}})
    assert queued.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    synced = endpoint.run_sync(
        {"text": "Good day.", "language": "en", "request_id": "b"}, timeout=600
    )
    ran = queued.output(timeout=600)
    assert queued.status() == "COMPLETED"
    for output, request_id in ((synced, "b"), (ran, "a")):
        assert output["status"] == "ok", output
        assert output["request_id"] == request_id
        assert output["audio"]["duration_s"] > 0 and output["audio"]["base64"]
        assert output["version"]["handler_version"] >= 2
    health = endpoint.run_sync({"action": "health"}, timeout=120)
    assert health["status"] == "healthy"
    assert health["version"]["worker_id"] in {w["id"] for w in localpod.workers()}
