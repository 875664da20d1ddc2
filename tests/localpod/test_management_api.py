"""localpod's management API (``/v2/serverless/{id}``, ``/workers``, ``/releases``) and its
rolling release, with the scripted worker as two "images" (no model: fast). The rollout
commands' refusals run here too: nothing may change on the endpoint."""

from __future__ import annotations

import httpx
import pytest
from localpod_fixtures import PodAPI
from localpod_testing import SCRIPTED_HANDLER, wait_until

from honora_tts.client.management import ManagementClient
from honora_tts.localpod import LocalPod
from honora_tts.localpod.images import ImageSpecError, parse_image_spec
from honora_tts.rollout.commands import rollout_main

pytestmark = [pytest.mark.integration]

A, B = "honora-tts:aaaa1111", "honora-tts:bbbb2222"


def _pod() -> LocalPod:
    return LocalPod(2, images={A: SCRIPTED_HANDLER, B: SCRIPTED_HANDLER},
                    enforce_policy_minimums=False, poll_hold_s=1.0, stop_grace_s=1.0)


@pytest.fixture
def pod():
    """A pod of its own, for tests that change the endpoint."""
    with _pod() as pod:
        yield pod


@pytest.fixture(scope="module")
def unchanged_pod():
    """One pod for the tests that must leave the endpoint as it is."""
    with _pod() as pod:
        yield pod


@pytest.fixture
def management(pod):
    with ManagementClient(pod.management_api_key, pod.management_base) as client:
        yield client


@pytest.fixture
def unchanged(unchanged_pod):
    with ManagementClient(unchanged_pod.management_api_key,
                          unchanged_pod.management_base) as client:
        yield unchanged_pod, client


def test_endpoint_workers_and_releases_have_runpods_shapes(unchanged):
    pod, management = unchanged
    endpoint = management.endpoint(pod.endpoint_id)
    assert endpoint.image == A and endpoint.workers.max == 2 and endpoint.type == "QUEUE"
    assert endpoint.request_urls["run"] == f"{pod.endpoint_url}/run"
    workers = management.workers(pod.endpoint_id)
    assert workers.endpoint_version == 1 and workers.summary.total == 2
    assert {(w.image, w.version, w.is_stale, w.status) for w in workers.workers} == {
        (A, 1, False, "IDLE")}
    releases = management.releases(pod.endpoint_id)
    assert releases.rollout.percent_on_latest == 100 and not releases.rollout.in_progress
    with PodAPI(pod) as api:  # a worker from an image reports the tag as its git sha
        job = api.submit({"action": "echo"})
        assert api.wait_final(job)["status"] == "COMPLETED"
    env = pod._call(lambda: [w.env_overrides for w in pod.plane.supervisor.workers.values()])
    assert all(e["GIT_SHA"] == "aaaa1111" and e["BUILD_TIME"].endswith("Z") for e in env)


def test_rolling_release_replaces_idle_at_once_and_busy_after_its_job(pod, management):
    with PodAPI(pod) as api:
        busy_job = api.submit({"action": "sleep", "seconds": 4})
        status = api.wait_status(busy_job, lambda s: s["status"] == "IN_PROGRESS")
        busy = status["workerId"]
        management.update_endpoint(pod.endpoint_id, image=B)
        workers = {w.id: w for w in management.workers(pod.endpoint_id).workers}
        assert workers[busy].is_stale and workers[busy].image == A
        assert workers[busy].status == "RUNNING"
        assert all(w.image == B for i, w in workers.items() if i != busy)  # idle one replaced
        releases = management.releases(pod.endpoint_id)
        assert releases.endpoint_version == 2 and releases.rollout.in_progress
        assert releases.latest().image_change().model_dump() == {
            "field": "template.imageName", "old": A, "new": B}
        during = api.submit({"action": "echo"})
        assert api.wait_final(during, 60)["workerId"] != busy  # stale workers take no new job
        assert api.wait_final(busy_job)["status"] == "COMPLETED"  # its job was not lost

    def all_new() -> bool:
        listed = management.workers(pod.endpoint_id).workers
        return len(listed) == 2 and all(w.image == B and not w.is_stale for w in listed)

    assert wait_until(all_new, 60)
    assert busy not in {w.id for w in management.workers(pod.endpoint_id).workers}
    rollout = management.releases(pod.endpoint_id).rollout
    assert (rollout.workers_on_latest, rollout.workers_total, rollout.in_progress) == (2, 2, False)


def test_scaling_to_zero_drains_and_scaling_back_starts_the_new_image(pod, management):
    management.update_endpoint(pod.endpoint_id, workers_min=0, workers_max=0)
    assert wait_until(lambda: not management.workers(pod.endpoint_id).workers, 30)
    assert management.releases(pod.endpoint_id).endpoint_version == 1  # bounds make no release
    management.update_endpoint(pod.endpoint_id, image=B, workers_max=2)
    assert wait_until(lambda: len(management.workers(pod.endpoint_id).workers) == 2, 30)


def test_auth_unknown_endpoint_and_refused_bodies(unchanged):
    pod, _ = unchanged
    url = f"{pod.management_base}/serverless/{pod.endpoint_id}"
    with httpx.Client(timeout=30) as http:
        assert http.get(url).status_code == 401
        wrong = http.get(url, headers={"Authorization": "Bearer wrong-key-123"})
        assert wrong.status_code == 401 and wrong.json()["title"] == "Unauthorized"
        # Issue 23 #4: the job API's key does not open the management API.
        job_key = http.patch(url, json={"image": B},
                             headers={"Authorization": f"Bearer {pod.api_key}"})
        assert job_key.status_code == 401, job_key.text
        auth = {"Authorization": f"Bearer {pod.management_api_key}"}
        missing = http.get(f"{pod.management_base}/serverless/nope/workers", headers=auth)
        assert missing.status_code == 404 and missing.json()["status"] == 404
        for patch, status in (({"bogus": 1}, 422), ({"image": "Not An Image"}, 422),
                              ({"image": "honora-tts:unknown"}, 422),
                              ({"workers": {"min": 3, "max": 1}}, 400), ([1], 400)):
            answer = http.patch(url, json=patch, headers=auth)
            assert answer.status_code == status, (patch, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        endpoint = http.get(url, headers=auth).json()
    assert endpoint["image"] == A and endpoint["workers"]["max"] == 2


@pytest.mark.parametrize(("argv", "env_key", "words"), [
    (["honora-tts:cccc3333", "--endpoint-id", "nope"], None, "UnknownEndpoint"),
    (["honora-tts:cccc3333"], "wrong-key-123", "ManagementKeyRefused"),
    (["Not An Image"], None, "not an image reference"),
    (["honora-tts:latest"], None, "refusing :latest"),
    ([A], None, "already runs"),
    (["other-registry/app:aaaa1111"], None, "was already released"),
    (["honora-tts:no-commit"], None, "--expected-git-sha"),
])
def test_rollout_refusals_change_nothing(unchanged, tmp_path, capsys, argv, env_key, words):
    pod, management = unchanged
    before = management.releases(pod.endpoint_id)
    args = [*argv, "--api-base", pod.base_url, "--management-api-base", pod.management_base,
            "--out", str(tmp_path), "--no-progress", "--no-verify"]
    if "--endpoint-id" not in argv:
        args += ["--endpoint-id", pod.endpoint_id]
    if words != "--expected-git-sha":
        args += ["--expected-git-sha", "cccc3333"]
    code = rollout_main(args, env={"RUNPOD_API_KEY": pod.api_key,
                                   "RUNPOD_MANAGEMENT_API_KEY": env_key or pod.management_api_key})
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and "nothing was changed" in err
    assert pod.api_key not in err and pod.management_api_key not in err
    after = management.releases(pod.endpoint_id)
    assert management.endpoint(pod.endpoint_id).image == A
    assert after.endpoint_version == before.endpoint_version == 1


def test_image_specs(tmp_path):
    entry = tmp_path / "h.py"
    entry.write_text("")
    assert parse_image_spec(f"reg/app:v1={entry}") == ("reg/app:v1", entry.resolve())
    for bad in ("reg/app:v1", f"reg/app={entry}", f"Bad:v1={entry}", "reg/app:v1=/no/such.py"):
        with pytest.raises(ImageSpecError):
            parse_image_spec(bad)


def test_cli_prints_the_management_base_and_serves_images(tmp_path):
    import os
    import secrets
    import signal
    import subprocess
    import sys

    endpoint_id = f"mgmt-{secrets.token_hex(4)}"
    command = [sys.executable, "-m", "honora_tts.cli", "localpod", "--workers", "1", "--port",
               "0", "--endpoint-id", endpoint_id, "--state-dir", str(tmp_path)]
    bad = subprocess.run([*command, "--image", "honora-tts:latest"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "NAME:TAG=ENTRY" in bad.stderr
    process = subprocess.Popen(
        [*command, "--image", f"{A}={SCRIPTED_HANDLER}", "--image", f"{B}={SCRIPTED_HANDLER}",
         "--start-image", B],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        values = {}
        assert process.stdout is not None
        for line in process.stdout:
            if "=" in line and line.split("=", 1)[0].isupper():
                name, value = line.strip().split("=", 1)
                values[name] = value
            if "RUNPOD_MANAGEMENT_API_KEY" in values:
                break
        assert values["RUNPOD_MANAGEMENT_API_BASE"] == values["RUNPOD_API_BASE"]
        assert values["RUNPOD_MANAGEMENT_API_KEY"] != values["RUNPOD_API_KEY"]
        with ManagementClient(values["RUNPOD_MANAGEMENT_API_KEY"],
                              values["RUNPOD_MANAGEMENT_API_BASE"]) as management:
            assert management.endpoint(endpoint_id).image == B
            assert wait_until(lambda: bool(management.workers(endpoint_id).workers), 30)
            assert management.workers(endpoint_id).workers[0].image == B
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
