"""End to end on localpod: ``honora-tts rollout`` from the batch-only image to the current handler
under a steady load of synthesis requests, strict and not; rollouts that cannot finish (an image
that crashes at start, one that never reports the expected sha) and the rollback that follows.

Kept cheap: the tiny model, 8 audio tokens per request, one sender, short timeouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honora_tts.client import EndpointClient
from honora_tts.client.commands import census_main
from honora_tts.client.management import ManagementClient
from honora_tts.rollout.commands import rollback_main, rollout_main
from honora_tts.rollout.repository import head_commit

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
OLD = "honora-tts:batchonly"
HEAD = head_commit(REPO) or "0000000"
NEW = f"honora-tts:{HEAD[:12]}"
CRASHING = "honora-tts:crashes"
WRONG_SHA = "honora-tts:deadbeef1234"
OLD_CODE = "honora-tts:oldcode"  # a new tag whose image holds the batch-only worker
IMAGES = {
    OLD: REPO / "tests" / "fixtures" / "stale_handler.py",
    NEW: REPO / "worker" / "handler.py",
    CRASHING: REPO / "tests" / "fixtures" / "crashing_handler.py",
    WRONG_SHA: REPO / "worker" / "handler.py",
    OLD_CODE: REPO / "tests" / "fixtures" / "stale_handler.py",
}


@pytest.fixture
def old_pod(localpod_factory):
    """Two workers on the batch-only image, the current handler ready to roll out."""
    return localpod_factory(workers=2, model="tiny", images=IMAGES, start_image=OLD,
                            poll_hold_s=1.0, timeout_s=120)


def _argv(pod, out: Path, *extra: str) -> list[str]:
    return [
        "--endpoint-id", pod.endpoint_id, "--api-base", pod.base_url,
        "--management-api-base", pod.management_base, "--out", str(out), "--poll", "1",
        "--probe-deadline", "20", "--max-new-tokens", "8", "--no-progress", *extra,
    ]


def _env(pod) -> dict[str, str]:
    return {"RUNPOD_API_KEY": pod.api_key, "RUNPOD_MANAGEMENT_API_KEY": pod.management_api_key}


def _report(out: Path, kind: str) -> dict:
    [path] = sorted(out.glob(f"*-{kind}-*/rollout.json"))
    assert (path.parent / "timeline.png").stat().st_size > 0
    return json.loads(path.read_text())


def _platform(pod):
    with ManagementClient(pod.management_api_key, pod.management_base) as management:
        return management.endpoint(pod.endpoint_id), management.workers(pod.endpoint_id)


def test_rollout_under_load_reaches_every_worker_and_verifies(old_pod, tmp_path, capsys):
    out = tmp_path / "rollout"
    code = rollout_main(
        [NEW, *_argv(old_pod, out, "--traffic", "1", "--timeout", "300", "--verify-parallel",
                     "2", "--verify-probes", "2")],
        env=_env(old_pod),
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    assert "VERDICT: PASS" in captured.out
    report = _report(out, "rollout")
    assert report["outcome"] == "done" and report["previous_image"] == OLD
    assert report["release"]["version"] == 2 and report["endpoint_version_after"] == 2
    assert {"field": "template.imageName", "old": OLD, "new": NEW} in report["release"]["diff"]
    endpoint, workers = _platform(old_pod)
    assert endpoint.image == NEW
    assert len(workers.workers) == 2
    assert all(w.image == NEW and not w.is_stale for w in workers.workers)
    for worker in workers.workers:  # the census heard the new sha from every listed worker
        assert report["census"]["workers"][worker.id]["git_sha"] == HEAD[:12]
    requests = report["requests"]
    assert requests["total"] >= 3
    assert requests["old_before_change"] >= 1  # the load ran against the old build first
    assert requests["lost"] == 0  # every request COMPLETED or was the old worker's named error
    assert set(requests["outcomes"]) <= {"COMPLETED", "StaleWorkerError"}
    assert requests["outcomes"].get("COMPLETED", 0) >= 1
    assert requests["old_during_overlap"] >= 0
    old_answers = [r for r in report["request_log"] if r["outcome"] == "StaleWorkerError"]
    assert all(not r["new_build"] for r in old_answers)
    assert (out / f"{old_pod.endpoint_id}.rollback.json").exists()

    with EndpointClient(old_pod.endpoint_id, old_pod.api_key, old_pod.base_url,
                        management_api_key=old_pod.management_api_key) as client:
        assert census_main(["--probes", "4"], client=client) == 0  # census against /workers
    printed = capsys.readouterr().out
    assert "platform lists 2 worker(s) (endpoint version 2); 0 never answered" in printed


def test_strict_rollout_leaves_no_request_to_old_workers(old_pod, tmp_path):
    out = tmp_path / "rollout"
    code = rollout_main([NEW, *_argv(old_pod, out, "--strict", "--traffic", "1", "--timeout",
                                     "300", "--no-verify")], env=_env(old_pod))
    assert code == 0
    report = _report(out, "rollout")
    assert report["strict"] and report["outcome"] == "done"
    assert min(s["listed"] for s in report["timeline"]) == 0  # drained to zero first
    requests = report["requests"]
    assert requests["lost"] == 0
    assert requests["old_during_overlap"] == 0 and requests["old_after"] == 0
    assert requests["new_during_overlap"] + requests["new_after"] >= 1


@pytest.mark.parametrize(("image", "kind", "timeout_s"), [
    (CRASHING, "initializing", "25"),
    (WRONG_SHA, "sha_mismatch", "90"),  # long enough for the tiny model to load
    (OLD_CODE, "old_code", "60"),  # the guide's failure: new image, old code; gives up early
])
def test_rollout_that_cannot_finish_times_out_naming_workers_then_rollback(
    old_pod, tmp_path, capsys, image, kind, timeout_s
):
    out = tmp_path / "rollout"
    expected = "c0ffee0" if image == CRASHING else HEAD
    code = rollout_main([image, *_argv(old_pod, out, "--timeout", timeout_s, "--no-verify",
                                       "--expected-git-sha", expected)], env=_env(old_pod))
    err = capsys.readouterr().err
    assert code == 1
    assert "RolloutTimedOut" in err and "honora-tts rollback" in err
    report = _report(out, "rollout")
    assert report["outcome"] == "timed_out"
    named = report["timeline"][-1]["kinds"]
    assert named and set(named.values()) == {kind}
    for worker_id in named:
        assert worker_id in err

    code = rollback_main(_argv(old_pod, out, "--timeout", "60"), env=_env(old_pod))
    assert code == 0, capsys.readouterr().err[-2000:]
    endpoint, workers = _platform(old_pod)
    assert endpoint.image == OLD
    assert workers.workers and all(w.image == OLD and not w.is_stale for w in workers.workers)
    back = _report(out, "rollback")
    assert back["outcome"] == "done" and back["image"] == OLD and back["previous_image"] == image
