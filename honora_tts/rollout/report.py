"""The rollout report under ``artifacts/rollout/``: ``rollout.json`` (everything the plot shows,
the release id and versions, what old and new workers answered) and ``timeline.png`` (share of
workers on the new build over time; requests answered by old and new workers, the overlap
shaded)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honora_tts.qa.verification import shas_match
from honora_tts.rollout.traffic import AnsweredRequest
from honora_tts.rollout.watch import Assessment, CensusLedger


@dataclass
class RolloutRecord:
    """What happened during one rollout (or rollback), as it happened."""

    kind: str
    endpoint_id: str
    image: str
    previous_image: str | None
    expected_git_sha: str | None
    strict: bool
    started_at: float
    image_changed_at: float | None = None
    finished_at: float | None = None
    outcome: str = "running"
    error: str | None = None
    release: dict[str, Any] | None = None
    endpoint_version_before: int | None = None
    endpoint_version_after: int | None = None
    samples: list[Assessment] = field(default_factory=list)
    ledger: CensusLedger = field(default_factory=CensusLedger)
    requests: list[AnsweredRequest] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def on_new_build(self, request: AnsweredRequest) -> bool:
        """Whether a request was answered by the new build (its git sha, or a worker the watch
        confirmed when no sha is expected)."""
        if self.expected_git_sha:
            return shas_match(request.git_sha or "", self.expected_git_sha)
        confirmed = set(self.samples[-1].confirmed) if self.samples else set()
        return request.worker_id in confirmed

    def request_counts(self) -> dict[str, Any]:
        """Requests answered by old and new workers, before and during the overlap (from the
        image change to the end of the watch), and how each ended."""
        start = self.image_changed_at
        end = self.finished_at
        counts: dict[str, Any] = dict.fromkeys(
            ("old_before_change", "new_before_change", "old_during_overlap",
             "new_during_overlap", "old_after", "new_after"), 0)
        counts["total"] = len(self.requests)
        outcomes: dict[str, int] = {}
        for request in self.requests:
            outcomes[request.outcome] = outcomes.get(request.outcome, 0) + 1
            build = "new" if self.on_new_build(request) else "old"
            if start is None or request.answered_at < start:
                counts[f"{build}_before_change"] += 1
            elif end is None or request.answered_at <= end:
                counts[f"{build}_during_overlap"] += 1
            else:
                counts[f"{build}_after"] += 1
        counts["outcomes"] = outcomes
        counts["lost"] = sum(1 for r in self.requests if r.outcome not in (
            "COMPLETED", "StaleWorkerError"))
        return counts

    def to_dict(self) -> dict[str, Any]:
        t0 = self.started_at
        return {
            "kind": self.kind,
            "endpoint_id": self.endpoint_id,
            "image": self.image,
            "previous_image": self.previous_image,
            "expected_git_sha": self.expected_git_sha,
            "strict": self.strict,
            "outcome": self.outcome,
            "error": self.error,
            "release": self.release,
            "endpoint_version_before": self.endpoint_version_before,
            "endpoint_version_after": self.endpoint_version_after,
            "started_at": self.started_at,
            "image_changed_s": None if self.image_changed_at is None
            else round(self.image_changed_at - t0, 3),
            "finished_s": None if self.finished_at is None else round(self.finished_at - t0, 3),
            "requests": self.request_counts(),
            "timeline": [
                {**s.to_dict(), "t_s": round(s.at - t0, 3),
                 "share_on_new_image": s.on_new_image / s.listed if s.listed else 0.0,
                 "share_confirmed": len(s.confirmed) / s.listed if s.listed else 0.0}
                for s in self.samples
            ],
            "census": {
                "probes": self.ledger.probes, "unanswered": self.ledger.unanswered,
                "workers": {w: {"git_sha": a.git_sha, "handler_version": a.handler_version,
                                "model_name": a.model_name, "stale_reason": a.stale_reason,
                                "seen_s": round(a.seen_at - t0, 3)}
                            for w, a in sorted(self.ledger.answers.items())},
            },
            "request_log": [
                {**r.to_dict(), "t_s": round(r.answered_at - t0, 3), "new_build":
                 self.on_new_build(r)} for r in self.requests
            ],
            "verification": self.verification,
            "warnings": self.warnings,
        }


def write_report(record: RolloutRecord, out_dir: Path) -> dict[str, Path]:
    """Write ``rollout.json`` and ``timeline.png`` into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = record.to_dict()
    json_path = out_dir / "rollout.json"
    json_path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    plot_path = out_dir / "timeline.png"
    _plot(data, plot_path)
    return {"json": json_path, "plot": plot_path}


def _plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (share, answers) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    timeline = data["timeline"]
    times = [s["t_s"] for s in timeline]
    share.step(times, [100 * s["share_on_new_image"] for s in timeline], where="post",
               label="platform: on the new image")
    share.step(times, [100 * s["share_confirmed"] for s in timeline], where="post",
               label="census confirms the new build")
    share.set_ylabel("workers (%)")
    share.set_ylim(-5, 105)
    share.legend(loc="lower right")
    share.set_title(f"{data['kind']} of {data['endpoint_id']} to {data['image']} "
                    f"({data['outcome']})")
    log = data["request_log"]
    old = [r["t_s"] for r in log if not r["new_build"]]
    new = [r["t_s"] for r in log if r["new_build"]]
    end = max([*times, *old, *new, 1.0])
    bins = [end * i / 30 for i in range(31)]
    answers.hist([old, new], bins=bins, stacked=True, color=["tab:red", "tab:green"],
                 label=["answered by old workers", "answered by new workers"])
    answers.set_ylabel("requests")
    answers.set_xlabel("seconds since the rollout started")
    answers.legend(loc="upper right")
    for axis in (share, answers):
        if data["image_changed_s"] is not None:
            axis.axvspan(data["image_changed_s"], data["finished_s"] or end, color="grey",
                         alpha=0.15)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
