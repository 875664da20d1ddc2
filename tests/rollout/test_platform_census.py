"""The census counted against the platform's list of workers (RunPod-shaped ``/workers``): a ready
worker that never answers is named, by ``census_with_platform`` and by notebook 01's
``census_check``."""

from __future__ import annotations

import json
from pathlib import Path

from honora_tts.client.census_report import Census, CensusProbe
from honora_tts.client.management_models import WorkerList
from honora_tts.client.platform import census_with_platform
from honora_tts.protocol import HANDLER_VERSION, VersionRecord
from honora_tts.qa import verification as v

FIXTURES = Path(__file__).with_name("runpod_api")
SHA = "9c0d4e5f6a7b0011223344556677889900aabbcc"


def platform() -> WorkerList:
    return WorkerList.model_validate(
        json.loads((FIXTURES / "list_workers_mid_rollout.json").read_text()))


def answer(worker: str) -> CensusProbe:
    version = VersionRecord(handler_version=HANDLER_VERSION, package_version="0.1", git_sha=SHA,
                            build_time="2026-06-01T11:00:00Z", python_version="3.11",
                            worker_id=worker, model_name="xtts_v2")
    return CensusProbe(request_id=f"req-{worker}", job_id="j", worker_id=worker, version=version)


class ScriptedCensus:
    """Stands in for the job API: each census round answers from the next list of workers."""

    def __init__(self, *rounds: list[str]) -> None:
        self.rounds = list(rounds)
        self.calls = 0

    def census(self, probes: int, **_: object) -> Census:
        workers = self.rounds[min(self.calls, len(self.rounds) - 1)]
        self.calls += 1
        return Census(probes=[answer(w) for w in workers], groups=[],
                      min_handler_version=HANDLER_VERSION)


def test_rounds_continue_until_every_ready_worker_answered():
    client = ScriptedCensus(["w-new-ok"], ["w-old-busy"], ["w-new-silent"])
    result = census_with_platform(client, 2, platform=platform(), rounds=3)  # type: ignore[arg-type]
    assert client.calls == 3 and result.unheard == [] and result.not_ready == ["w-new-loading"]


def test_a_ready_worker_that_never_answers_is_named():
    client = ScriptedCensus(["w-new-ok", "w-old-busy"])
    result = census_with_platform(client, 2, platform=platform(), rounds=2)  # type: ignore[arg-type]
    assert result.unheard == ["w-new-silent"] and not result.ok
    assert "[never answered] w-new-silent IDLE" in result.summary()
    rows = v.census_rows(result.census, expected_git_sha=SHA)
    check = v.census_check(rows, result.census, platform())
    assert check.status == v.Status.FAIL and check.worker_ids == ("w-new-silent",)
    assert "never answered" in check.summary


def test_without_the_platform_one_round_and_no_roll_call():
    client = ScriptedCensus(["w-new-ok"])
    result = census_with_platform(client, 2, platform=None)  # type: ignore[arg-type]
    assert client.calls == 1 and result.unheard == []
    assert "management API not reachable" in result.summary()
