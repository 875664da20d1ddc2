"""Roll an image out to an endpoint and watch until every worker runs the new build; roll back.

:func:`rollout`:

1. refuses a malformed reference, ``:latest``, a tag already in the release history, and a
   rollout it could not check (no expected git sha); warns when the working tree is dirty;
2. reads the endpoint and records the image it replaces (``{endpoint}.rollback.json`` in the
   output folder, for :func:`rollback`);
3. changes the image (``PATCH /serverless/{id}``); ``strict``: first scales the workers to zero,
   waits until none is left, then changes the image and restores the bounds, so no request is
   answered by an old worker once the image has changed;
4. watches (progress bar) until the platform's view and the census agree (:mod:`.watch`);
   on timeout raises :class:`~.errors.RolloutTimedOut` naming the workers and the fix;
5. runs the deploy verification (a callable, e.g. :func:`notebook_verification`);
6. writes the report (:mod:`.report`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honora_tts.client import HonoraClientError
from honora_tts.client.management import ManagementClient
from honora_tts.client.management_models import Endpoint, ReleaseHistory
from honora_tts.image_reference import ImageReference, parse_image_reference
from honora_tts.protocol import HANDLER_VERSION
from honora_tts.rollout.errors import RolloutRefused, RolloutTimedOut
from honora_tts.rollout.report import RolloutRecord, write_report
from honora_tts.rollout.repository import REPO_ROOT, resolve_commit, uncommitted_changes
from honora_tts.rollout.watch import FIXES, READY_STATUSES, Assessment, Target, assess

if TYPE_CHECKING:
    from honora_tts.client import EndpointClient
    from honora_tts.rollout.traffic import SteadyLoad

DEFAULT_OUT = Path("artifacts/rollout")
#: Looks in a row with every worker on the new image answering wrong code before giving up.
HOPELESS_LOOKS = 3
#: (expected git sha or None) -> the verification summary (``passed``, ``headline``, ...).
Verification = Callable[[str | None], dict[str, Any]]


@dataclass
class WatchOptions:
    """How a rollout waits and checks. ``probes`` health jobs per census round (default: two
    per ready worker); ``settle_s``: after a strict drain, time for answers already given to
    reach their clients before the image changes; ``traffic_warmup_s``: how long a steady load
    runs against the old build before the image changes."""

    strict: bool = False
    timeout_s: float = 900.0
    poll_s: float = 2.0
    probes: int | None = None
    probe_deadline_s: float = 30.0
    drain_timeout_s: float | None = None
    settle_s: float = 1.0
    traffic_warmup_s: float = 3.0
    min_handler_version: int = HANDLER_VERSION
    progress: bool = True


@dataclass
class RolloutResult:
    """A finished rollout: its record, report files, and the verification's verdict."""

    record: RolloutRecord
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def verified(self) -> bool | None:
        if self.record.verification is None:
            return None
        return bool(self.record.verification.get("passed"))

    @property
    def ok(self) -> bool:
        return self.record.outcome == "done" and self.verified is not False


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def rollback_record_path(out_root: Path, endpoint_id: str) -> Path:
    return out_root / f"{endpoint_id}.rollback.json"


def expected_sha_for(reference: ImageReference, given: str | None, repo: Path) -> str:
    """The git sha every worker must report: ``given``, else the commit the tag names in
    ``repo``; refuses when neither exists."""
    if given is not None and given.strip():
        return given.strip()
    commit = resolve_commit(reference.tag, repo)
    if commit is None:
        raise RolloutRefused(
            f"tag {reference.tag!r} is not a commit of this repository, so the git sha the "
            "workers must report is unknown: pass --expected-git-sha SHA (the commit the image "
            "was built from), or tag images with the commit (`honora-tts build`)"
        )
    return commit


def _tag(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def refuse_reused_tag(reference: ImageReference, endpoint: Endpoint,
                      history: ReleaseHistory) -> None:
    """Refuse a tag the endpoint runs or ran before: a reused tag may be served from a cache,
    and a rollout to it could not be told apart from the old build."""
    if endpoint.image == str(reference):
        raise RolloutRefused(
            f"endpoint {endpoint.id} already runs {reference}: nothing to roll out. To restart "
            "its workers on a rebuilt image, build it under a new tag"
        )
    for image in [*history.images(), *([endpoint.image] if endpoint.image else [])]:
        if _tag(image) == reference.tag:
            raise RolloutRefused(
                f"tag {reference.tag!r} was already released on endpoint {endpoint.id} "
                f"({image}); a reused tag may be served from RunPod's cache. Build under a new "
                "tag (`honora-tts build` tags with the commit) and roll that out"
            )


class _Watcher:
    """The watch loop shared by rollout and rollback."""

    def __init__(self, management: ManagementClient, jobs: EndpointClient, endpoint_id: str,
                 record: RolloutRecord, options: WatchOptions,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.management = management
        self.jobs = jobs
        self.endpoint_id = endpoint_id
        self.record = record
        self.options = options
        self.sleep = sleep

    def look(self, target: Target, *, census: bool = True) -> Assessment:
        platform = self.management.workers(self.endpoint_id)
        releases = self.management.releases(self.endpoint_id)
        ready = [w for w in platform.workers if w.status in READY_STATUSES]
        # With no worker at all (an endpoint that scales to zero), one probe wakes one.
        if census and (ready or not platform.workers):
            probes = (self.options.probes or max(2, 2 * len(ready))) if ready else 1
            result = self.jobs.census(
                probes, min_handler_version=target.min_handler_version,
                deadline_s=self.options.probe_deadline_s, include_endpoint_health=False,
            )
            self.record.ledger.add(result)
        since = self.record.image_changed_at or self.record.started_at
        assessment = assess(platform, releases, self.record.ledger, target, since=since)
        self.record.samples.append(assessment)
        return assessment

    def drain(self, target: Target) -> None:
        """Wait until the platform lists no worker (strict rollout)."""
        limit = self.options.drain_timeout_s or self.options.timeout_s
        deadline = time.monotonic() + limit
        bar = _bar(self.options, "draining to zero workers", None)
        try:
            while True:
                assessment = self.look(target, census=False)
                bar.set_postfix_str(f"{assessment.listed} worker(s) left")
                if assessment.listed == 0:
                    return
                if time.monotonic() > deadline:
                    workers = {w: "still running an old job" for w in assessment.problems}
                    raise RolloutTimedOut(
                        f"strict rollout: {assessment.listed} worker(s) still listed after "
                        f"{limit:g} s of draining ({', '.join(workers)}). Their jobs may be "
                        "long: raise --timeout, or roll out without --strict",
                        workers=workers,
                    )
                self.sleep(self.options.poll_s)
        finally:
            bar.close()

    def converge(self, target: Target, expected_workers: int | None) -> Assessment:
        """Look until done; raise at the deadline, or earlier once every worker is ready on
        the new image and answers with the wrong code for ``HOPELESS_LOOKS`` looks in a row
        (a running worker's code never changes: waiting cannot help)."""
        deadline = time.monotonic() + self.options.timeout_s
        hopeless = 0
        bar = _bar(self.options, f"rolling out {target.image}", expected_workers)
        try:
            while True:
                assessment = self.look(target)
                bar.total = max(assessment.listed, expected_workers or 0) or None
                bar.n = len(assessment.confirmed)
                bar.set_postfix_str(
                    f"platform {assessment.on_new_image}/{assessment.listed} on new image, "
                    f"census confirms {len(assessment.confirmed)}"
                )
                bar.refresh()
                if assessment.done:
                    return assessment
                wrong = set(assessment.kinds.values()) <= {"old_code", "sha_mismatch"}
                hopeless = hopeless + 1 if assessment.problems and wrong and not (
                    assessment.rollout_in_progress) else 0
                if hopeless >= HOPELESS_LOOKS or time.monotonic() > deadline:
                    raise _timed_out(target, assessment, self.endpoint_id, self.record,
                                     self.options.timeout_s, gave_up=hopeless >= HOPELESS_LOOKS)
                self.sleep(self.options.poll_s)
        finally:
            bar.close()


def _bar(options: WatchOptions, description: str, total: int | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="worker", disable=not options.progress,
                file=sys.stderr, leave=True)


def _timed_out(target: Target, assessment: Assessment, endpoint_id: str,
               record: RolloutRecord, timeout_s: float, gave_up: bool = False) -> RolloutTimedOut:
    workers = dict(assessment.problems)
    if not assessment.listed:
        workers = {"(none listed)": "the platform lists no worker: is workers.max 0?"}
    named = "; ".join(f"{w}: {text}" for w, text in workers.items())
    fixes = sorted({FIXES[k] for k in assessment.kinds.values() if k in FIXES})
    back = (f"`honora-tts rollback --endpoint-id {endpoint_id}` restores "
            f"{record.previous_image}" if record.previous_image else "roll back by hand")
    why = (f"cannot finish (every worker on it answers with the wrong code, {HOPELESS_LOOKS} "
           "looks in a row)" if gave_up else f"did not finish in {timeout_s:g} s")
    return RolloutTimedOut(
        f"{record.kind} to {target.image} {why}: "
        f"{len(assessment.confirmed)} of {assessment.listed} worker(s) confirmed. Not on the "
        f"new build: {named}. Fix: {back}; then " + ("; ".join(fixes) or "check the workers"),
        workers=workers,
    )


def _release_facts(history: ReleaseHistory) -> dict[str, Any] | None:
    latest = history.latest()
    if latest is None:
        return None
    return {"id": latest.id, "version": latest.version, "source": latest.source,
            "created_at": latest.created_at,
            "diff": [d.model_dump() for d in latest.diff]}


def _finish(record: RolloutRecord, out_dir: Path, traffic: SteadyLoad | None,
            outcome: str, error: str | None = None) -> dict[str, Path]:
    record.finished_at = record.finished_at or time.time()
    record.outcome = outcome
    record.error = error
    if traffic is not None:
        record.requests = traffic.stop()
    return write_report(record, out_dir)


def rollout(
    management: ManagementClient,
    jobs: EndpointClient,
    endpoint_id: str,
    image: str,
    *,
    expected_git_sha: str | None = None,
    options: WatchOptions | None = None,
    verification: Verification | None = None,
    traffic: SteadyLoad | None = None,
    out_root: Path = DEFAULT_OUT,
    repo: Path = REPO_ROOT,
    warn: Callable[[str], None] = _warn,
) -> RolloutResult:
    """Roll ``image`` out to ``endpoint_id`` (see the module docstring). ``traffic``, when
    given, is started before the image changes and stopped at the end; the report counts what
    old and new workers answered. Raises :class:`RolloutTimedOut` (report written) when the
    workers do not converge, and the management client's errors for a bad endpoint or key."""
    options = options or WatchOptions()
    reference = parse_image_reference(image)
    expected = expected_sha_for(reference, expected_git_sha, repo)
    dirty = uncommitted_changes(repo)
    warnings: list[str] = []
    if dirty:
        warnings.append(
            f"the working tree has {len(dirty)} uncommitted change(s) (e.g. {dirty[0]}): an "
            f"image built from commit {expected[:12]} does not contain them"
        )
        warn(warnings[-1])
    endpoint = management.endpoint(endpoint_id)
    history = management.releases(endpoint_id)
    refuse_reused_tag(reference, endpoint, history)
    out_root.mkdir(parents=True, exist_ok=True)
    rollback_record_path(out_root, endpoint_id).write_text(json.dumps({
        "endpoint_id": endpoint_id, "previous_image": endpoint.image, "image": str(reference),
        "recorded_at": time.time(),
    }, indent=2), encoding="utf-8")
    record = RolloutRecord(
        kind="rollout", endpoint_id=endpoint_id, image=str(reference),
        previous_image=endpoint.image, expected_git_sha=expected, strict=options.strict,
        started_at=time.time(), endpoint_version_before=history.endpoint_version,
        warnings=warnings,
    )
    target = Target(str(reference), expected, options.min_handler_version, True)
    out_dir = out_root / f"{endpoint_id}-rollout-{_stamp()}"
    return _change_and_watch(management, jobs, endpoint, target, record, options, out_dir,
                             traffic, verification)


def _change_and_watch(
    management: ManagementClient,
    jobs: EndpointClient,
    endpoint: Endpoint,
    target: Target,
    record: RolloutRecord,
    options: WatchOptions,
    out_dir: Path,
    traffic: SteadyLoad | None,
    verification: Verification | None,
) -> RolloutResult:
    watcher = _Watcher(management, jobs, endpoint.id, record, options)
    bounds = endpoint.workers
    try:
        watcher.look(target, census=False)  # the timeline starts from the fleet as it was
        if traffic is not None:
            traffic.start()
            watcher.sleep(options.traffic_warmup_s)
            watcher.look(target, census=False)
        if options.strict:
            management.update_endpoint(endpoint.id, workers_min=0, workers_max=0)
            try:
                watcher.drain(target)
            except RolloutTimedOut:
                management.update_endpoint(endpoint.id, workers_min=bounds.min,
                                           workers_max=bounds.max)
                raise
            watcher.sleep(options.settle_s)
            record.image_changed_at = time.time()
            try:
                management.update_endpoint(endpoint.id, image=target.image,
                                           workers_min=bounds.min, workers_max=bounds.max)
            except HonoraClientError:
                management.update_endpoint(endpoint.id, workers_min=bounds.min,
                                           workers_max=bounds.max)
                raise
        else:
            record.image_changed_at = time.time()
            management.update_endpoint(endpoint.id, image=target.image)
        history = management.releases(endpoint.id)
        record.release = _release_facts(history)
        record.endpoint_version_after = history.endpoint_version
        watcher.converge(target, bounds.max or None)
        record.finished_at = time.time()
    except RolloutTimedOut as exc:
        files = _finish(record, out_dir, traffic, "timed_out", str(exc))
        exc.args = (f"{exc.args[0]} (report: {files['json']})",)
        raise
    except BaseException as exc:
        _finish(record, out_dir, traffic, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if traffic is not None:
        record.requests = traffic.stop()
        traffic = None
    if verification is not None:
        record.verification = verification(target.expected_git_sha)
    files = _finish(record, out_dir, None, "done")
    return RolloutResult(record, out_dir, files)


def rollback(
    management: ManagementClient,
    jobs: EndpointClient,
    endpoint_id: str,
    *,
    to_image: str | None = None,
    expected_git_sha: str | None = None,
    options: WatchOptions | None = None,
    verification: Verification | None = None,
    traffic: SteadyLoad | None = None,
    out_root: Path = DEFAULT_OUT,
    repo: Path = REPO_ROOT,
) -> RolloutResult:
    """Put back the image the last rollout replaced (``{endpoint}.rollback.json`` under
    ``out_root``, else the release history), with the same watch. Its workers must report
    ``expected_git_sha`` when given (default: the tag's commit when it is one of this
    repository), else any answer from every worker is accepted."""
    options = options or WatchOptions()
    endpoint = management.endpoint(endpoint_id)
    history = management.releases(endpoint_id)
    previous = to_image or _previous_image(out_root, endpoint, history)
    reference = parse_image_reference(previous)
    if endpoint.image == str(reference):
        raise RolloutRefused(f"endpoint {endpoint_id} already runs {reference}: nothing to roll "
                             "back")
    expected = (expected_git_sha or "").strip() or resolve_commit(reference.tag, repo)
    out_root.mkdir(parents=True, exist_ok=True)
    rollback_record_path(out_root, endpoint_id).write_text(json.dumps({
        "endpoint_id": endpoint_id, "previous_image": endpoint.image, "image": str(reference),
        "recorded_at": time.time(),
    }, indent=2), encoding="utf-8")
    record = RolloutRecord(
        kind="rollback", endpoint_id=endpoint_id, image=str(reference),
        previous_image=endpoint.image, expected_git_sha=expected, strict=options.strict,
        started_at=time.time(), endpoint_version_before=history.endpoint_version,
    )
    minimum = options.min_handler_version if expected else 0
    target = Target(str(reference), expected, minimum, require_current_handler=bool(expected))
    out_dir = out_root / f"{endpoint_id}-rollback-{_stamp()}"
    return _change_and_watch(management, jobs, endpoint, target, record, options, out_dir,
                             traffic, verification)


def _previous_image(out_root: Path, endpoint: Endpoint, history: ReleaseHistory) -> str:
    path = rollback_record_path(out_root, endpoint.id)
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            saved = {}
        if saved.get("image") == endpoint.image and saved.get("previous_image"):
            return str(saved["previous_image"])
    for release in history.releases:
        change = release.image_change()
        if change is not None and change.new == endpoint.image and isinstance(change.old, str) \
                and change.old:
            return change.old
    raise RolloutRefused(
        f"no image to roll back to: {path} does not record what {endpoint.image} replaced and "
        "the release history names no earlier image. Pass --to-image NAME:TAG"
    )


def notebook_verification(
    endpoint_id: str,
    job_api_base: str,
    api_key: str,
    out_dir: Path,
    *,
    probes: int = 4,
    parallel: int = 4,
    max_new_tokens: int = 0,
    execution_timeout: int = 600,
    log_output: bool = False,
    management_api_key: str = "",
) -> Verification:
    """Deploy verification (notebook 01, as ``honora-tts verify`` runs it) as a rollout step."""

    def verify(expected_git_sha: str | None) -> dict[str, Any]:
        from honora_tts.qa.verify_command import run_verification

        parameters = {
            "endpoint": endpoint_id, "api_base": job_api_base,
            "expected_git_sha": expected_git_sha or "", "probes": probes,
            "parallel": parallel, "max_new_tokens": max_new_tokens,
        }
        summary, failure = run_verification(
            parameters, out_dir, env={"RUNPOD_API_KEY": api_key,
                                      "RUNPOD_MANAGEMENT_API_KEY": management_api_key or None},
            execution_timeout=execution_timeout, log_output=log_output,
        )
        if summary is None:
            return {"passed": False, "headline": f"VERDICT: FAIL: the verification notebook "
                    f"did not finish: {failure}", "out": str(out_dir)}
        return {"passed": bool(summary.get("passed")), "headline": summary.get("headline"),
                "out": str(out_dir)}

    return verify


def verification_for(client: EndpointClient, out_dir: Path, **options: Any) -> Verification:
    """:func:`notebook_verification` for the endpoint a job client talks to (same key)."""
    return notebook_verification(client.endpoint_id, client.api_base, client.api_key,
                                 out_dir, management_api_key=client.management_api_key,
                                 **options)
