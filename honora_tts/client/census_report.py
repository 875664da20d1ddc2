"""What a census of an endpoint's workers returns: each health probe, the probes grouped by the
build that answered them, and the verdict (stale or half-rolled builds) with its report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from honora_tts.client.results import EndpointHealth
from honora_tts.protocol import VersionRecord


@dataclass(frozen=True)
class CensusProbe:
    """One health job of a census and what answered it."""

    request_id: str
    job_id: str | None
    worker_id: str | None
    version: VersionRecord | None
    stale_reason: str | None = None
    error: str | None = None
    client_ms: float | None = None

    @property
    def answered(self) -> bool:
        return self.version is not None or self.stale_reason is not None


@dataclass(frozen=True)
class CensusGroup:
    """Workers that answered with the same build (git sha, build time, handler version, model)."""

    git_sha: str
    build_time: str
    handler_version: int | None
    model_name: str | None
    probes: int
    worker_ids: list[str]
    stale_reason: str | None = None
    package_version: str | None = None

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    def label(self) -> str:
        handler = "?" if self.handler_version is None else str(self.handler_version)
        return (
            f"git {self.git_sha[:12]} built {self.build_time} handler v{handler} "
            f"model {self.model_name or '?'}"
        )


@dataclass(frozen=True)
class Census:
    """Which builds the answering workers run. ``half_rolled``: more than one build answered."""

    probes: list[CensusProbe]
    groups: list[CensusGroup]
    min_handler_version: int
    endpoint_health: EndpointHealth | None = None

    @property
    def stale(self) -> bool:
        return any(g.stale for g in self.groups)

    @property
    def half_rolled(self) -> bool:
        return len(self.groups) > 1

    @property
    def failures(self) -> list[CensusProbe]:
        """Probes that got no answer from any worker (timeouts, transport failures)."""
        return [p for p in self.probes if not p.answered]

    @property
    def ok(self) -> bool:
        return bool(self.groups) and not self.stale and not self.half_rolled and not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stale": self.stale,
            "half_rolled": self.half_rolled,
            "min_handler_version": self.min_handler_version,
            "groups": [
                {
                    "git_sha": g.git_sha,
                    "build_time": g.build_time,
                    "handler_version": g.handler_version,
                    "model_name": g.model_name,
                    "package_version": g.package_version,
                    "probes": g.probes,
                    "worker_ids": g.worker_ids,
                    "stale_reason": g.stale_reason,
                }
                for g in self.groups
            ],
            "failures": [
                {"request_id": p.request_id, "job_id": p.job_id, "error": p.error}
                for p in self.failures
            ],
            "endpoint_health": (
                {"jobs": self.endpoint_health.jobs, "workers": self.endpoint_health.workers}
                if self.endpoint_health else None
            ),
        }

    def summary(self) -> str:
        """A human-readable report, one line per build."""
        answered = sum(1 for p in self.probes if p.answered)
        header = (
            f"census: {answered}/{len(self.probes)} probes answered, "
            f"{len(self.groups)} build(s)"
        )
        lines = [header]
        for group in self.groups:
            mark = f"STALE ({group.stale_reason})" if group.stale else "ok"
            workers = ", ".join(group.worker_ids) or "unknown workers"
            lines.append(f"  [{mark}] {group.label()}: {group.probes} probe(s) from {workers}")
        for probe in self.failures:
            lines.append(f"  [no answer] request {probe.request_id}: {probe.error}")
        if self.endpoint_health is not None:
            lines.append(f"  endpoint workers: {self.endpoint_health.workers or 'n/a'}")
        if self.stale:
            lines.append("stale workers found: redeploy with a unique image tag and restart them")
        elif self.half_rolled:
            lines.append("more than one build is answering: the deployment is half rolled")
        return "\n".join(lines)


def group_probes(probes: list[CensusProbe]) -> list[CensusGroup]:
    """Group answered probes by build; the biggest group first."""
    buckets: dict[tuple[Any, ...], list[CensusProbe]] = {}
    for probe in probes:
        if not probe.answered:
            continue
        version = probe.version
        key: tuple[Any, ...] = (
            version.git_sha if version else "none",
            version.build_time if version else "none",
            version.handler_version if version else None,
            version.model_name if version else None,
            probe.stale_reason,
        )
        buckets.setdefault(key, []).append(probe)
    groups = []
    for (sha, built, handler, model, stale), members in buckets.items():
        workers = sorted({p.worker_id for p in members if p.worker_id})
        first = members[0].version
        groups.append(CensusGroup(
            git_sha=sha, build_time=built, handler_version=handler, model_name=model,
            probes=len(members), worker_ids=workers, stale_reason=stale,
            package_version=first.package_version if first else None,
        ))
    groups.sort(key=lambda g: (-g.probes, g.git_sha))
    return groups
