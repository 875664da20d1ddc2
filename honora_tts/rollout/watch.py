"""Whether a rollout is done: the platform's view and honora's census must agree.

The platform (``GET /serverless/{id}/workers``) says which image and endpoint version each worker
runs and whether it is stale; the census (health jobs) says which code actually answers: each
worker's self-reported git sha, handler version and model. A worker is *confirmed* when the
platform lists it on the new image, not stale and ready, and the census heard it report the
expected git sha (and a current handler). Everything else is named with what is wrong:

- ``initializing``: listed but not ready yet (a worker that stays so may crash at start);
- ``stale``: the platform says it runs an older version or another image;
- ``unheard``: the platform lists it ready, but no census answer ever came from it;
- ``old_code``: the platform says new image, the census hears old code (the deployment guide's
  failure: a floating or reused tag served from a cache, or a build without the new commit);
- ``sha_mismatch``: it answers with another git sha than the expected one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from honora_tts.client.census_report import Census, CensusProbe
from honora_tts.client.management_models import ReleaseHistory, WorkerList
from honora_tts.protocol import HANDLER_VERSION
from honora_tts.qa.verification import shas_match

READY_STATUSES = frozenset({"IDLE", "RUNNING"})


@dataclass(frozen=True)
class CensusAnswer:
    """The last thing one worker told the census about itself."""

    worker_id: str
    git_sha: str | None
    handler_version: int | None
    model_name: str | None
    stale_reason: str | None
    seen_at: float

    def describe(self) -> str:
        if self.stale_reason:
            return f"old code ({self.stale_reason})"
        return (f"git {(self.git_sha or '?')[:12]}, handler v{self.handler_version}, "
                f"model {self.model_name or '?'}")


class CensusLedger:
    """Every census answer of a watch, latest per worker."""

    def __init__(self) -> None:
        self.answers: dict[str, CensusAnswer] = {}
        self.probes = 0
        self.unanswered = 0

    def add(self, census: Census, *, at: float | None = None) -> None:
        now = time.time() if at is None else at
        for probe in census.probes:
            self.probes += 1
            answer = answer_of(probe, now)
            if answer is None:
                self.unanswered += 1
            else:
                self.answers[answer.worker_id] = answer


def answer_of(probe: CensusProbe, seen_at: float) -> CensusAnswer | None:
    """A census probe as one worker's answer; None when nobody (identifiable) answered."""
    version = probe.version
    worker = probe.worker_id or (version.worker_id if version else None)
    if not probe.answered or not worker:
        return None
    return CensusAnswer(
        worker_id=worker, git_sha=version.git_sha if version else None,
        handler_version=version.handler_version if version else None,
        model_name=version.model_name if version else None,
        stale_reason=probe.stale_reason, seen_at=seen_at,
    )


@dataclass(frozen=True)
class Target:
    """What every worker must run when the rollout is done. ``expected_git_sha`` None: any code
    that answers is accepted (a rollback to an image of unknown code)."""

    image: str
    expected_git_sha: str | None
    min_handler_version: int = HANDLER_VERSION
    require_current_handler: bool = True


@dataclass
class Assessment:
    """One look at the endpoint during a watch."""

    at: float
    listed: int
    on_new_image: int
    confirmed: list[str]
    problems: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    rollout_in_progress: bool = False
    endpoint_version: int | None = None
    percent_on_latest: int | None = None

    @property
    def done(self) -> bool:
        return self.listed > 0 and not self.problems and not self.rollout_in_progress

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at, "listed": self.listed, "on_new_image": self.on_new_image,
            "confirmed": list(self.confirmed), "problems": dict(self.problems),
            "kinds": dict(self.kinds), "rollout_in_progress": self.rollout_in_progress,
            "endpoint_version": self.endpoint_version,
            "percent_on_latest": self.percent_on_latest,
        }


def assess(
    platform: WorkerList,
    releases: ReleaseHistory | None,
    ledger: CensusLedger,
    target: Target,
    *,
    since: float = 0.0,
    at: float | None = None,
) -> Assessment:
    """Compare the platform's workers with the census answers heard since ``since``."""
    now = time.time() if at is None else at
    confirmed: list[str] = []
    problems: dict[str, str] = {}
    kinds: dict[str, str] = {}
    on_new = 0

    def flag(worker_id: str, kind: str, text: str) -> None:
        kinds[worker_id] = kind
        problems[worker_id] = text

    for worker in platform.workers:
        new_image = worker.image == target.image and not worker.is_stale
        on_new += new_image
        answer = ledger.answers.get(worker.id)
        if answer is not None and answer.seen_at < since:
            answer = None
        if not new_image:
            flag(worker.id, "stale",
                 f"the platform lists it on {worker.image or 'an unknown image'} (version "
                 f"{worker.version}, stale={worker.is_stale}): not yet replaced")
            continue
        if worker.status not in READY_STATUSES:
            flag(worker.id, "initializing",
                 f"{worker.status} on {worker.image}: not ready (a worker that stays so may "
                 "crash at start: read its logs)")
            continue
        if answer is None:
            flag(worker.id, "unheard",
                 f"the platform lists it {worker.status} on {worker.image}, but it never "
                 "answered a census health job")
            continue
        wrong = _wrong_code(answer, target)
        if wrong is not None:
            kind, text = wrong
            flag(worker.id, kind,
                 f"reports {worker.image} to the platform but {answer.describe()} to the "
                 f"census: {text}")
            continue
        confirmed.append(worker.id)
    rollout = releases.rollout if releases is not None else None
    return Assessment(
        at=now, listed=len(platform.workers), on_new_image=on_new, confirmed=confirmed,
        problems=problems, kinds=kinds,
        rollout_in_progress=bool(rollout and rollout.in_progress),
        endpoint_version=platform.endpoint_version,
        percent_on_latest=rollout.percent_on_latest if rollout else None,
    )


def _wrong_code(answer: CensusAnswer, target: Target) -> tuple[str, str] | None:
    if target.require_current_handler:
        if answer.stale_reason:
            return "old_code", "old code behind the new image"
        if answer.handler_version is not None and (
            answer.handler_version < target.min_handler_version
        ):
            return "old_code", f"handler below v{target.min_handler_version}"
    if target.expected_git_sha and not answer.stale_reason and not shas_match(
        answer.git_sha or "", target.expected_git_sha
    ):
        return "sha_mismatch", f"expected git {target.expected_git_sha[:12]}"
    return None


FIXES = {
    "initializing": "the new image does not start: read the worker's logs (RunPod console > "
    "the endpoint > Workers > Logs); a crash at import or model load keeps it here",
    "stale": "RunPod replaces a busy stale worker after its current job: wait longer "
    "(--timeout), or roll out with --strict",
    "unheard": "the worker takes no jobs: check its logs; raise --probes",
    "old_code": "the image behind the tag holds old code: rebuild it from the commit "
    "(`honora-tts build`), push it under a new tag and roll that out",
    "sha_mismatch": "the image was built from another commit (or without --build-arg "
    "GIT_SHA): rebuild with `honora-tts build`, push, roll out the new tag",
}
