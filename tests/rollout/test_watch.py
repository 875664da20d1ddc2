"""The rollout's judgement: platform view (RunPod-shaped ``/workers`` and ``/releases``) against
census answers; image references and refusals; the report's request counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honora_tts.client.census_report import Census, CensusProbe
from honora_tts.client.management_models import Endpoint, ReleaseHistory, WorkerList
from honora_tts.image_reference import InvalidImageReference, parse_image_reference
from honora_tts.protocol import HANDLER_VERSION, VersionRecord
from honora_tts.rollout.engine import expected_sha_for, refuse_reused_tag
from honora_tts.rollout.errors import RolloutRefused
from honora_tts.rollout.report import RolloutRecord, write_report
from honora_tts.rollout.repository import head_commit
from honora_tts.rollout.traffic import AnsweredRequest
from honora_tts.rollout.watch import CensusLedger, Target, assess

FIXTURES = Path(__file__).with_name("runpod_api")
NEW = "registry.example/honora-tts-worker:9c0d4e5f6a7b"
NEW_SHA = "9c0d4e5f6a7b0011223344556677889900aabbcc"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def version(sha: str, worker: str) -> VersionRecord:
    return VersionRecord(handler_version=HANDLER_VERSION, package_version="0.1", git_sha=sha,
                         build_time="2026-06-01T11:00:00Z", python_version="3.11",
                         worker_id=worker, model_name="xtts_v2")


def census(*probes: CensusProbe) -> Census:
    return Census(probes=list(probes), groups=[], min_handler_version=HANDLER_VERSION)


def probe(worker: str, sha: str | None = None, stale: str | None = None) -> CensusProbe:
    return CensusProbe(request_id=f"req-{worker}", job_id="j", worker_id=worker,
                       version=version(sha, worker) if sha else None, stale_reason=stale)


def test_mid_rollout_names_every_worker_not_confirmed():
    platform = WorkerList.model_validate(load("list_workers_mid_rollout.json"))
    releases = ReleaseHistory.model_validate(load("list_releases_mid_rollout.json"))
    ledger = CensusLedger()
    ledger.add(census(probe("w-new-ok", NEW_SHA[:12]), probe("w-old-busy", stale="No sections"),
                      CensusProbe("req-x", None, None, None, error="JobTimedOut: ...")), at=100)
    result = assess(platform, releases, ledger, Target(NEW, NEW_SHA), since=50, at=101)
    assert result.confirmed == ["w-new-ok"]
    assert result.kinds == {"w-old-busy": "stale", "w-new-silent": "unheard",
                            "w-new-loading": "initializing"}
    assert "never answered a census health job" in result.problems["w-new-silent"]
    assert result.on_new_image == 3 and result.listed == 4 and not result.done
    assert ledger.unanswered == 1


def test_new_image_with_old_code_is_named_and_answers_before_the_change_do_not_count():
    platform = WorkerList.model_validate(load("list_workers_mid_rollout.json"))
    platform = WorkerList.model_validate({**platform.model_dump(by_alias=True), "workers": [
        w.model_dump(by_alias=True) for w in platform.workers if w.id.startswith("w-new-")
        and w.status == "IDLE"]})
    ledger = CensusLedger()
    ledger.add(census(probe("w-new-ok", "3f9a1c2b7d10")), at=100)  # old commit, new tag
    ledger.add(census(probe("w-new-silent", NEW_SHA)), at=10)  # heard before the change only
    result = assess(platform, None, ledger, Target(NEW, NEW_SHA), since=50, at=101)
    assert result.kinds == {"w-new-ok": "sha_mismatch", "w-new-silent": "unheard"}
    assert f"reports {NEW} to the platform but git 3f9a1c2b7d10" in result.problems["w-new-ok"]

    ledger.add(census(probe("w-new-ok", stale="No sections provided"),
                      probe("w-new-silent", NEW_SHA)), at=102)
    result = assess(platform, None, ledger, Target(NEW, NEW_SHA), since=50, at=103)
    assert result.kinds == {"w-new-ok": "old_code"}
    ledger.add(census(probe("w-new-ok", NEW_SHA)), at=104)
    assert assess(platform, None, ledger, Target(NEW, NEW_SHA), since=50, at=105).done


@pytest.mark.parametrize(("text", "words"), [
    ("honora-tts:latest", "refusing :latest"),
    ("honora-tts", "has no tag"),
    ("Honora TTS:v1", "not an image reference"),
    ("reg.io/app@sha256:" + "a" * 64, "not a digest"),
    ("reg.io:5000/team/app:", "not an image reference"),
])
def test_malformed_and_floating_references_are_refused(text, words):
    with pytest.raises(InvalidImageReference, match=words):
        parse_image_reference(text)


def test_good_references_parse():
    ref = parse_image_reference("reg.io:5000/team/honora-tts-worker:9c0d4e5f6a7b")
    assert (ref.name, ref.tag) == ("reg.io:5000/team/honora-tts-worker", "9c0d4e5f6a7b")


def test_reused_tags_are_refused_and_the_expected_sha_comes_from_the_commit(repo_root):
    history = ReleaseHistory.model_validate(load("list_releases_mid_rollout.json"))
    endpoint = Endpoint.model_validate({**load("get_endpoint.json"), "image": NEW})
    for reused in (NEW, "other/registry:3f9a1c2b7d10"):
        with pytest.raises(RolloutRefused):
            refuse_reused_tag(parse_image_reference(reused), endpoint, history)
    refuse_reused_tag(parse_image_reference("registry.example/honora-tts-worker:0a1b2c3d4e5f"),
                      endpoint, history)
    head = head_commit(repo_root)
    assert head is not None
    assert expected_sha_for(parse_image_reference(f"x/y:{head[:12]}"), None, repo_root) == head
    assert expected_sha_for(parse_image_reference("x/y:v1-batch"), "abc1234", repo_root) == (
        "abc1234")
    with pytest.raises(RolloutRefused, match="--expected-git-sha"):
        expected_sha_for(parse_image_reference("x/y:v1-batch"), None, repo_root)


def test_report_counts_old_and_new_answers_around_the_overlap(tmp_path):
    record = RolloutRecord(kind="rollout", endpoint_id="ep1", image=NEW, previous_image="a:b",
                           expected_git_sha=NEW_SHA, strict=False, started_at=0.0,
                           image_changed_at=10.0, finished_at=20.0)

    def answered(at: float, sha: str | None, outcome: str = "COMPLETED") -> AnsweredRequest:
        return AnsweredRequest(f"r{at}", at - 1, at, outcome, worker_id="w", git_sha=sha)

    record.requests = [answered(5, None, "StaleWorkerError"), answered(12, None,
                       "StaleWorkerError"), answered(15, NEW_SHA[:12]), answered(25, NEW_SHA),
                       answered(26, None, "JobTimedOut")]
    counts = record.request_counts()
    assert (counts["old_before_change"], counts["old_during_overlap"],
            counts["new_during_overlap"], counts["new_after"], counts["old_after"]) == (
        1, 1, 1, 1, 1)
    assert counts["lost"] == 1
    files = write_report(record, tmp_path)
    assert json.loads(files["json"].read_text())["requests"]["total"] == 5
    assert files["plot"].stat().st_size > 1000
