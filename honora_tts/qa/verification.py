"""Deploy verification: which builds the workers run, whether they speak, whether they hold up
under parallel load, and one verdict.

Everything notebook 01 decides is decided here, from plain data (a census, check results,
per-request records), so it is testable without an endpoint:

- :func:`census_rows` turns a :class:`~honora_tts.client.Census` into one row per worker with
  flags: old code (stale), handler version below the minimum, no version record, unknown git
  sha, a git sha other than the expected one, mixed versions across workers; and warnings
  (unknown build time, a random-weights model) that do not fail the run.
- :func:`synthesis_check`, :func:`stress_check` and :func:`census_check` grade each step.
- :func:`troubleshoot` maps what actually failed to its known cause and fix.
- :func:`decide` gives the verdict (PASS or FAIL, reasons, stale workers by name) and
  :func:`summary` the JSON written at the end of the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from honora_tts.envelope import STALE_SIGNATURE
from honora_tts.protocol import HANDLER_VERSION, VersionRecord
from honora_tts.qa.artifacts import json_ready, write_json

if TYPE_CHECKING:
    from honora_tts.client import Census, EndpointClient, SynthesisResult
    from honora_tts.client.management_models import WorkerList

UNKNOWN = "unknown"
UNKNOWN_WORKER = "(worker id not reported)"


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


class Flag(StrEnum):
    """What can be wrong with a worker's build."""

    STALE = "stale"
    OLD_HANDLER = "old_handler"
    NO_VERSION = "no_version"
    UNKNOWN_SHA = "unknown_sha"
    SHA_MISMATCH = "sha_mismatch"
    MIXED_VERSIONS = "mixed_versions"


# -------------------------------------------------------------------------------- census


@dataclass(frozen=True)
class WorkerRow:
    """One worker as the census saw it."""

    worker_id: str
    probes: int
    handler_version: int | None
    git_sha: str
    build_time: str
    package_version: str | None
    torch_version: str | None
    cuda_version: str | None
    gpu_name: str | None
    device: str | None
    model_name: str | None
    streaming: bool | None
    stale_reason: str | None
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def build(self) -> tuple[Any, ...]:
        return (self.git_sha, self.build_time, self.handler_version, self.model_name)


def shas_match(actual: str, expected: str) -> bool:
    """True when ``expected`` (full or abbreviated, at least 7 characters) names ``actual``."""
    actual, expected = actual.strip().lower(), expected.strip().lower()
    if not actual or not expected or actual == UNKNOWN:
        return False
    shorter, longer = sorted((actual, expected), key=len)
    return len(shorter) >= 7 and longer.startswith(shorter)


def census_rows(census: Census, *, expected_git_sha: str = "",
                min_handler_version: int = HANDLER_VERSION) -> list[WorkerRow]:
    """One row per worker that answered, flagged. Probes whose worker did not say who it is are
    gathered in one row named :data:`UNKNOWN_WORKER`."""
    seen: dict[str, list[Any]] = {}
    for probe in census.probes:
        if not probe.answered:
            continue
        worker = probe.worker_id or (probe.version.worker_id if probe.version else None)
        seen.setdefault(worker or UNKNOWN_WORKER, []).append(probe)
    rows = [
        _worker_row(worker, probes, expected_git_sha, min_handler_version)
        for worker, probes in sorted(seen.items())
    ]
    return mark_mixed_versions(rows)


def _worker_row(worker: str, probes: list[Any], expected_git_sha: str,
                min_handler_version: int) -> WorkerRow:
    with_version = [p for p in probes if p.version is not None]
    version: VersionRecord | None = with_version[-1].version if with_version else None
    stale_reason = next((p.stale_reason for p in probes if p.stale_reason), None)
    return row_from_version(worker, version, probes=len(probes), stale_reason=stale_reason,
                            expected_git_sha=expected_git_sha,
                            min_handler_version=min_handler_version)


def row_from_version(worker: str, version: VersionRecord | None, *, probes: int = 1,
                     stale_reason: str | None = None, expected_git_sha: str = "",
                     min_handler_version: int = HANDLER_VERSION) -> WorkerRow:
    """A flagged row for one worker's version record (None: the worker sent none)."""
    flags: list[str] = []
    notes: list[str] = []
    warnings: list[str] = []
    if stale_reason:
        flags.append(Flag.STALE)
        notes.append(f"old code: answered with {stale_reason}")
    if version is None:
        flags.append(Flag.NO_VERSION)
        notes.append("sent no version record (builds before handler v2 did not)")
    else:
        if version.handler_version < min_handler_version:
            flags.append(Flag.OLD_HANDLER)
            notes.append(f"handler v{version.handler_version} < v{min_handler_version}")
        if version.git_sha.strip().lower() in ("", UNKNOWN):
            flags.append(Flag.UNKNOWN_SHA)
            notes.append("git sha unknown: image built without --build-arg GIT_SHA")
        elif expected_git_sha and not shas_match(version.git_sha, expected_git_sha):
            flags.append(Flag.SHA_MISMATCH)
            notes.append(f"git sha {version.git_sha[:12]} is not the expected "
                         f"{expected_git_sha[:12]}")
        if version.build_time.strip().lower() in ("", UNKNOWN):
            # A source checkout (localpod) has no build time; an image without one is flagged
            # through its git sha, which the same build arguments set.
            warnings.append("build time unknown (no --build-arg BUILD_TIME, or a source "
                            "checkout)")
        if is_random_weights_model(version.model_name):
            warnings.append(f"model {version.model_name}: random weights, the audio is noise")
    v = version
    return WorkerRow(
        worker_id=worker, probes=probes,
        handler_version=v.handler_version if v else None,
        git_sha=v.git_sha if v else UNKNOWN, build_time=v.build_time if v else UNKNOWN,
        package_version=v.package_version if v else None,
        torch_version=v.torch_version if v else None, cuda_version=v.cuda_version if v else None,
        gpu_name=v.gpu_name if v else None, device=v.device if v else None,
        model_name=v.model_name if v else None, streaming=v.streaming if v else None,
        stale_reason=stale_reason, flags=tuple(dict.fromkeys(flags)), notes=tuple(notes),
        warnings=tuple(warnings),
    )


def mark_mixed_versions(rows: Sequence[WorkerRow]) -> list[WorkerRow]:
    """When more than one build answers, flag the workers off the majority build (every worker
    when no build has a majority): they are what a half-rolled deployment left behind."""
    builds: dict[tuple[Any, ...], int] = {}
    for row in rows:
        builds[row.build] = builds.get(row.build, 0) + 1
    if len(builds) < 2:
        return list(rows)
    counts = sorted(builds.values(), reverse=True)
    majority = max(builds.items(), key=lambda item: item[1])[0] if counts[0] > counts[1] else None
    marked = []
    for row in rows:
        if row.build == majority:
            marked.append(row)
            continue
        note = f"mixed versions: {len(builds)} builds answer and this one is not the majority"
        marked.append(WorkerRow(**{**asdict(row), "flags": (*row.flags, Flag.MIXED_VERSIONS),
                                   "notes": (*row.notes, note)}))
    return marked


def builds_answering(rows: Sequence[WorkerRow]) -> int:
    """How many distinct builds (git sha, build time, handler, model) the workers run."""
    return len({row.build for row in rows})


#: Short names of the flags, for one-line summaries.
FLAG_LABELS = {
    Flag.STALE: "old code", Flag.OLD_HANDLER: "old handler", Flag.NO_VERSION: "no version",
    Flag.UNKNOWN_SHA: "unknown git sha", Flag.SHA_MISMATCH: "unexpected git sha",
    Flag.MIXED_VERSIONS: "off the majority build",
}


def census_table(rows: Sequence[WorkerRow]) -> pd.DataFrame:
    """The census as a table: one row per worker, the facts a person checks, and the flags."""
    return pd.DataFrame([
        {
            "worker": r.worker_id, "probes": r.probes,
            "handler": "-" if r.handler_version is None else f"v{r.handler_version}",
            "git sha": r.git_sha[:12], "build time": r.build_time,
            "package": r.package_version or "-", "torch": r.torch_version or "-",
            "CUDA": r.cuda_version or "-", "GPU": r.gpu_name or r.device or "-",
            "model": r.model_name or "-", "status": "OK" if r.ok else "FLAGGED",
            "flags": "; ".join(r.notes), "warnings": "; ".join(r.warnings),
        }
        for r in rows
    ], columns=["worker", "probes", "handler", "git sha", "build time", "package", "torch",
                "CUDA", "GPU", "model", "status", "flags", "warnings"])


def styled_census(table: pd.DataFrame) -> Any:
    """The census table with flagged workers in red (a pandas Styler for notebooks). Its cells
    are what workers reported (model names, versions, notes): HTML-escaped, since a Styler,
    unlike a DataFrame, puts cell text into its HTML as it is."""
    def colour(row: pd.Series) -> list[str]:
        style = "background-color: #fdd" if row["status"] != "OK" else "background-color: #dfd"
        return [style] * len(row)

    return table.style.format(escape="html").apply(colour, axis=1).hide(axis="index")


def take_census(client: EndpointClient, probes: int, *, min_handler_version: int,
                rounds: int = 3, platform: WorkerList | None = None) -> Census:
    """A census that tries to hear from every worker: when the platform's list (management
    API ``/workers``, when given) or else ``GET /health`` reports more workers than answered,
    more rounds of ``probes`` health jobs are sent (up to ``rounds``), and all probes are
    reported together."""
    from honora_tts.client import Census
    from honora_tts.client.census_report import group_probes

    collected: list[Any] = []
    census = None
    for _ in range(max(1, rounds)):
        census = client.census(probes, min_handler_version=min_handler_version)
        collected.extend(census.probes)
        answered = {p.worker_id for p in collected if p.answered and p.worker_id}
        if platform is not None:
            if set(ready_platform_workers(platform)) <= answered:
                break
            continue
        expected = expected_worker_count(census)
        if expected is None or len(answered) >= expected:
            break
    assert census is not None
    return Census(probes=collected, groups=group_probes(collected),
                  min_handler_version=census.min_handler_version,
                  endpoint_health=census.endpoint_health)


def ready_platform_workers(platform: WorkerList) -> list[str]:
    """Workers the platform lists as ready (idle or running): each should answer the census."""
    return [w.id for w in platform.workers if w.status in ("IDLE", "RUNNING")]


def expected_worker_count(census: Census) -> int | None:
    """Workers ``GET /health`` reports as up, when it reports any: ``ready``, or idle plus
    running where that is more (RunPod does not document whether ``ready`` counts the
    running ones; localpod's does)."""
    health = census.endpoint_health
    if health is None or not health.workers:
        return None
    counts = {k.lower(): v for k, v in health.workers.items()}
    counted = max(counts.get("ready", 0), counts.get("idle", 0) + counts.get("running", 0))
    return counted or None


# -------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class CheckResult:
    """One step of the verification and how it went."""

    name: str
    status: Status
    summary: str
    error_type: str | None = None
    error_code: str | None = None
    error: str | None = None
    worker_ids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["worker_ids"] = list(self.worker_ids)
        return data


def census_check(rows: Sequence[WorkerRow], census: Census | None = None,
                 platform: WorkerList | None = None) -> CheckResult:
    """PASS when every answering worker runs the expected, current, identifiable build (and,
    with the platform's list, every ready worker it lists answered)."""
    if not rows:
        failures = [p.error for p in census.failures] if census is not None else []
        return CheckResult(
            "version census", Status.FAIL, "no worker answered a health probe",
            error_type="NoAnswer", error="; ".join(e for e in failures if e)[:500] or None,
        )
    flagged = [r for r in rows if not r.ok]
    unanswered = len(census.failures) if census is not None else 0
    details: dict[str, Any] = {"workers": len(rows), "flagged": [r.worker_id for r in flagged]}
    expected = expected_worker_count(census) if census is not None else None
    if expected is not None:
        details["workers_reported_by_health"] = expected
    builds = builds_answering(rows)
    details["builds"] = builds
    if flagged:
        names = "; ".join(
            f"{r.worker_id} ({', '.join(FLAG_LABELS.get(Flag(f), f) for f in r.flags)})"
            for r in flagged)
        mixed = f"; {builds} builds answer (half-rolled)" if builds > 1 else ""
        return CheckResult("version census", Status.FAIL, f"flagged workers: {names}{mixed}",
                           worker_ids=tuple(r.worker_id for r in flagged), details=details)
    if platform is not None:
        heard = {r.worker_id for r in rows}
        unheard = [w for w in ready_platform_workers(platform) if w not in heard]
        details["workers_listed_by_platform"] = len(platform.workers)
        if unheard:
            return CheckResult(
                "version census", Status.FAIL,
                f"{len(unheard)} worker(s) the platform lists never answered: "
                f"{', '.join(unheard)}", error_type="NoAnswer", worker_ids=tuple(unheard),
                details=details)
    if unanswered:
        return CheckResult("version census", Status.FAIL,
                           f"{unanswered} health probe(s) got no answer",
                           error_type="NoAnswer", details=details)
    if expected is not None and len(rows) < expected:
        return CheckResult("version census", Status.WARN,
                           f"{len(rows)} of {expected} workers answered the census; the others "
                           "were not seen", details=details)
    build = rows[0]
    warnings = sorted({w for r in rows for w in r.warnings})
    if warnings:
        details["warnings"] = warnings
    return CheckResult(
        "version census", Status.PASS,
        f"{len(rows)} worker(s), one build: handler v{build.handler_version}, git "
        f"{build.git_sha[:12]}, built {build.build_time}, model {build.model_name}",
        details=details,
    )


def error_facts(exc: BaseException) -> dict[str, Any]:
    """The type, stable code, message and worker of a client error (for checks and rules)."""
    version = getattr(exc, "version", None)
    worker = getattr(exc, "worker_id", None) or (version.worker_id if version else None)
    return {
        "error_type": type(exc).__name__,
        "error_code": getattr(exc, "code", None),
        "error": str(exc)[:1000],
        "worker_ids": (worker,) if worker else (),
    }


def synthesis_check(name: str, call: Callable[[], SynthesisResult], *,
                    min_handler_version: int = HANDLER_VERSION,
                    expected_git_sha: str = "") -> tuple[CheckResult, SynthesisResult | None]:
    """Run one synthesis and grade it: it must return audio from a current build (and the
    expected commit, when one is given). Client errors become a FAIL with their facts."""
    from honora_tts.client import HonoraClientError

    started = time.perf_counter()
    try:
        result = call()
    except HonoraClientError as exc:
        return CheckResult(name, Status.FAIL, f"failed: {type(exc).__name__}",
                           details={"seconds": round(time.perf_counter() - started, 3)},
                           **error_facts(exc)), None
    version = result.version
    details = {
        "request_id": result.request_id, "job_id": result.job_id,
        "audio_s": result.duration_s, "client_ms": round(result.timings.client_ms, 1),
        "delay_ms": result.timings.delay_ms, "execution_ms": result.timings.execution_ms,
        "git_sha": version.git_sha, "handler_version": version.handler_version,
        "model_name": version.model_name,
    }
    workers = (result.worker_id,) if result.worker_id else ()
    problems = []
    if version.handler_version < min_handler_version:
        problems.append(f"handler v{version.handler_version} < v{min_handler_version}")
    if expected_git_sha and not shas_match(version.git_sha, expected_git_sha):
        problems.append(f"git sha {version.git_sha[:12]} is not {expected_git_sha[:12]}")
    if result.duration_s <= 0:
        problems.append("the audio is empty")
    if problems:
        return CheckResult(name, Status.FAIL, "; ".join(problems), worker_ids=workers,
                           error_type="VersionCheck", details=details), result
    return CheckResult(
        name, Status.PASS,
        f"{result.duration_s:.2f} s of audio from {result.worker_id or 'a worker'} in "
        f"{result.timings.client_ms:,.0f} ms", worker_ids=workers, details=details,
    ), result


def stress_check(records: pd.DataFrame, parallel: int) -> CheckResult:
    """PASS when every one of the parallel requests returned audio."""
    name = f"stress test ({parallel} parallel)"
    if records.empty:
        return CheckResult(name, Status.FAIL, "no request was sent", error_type="NoRequests")
    failed = records[~records["ok"].astype(bool)]
    ok = records[records["ok"].astype(bool)]
    workers = tuple(sorted({str(w) for w in ok["worker_id"].dropna()}))
    details = {
        "requests": len(records), "failed": len(failed), "workers_used": list(workers),
        "p50_client_ms": float(ok["client_ms"].median()) if len(ok) else math.nan,
        "max_client_ms": float(ok["client_ms"].max()) if len(ok) else math.nan,
    }
    if len(failed):
        kinds = failed["error_type"].fillna("?").value_counts().to_dict()
        first = failed.iloc[0]
        stale_workers = tuple(sorted({str(w) for w in failed["worker_id"].dropna()}))
        return CheckResult(
            name, Status.FAIL,
            f"{len(failed)} of {len(records)} failed: "
            + ", ".join(f"{k} ×{v}" for k, v in kinds.items()),
            error_type=str(first["error_type"]), error_code=_text(first.get("error_code")),
            error=_text(first.get("error")), worker_ids=stale_workers, details=details,
        )
    return CheckResult(
        name, Status.PASS,
        f"{len(records)} of {len(records)} returned audio, using {len(workers)} worker(s); "
        f"p50 {details['p50_client_ms']:,.0f} ms, max {details['max_client_ms']:,.0f} ms",
        worker_ids=workers, details=details,
    )


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def save_outputs(results: dict[str, SynthesisResult | None], directory: str | Path
                 ) -> dict[str, Path]:
    """Write each check's audio as ``<name>.<format>`` under ``directory`` (failed checks,
    None, are skipped) and return the paths by name."""
    saved = {}
    for name, result in results.items():
        if result is not None:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
            saved[name] = result.save(Path(directory) / f"{safe}.{result.format}")
    return saved


def checks_table(checks: Sequence[CheckResult]) -> pd.DataFrame:
    return pd.DataFrame([
        {"check": c.name, "status": str(c.status), "summary": c.summary,
         "error": c.error or ""} for c in checks
    ], columns=["check", "status", "summary", "error"])


# ------------------------------------------------------------------------ troubleshooting


@dataclass(frozen=True)
class Advice:
    """A known cause of what failed and the fix. ``evidence`` says what pointed to it."""

    key: str
    problem: str
    fix: str
    evidence: tuple[str, ...]


_FIXES = {
    "stale_workers": (
        ("Stale workers: some workers still run an old image (the batch-only handler that "
         "answers \"No sections provided\", or one below the minimum handler version)."),
        ("Rebuild and push the image with a unique tag (never reuse :latest), point the "
         "endpoint's template at that tag, then scale the workers to 0 and back (or use "
         "'Refresh workers') so no worker keeps the old image. Re-run this notebook."),
    ),
    "voice_embedded": (
        ("The reference voice was embedded in the request (base64): that is what crashed the "
         "old workers (\"EOF when reading a line\") and what RunPod's payload limit refuses."),
        ("Send voices as voice_url: honora_tts.client uploads a voice file to the voice store "
         "once and sends its URL. Configure a store (HONORA_VOICE_STORE: local HTTP, S3 or "
         "Supabase) that the workers can reach."),
    ),
    "unknown_sha": (
        ("The image does not know its git sha or build time: it was built without the build "
         "arguments, so nobody can tell which code it runs."),
        ("Build with: docker build -f Dockerfile.runpod --build-arg GIT_SHA=$(git rev-parse "
         "HEAD) --build-arg BUILD_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t <repo>:<unique tag> ."),
    ),
    "sha_mismatch": (
         "The workers run another commit than the expected one.",
        ("Check the endpoint's template image tag: it still points at an older build, or the "
         "image was built from another checkout. Rebuild from the expected commit with a new "
         "tag and roll the workers."),
    ),
    "mixed_versions": (
        ("More than one build answers: the deployment is half rolled (some workers picked up "
         "the new image, others still run the old one)."),
        ("Wait for the rollout to finish, or scale the workers to 0 and back so every worker "
         "starts from the new image; then re-run the census."),
    ),
    "timeouts": (
        ("Requests timed out: cold starts (workers loading the model after scaling up) or an "
         "executionTimeout shorter than a synthesis."),
        ("Give the first request a longer deadline (deadline_s), keep one active worker to "
         "avoid cold starts, and raise the endpoint's executionTimeout above the longest "
         "synthesis you expect."),
    ),
    "voice_fetch": (
         "Workers could not fetch the voice file from its URL.",
        ("Make sure the voice store's URLs are reachable from the workers (public or signed "
         "URLs; not 127.0.0.1 for a RunPod endpoint) and that the file is valid audio."),
    ),
    "unreachable": (
         "The endpoint could not be reached or refused the credentials.",
        ("Check RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY (RunPod console > Serverless and "
         "Settings > API Keys), and RUNPOD_API_BASE when it is set."),
    ),
    "worker_errors": (
         "Workers answered with errors while synthesizing.",
        ("Read the error codes above and the worker logs in the RunPod console (or localpod's "
         "log directory); synthesis_failed and model_not_ready point at the image or its model."),
    ),
}


def troubleshoot(rows: Sequence[WorkerRow], checks: Sequence[CheckResult]) -> list[Advice]:
    """What failed, mapped to its known cause and fix; empty when nothing failed."""
    evidence: dict[str, list[str]] = {}

    def add(key: str, text: str) -> None:
        evidence.setdefault(key, []).append(text)

    for row in rows:
        flags = set(row.flags)
        if flags & {Flag.STALE, Flag.OLD_HANDLER, Flag.NO_VERSION}:
            add("stale_workers", f"worker {row.worker_id}: {'; '.join(row.notes)}")
        if Flag.UNKNOWN_SHA in flags:
            add("unknown_sha", f"worker {row.worker_id}: git sha {row.git_sha}, "
                               f"built {row.build_time}")
        if Flag.SHA_MISMATCH in flags:
            add("sha_mismatch", f"worker {row.worker_id}: git sha {row.git_sha[:12]}")
        if Flag.MIXED_VERSIONS in flags:
            add("mixed_versions", f"worker {row.worker_id}: git {row.git_sha[:12]} handler "
                                  f"v{row.handler_version}")
    for check in checks:
        if check.status != Status.FAIL or check.error_type in (None, "VersionCheck"):
            if check.status == Status.FAIL and check.error_type == "VersionCheck":
                add("stale_workers" if "handler" in check.summary else "sha_mismatch",
                    f"{check.name}: {check.summary}")
            continue
        key = _rule_for_error(check.error_type, check.error_code, check.error or "")
        workers = f" (worker {', '.join(check.worker_ids)})" if check.worker_ids else ""
        add(key, f"{check.name}{workers}: {check.error_type}"
                 + (f" [{check.error_code}]" if check.error_code else ""))
    return [
        Advice(key, _FIXES[key][0], _FIXES[key][1], tuple(dict.fromkeys(items)))
        for key, items in sorted(evidence.items(), key=lambda kv: list(_FIXES).index(kv[0]))
    ]


def _rule_for_error(error_type: str | None, code: str | None, message: str) -> str:
    code = (code or "").lower()
    if error_type == "StaleWorkerError" or STALE_SIGNATURE.lower() in message.lower():
        return "stale_workers"
    if (error_type == "PayloadTooLarge" or code == "voice_embedded"
            or "eof when reading a line" in message.lower()):
        return "voice_embedded"
    if error_type == "JobTimedOut" or code in {"timed_out", "timeout"}:
        return "timeouts"
    if code.startswith("voice_") or error_type == "VoiceStoreError":
        return "voice_fetch"
    if error_type in {"AuthenticationError", "NotFound", "EndpointUnavailable",
                      "ConfigurationError", "SubmissionUncertain", "NoAnswer"}:
        return "unreachable"
    return "worker_errors"


# --------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    """PASS only when every check passed. ``stale_workers`` names the workers on old code."""

    status: Status
    reasons: tuple[str, ...]
    stale_workers: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == Status.PASS

    def headline(self) -> str:
        if self.passed:
            return "VERDICT: PASS" + (f" (warnings: {'; '.join(self.warnings)})"
                                      if self.warnings else "")
        stale = f" Stale workers: {', '.join(self.stale_workers)}." if self.stale_workers else ""
        return f"VERDICT: FAIL: {'; '.join(self.reasons)}.{stale}"


def stale_workers(rows: Iterable[WorkerRow], checks: Iterable[CheckResult]) -> list[str]:
    """Workers on old code, from the census and from requests a stale worker answered."""
    names = {r.worker_id for r in rows
             if set(r.flags) & {Flag.STALE, Flag.OLD_HANDLER, Flag.NO_VERSION}}
    for check in checks:
        if check.status == Status.FAIL and _rule_for_error(
                check.error_type, check.error_code, check.error or "") == "stale_workers":
            names.update(check.worker_ids)
    return sorted(names)


def decide(rows: Sequence[WorkerRow], checks: Sequence[CheckResult],
           model_name: str | None = None) -> Verdict:
    """One verdict for the whole run."""
    reasons = [f"{c.name}: {c.summary}" for c in checks if c.status == Status.FAIL]
    warnings = [f"{c.name}: {c.summary}" for c in checks if c.status == Status.WARN]
    warnings += sorted({w for r in rows for w in r.warnings})
    noise = f"model {model_name}: random weights, the audio is noise"
    if model_name and is_random_weights_model(model_name) and noise not in warnings:
        warnings.append(noise)
    status = Status.FAIL if reasons or not checks else Status.PASS
    if not checks:
        reasons.append("no check ran")
    return Verdict(status, tuple(reasons), tuple(stale_workers(rows, checks)), tuple(warnings))


def is_random_weights_model(model_name: str | None) -> bool:
    """True for the offline tiny model (random weights: noise, not speech)."""
    return "tiny" in (model_name or "").lower()


# --------------------------------------------------------------------------------- summary


def summary(*, verdict: Verdict, rows: Sequence[WorkerRow], checks: Sequence[CheckResult],
            advice: Sequence[Advice], endpoint: dict[str, Any],
            parameters: dict[str, Any] | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's results as JSON-ready data (what ``summary.json`` holds)."""
    from honora_tts.version import git_sha, package_version

    return json_ready({
        "verdict": str(verdict.status),
        "passed": verdict.passed,
        "headline": verdict.headline(),
        "reasons": list(verdict.reasons),
        "warnings": list(verdict.warnings),
        "stale_workers": list(verdict.stale_workers),
        "endpoint": endpoint,
        "parameters": parameters or {},
        "workers": [{**asdict(r), "flags": [str(f) for f in r.flags], "ok": r.ok}
                    for r in rows],
        "checks": [c.to_dict() for c in checks],
        "troubleshooting": [asdict(a) for a in advice],
        "verifier": {"package_version": package_version(), "git_sha": git_sha()},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    })


def write_summary(data: dict[str, Any], path: str | Path) -> Path:
    """Write the summary as indented JSON (folders made as needed)."""
    return write_json(data, path)


def verdict_html(verdict: Verdict) -> str:
    """A banner for the notebook: green PASS or red FAIL with the reasons."""
    import html

    colour = "#1a7f37" if verdict.passed else "#c00"
    items = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons)
    warns = "".join(f"<li>{html.escape(w)}</li>" for w in verdict.warnings)
    stale = (f"<p><b>Stale workers:</b> {html.escape(', '.join(verdict.stale_workers))}</p>"
             if verdict.stale_workers else "")
    return (
        f'<div style="border:3px solid {colour};padding:10px;font-size:1.2em">'
        f'<b style="color:{colour};font-size:1.4em">VERDICT: {verdict.status}</b>'
        f"{'<ul>' + items + '</ul>' if items else ''}{stale}"
        f"{'<p>Warnings:</p><ul>' + warns + '</ul>' if warns else ''}</div>"
    )


def advice_html(advice: Sequence[Advice]) -> str:
    """The troubleshooting section: one block per cause found, with its evidence and fix."""
    import html

    if not advice:
        return "<p>Nothing failed: no troubleshooting needed.</p>"
    blocks = []
    for item in advice:
        evidence = "".join(f"<li><code>{html.escape(e)}</code></li>" for e in item.evidence)
        blocks.append(f"<h4>{html.escape(item.problem)}</h4><p><b>Seen:</b></p><ul>{evidence}"
                      f"</ul><p><b>Fix:</b> {html.escape(item.fix)}</p>")
    return "".join(blocks)


def noise_banner_html(model_name: str | None) -> str:
    """A loud warning shown above audio players when the model has random weights (the model
    name, as the worker reported it, HTML-escaped)."""
    import html

    if not is_random_weights_model(model_name):
        return ""
    return (
        '<div style="border:3px solid #c00;background:#fee;padding:10px;font-size:1.2em">'
        f"&#9888; <b>The audio below is NOISE</b>: the workers serve the tiny model "
        f"(<code>{html.escape(model_name or '')}</code>) with random weights. It proves the pipeline works, not "
        "that anything speaks. Verify a real deployment to hear speech.</div>"
    )
