"""The management API client against RunPod's responses as the OpenAPI file shapes them
(``runpod_api/``: which are the file's own examples and which were written to its schemas is in
``runpod_api/README.md``), served by an httpx MockTransport: typed models, the requests sent,
error mapping, the transport's retry rule."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from honora_tts.client import InvalidRequest, InvalidResponse, RetryPolicy
from honora_tts.client.management import (
    DEFAULT_MANAGEMENT_API_BASE,
    ChangeRefused,
    ManagementClient,
    ManagementKeyRefused,
    ManagementUnavailable,
    UnknownEndpoint,
)

FIXTURES = Path(__file__).with_name("runpod_api")
KEY = "rpa_test_key_0123456789abcdef"


def body(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class FakeManagementAPI:
    """Answers (method, path) from a script of (status, fixture name, headers); records every
    request."""

    def __init__(self, script: dict[tuple[str, str], list[tuple[int, str, dict]]]) -> None:
        self.script = script
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.script[(request.method, request.url.path)]
        status, name, headers = answers.pop(0) if len(answers) > 1 else answers[0]
        content_type = "application/json" if status < 400 else "application/problem+json"
        return httpx.Response(status, json=body(name), headers={"content-type": content_type,
                                                               **headers})


def client_for(api: FakeManagementAPI, sleeps: list[float] | None = None) -> ManagementClient:
    return ManagementClient(
        KEY, DEFAULT_MANAGEMENT_API_BASE, transport=httpx.MockTransport(api),
        retry=RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02, jitter_s=0),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


def test_reads_endpoint_workers_and_releases_as_typed_models():
    api = FakeManagementAPI({
        ("GET", "/v2/serverless/4m7x2k9q"): [(200, "get_endpoint.json", {})],
        ("GET", "/v2/serverless/4m7x2k9q/workers"): [(200, "list_workers.json", {})],
        ("GET", "/v2/serverless/4m7x2k9q/releases"): [(200, "list_releases.json", {})],
    })
    with client_for(api) as client:
        endpoint = client.endpoint("4m7x2k9q")
        workers = client.workers("4m7x2k9q")
        releases = client.releases("4m7x2k9q")
    assert endpoint.image == "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
    assert (endpoint.workers.min, endpoint.workers.max, endpoint.workers.idle_timeout) == (0, 5, 5)
    assert endpoint.created_at == "2026-06-01T12:00:00Z"
    [worker] = workers.workers
    assert (worker.id, worker.status, worker.is_stale, worker.version) == (
        "8g3n5t6r", "RUNNING", False, 4)
    assert workers.endpoint_version == 4 and workers.summary.total == 2
    assert releases.rollout.in_progress and releases.rollout.percent_on_latest == 50
    assert releases.latest().diff[0].field == "workers.max"
    assert releases.images() == []  # a workers-only release changed no image
    for request in api.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.url.host == "api.runpod.io"


def test_release_history_names_the_images_it_rolled():
    api = FakeManagementAPI({
        ("GET", "/v2/serverless/ep1/releases"): [(200, "list_releases_mid_rollout.json", {})],
    })
    releases = client_for(api).releases("ep1")
    assert releases.images() == [
        "registry.example/honora-tts-worker:9c0d4e5f6a7b",
        "registry.example/honora-tts-worker:3f9a1c2b7d10",
        "registry.example/honora-tts-worker:latest",
    ]


def test_patch_sends_only_the_given_fields():
    api = FakeManagementAPI({("PATCH", "/v2/serverless/4m7x2k9q"): [(200, "patch_endpoint.json",
                                                                      {})]})
    endpoint = client_for(api).update_endpoint("4m7x2k9q", image="reg/app:abc1234",
                                               workers_max=3)
    [request] = api.requests
    assert json.loads(request.content) == {"image": "reg/app:abc1234", "workers": {"max": 3}}
    assert endpoint.workers.max == 10  # the answer is the endpoint as RunPod returns it


@pytest.mark.parametrize(("status", "fixture", "error", "words"), [
    (401, "error_401.json", ManagementKeyRefused, "API Keys"),
    (404, "error_404.json", UnknownEndpoint, "no serverless endpoint 'ep1'"),
    (422, "error_422.json", ChangeRefused, "nothing was changed"),
])
def test_errors_are_typed_and_say_what_to_do(status, fixture, error, words):
    api = FakeManagementAPI({("PATCH", "/v2/serverless/ep1"): [(status, fixture, {})]})
    with pytest.raises(error) as raised:
        client_for(api).update_endpoint("ep1", image="reg/app:abc1234")
    assert words in str(raised.value)
    assert KEY not in str(raised.value)
    assert len(api.requests) == 1  # refusals are not retried


def test_unavailable_api_is_retried_then_reported():
    sleeps: list[float] = []
    api = FakeManagementAPI({("GET", "/v2/serverless/ep1"): [
        (503, "error_404.json", {}), (429, "error_404.json", {"retry-after": "0.05"}),
        (200, "get_endpoint.json", {}),
    ]})
    assert client_for(api, sleeps).endpoint("ep1").id == "4m7x2k9q"
    assert len(api.requests) == 3 and 0.05 in sleeps

    down = FakeManagementAPI({("GET", "/v2/serverless/ep1"): [(503, "error_404.json", {})]})
    with pytest.raises(ManagementUnavailable, match="RUNPOD_MANAGEMENT_API_BASE"):
        client_for(down).endpoint("ep1")
    assert len(down.requests) == 3


def test_bad_input_is_refused_before_anything_is_sent():
    api = FakeManagementAPI({})
    client = client_for(api)
    for bad in ("", "../etc", "ep 1", "a/b"):
        with pytest.raises(InvalidRequest):
            client.endpoint(bad)
    with pytest.raises(InvalidRequest, match="nothing to change"):
        client.update_endpoint("ep1")
    with pytest.raises(InvalidRequest, match="exceeds max"):
        client.update_endpoint("ep1", workers_min=3, workers_max=1)
    assert api.requests == []
    with pytest.raises(ManagementKeyRefused):
        ManagementClient("  ")
    with pytest.raises(InvalidRequest):
        ManagementClient(KEY, "api.runpod.io/v2")


def test_a_body_that_is_not_the_schema_is_an_invalid_response():
    api = FakeManagementAPI({("GET", "/v2/serverless/ep1/workers"): [(200, "list_releases.json",
                                                                      {})]})
    with pytest.raises(InvalidResponse, match="WorkerList"):
        client_for(api).workers("ep1")
