"""A benchmark's result: figures with their targets, the raw samples, the machine it ran on;
printed as a table and written as JSON under ``artifacts/bench/<name>.json``."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from benchmarks.machine import load_average
from benchmarks.measures import Summary

DEFAULT_OUT = Path("artifacts/bench")

#: ``met``: True/False against a target; None when the figure has no target; "open" when the
#: target cannot be judged on this machine (a GPU target on a CPU); "skipped" when not run.
Verdict = bool | None | Literal["open", "skipped"]


@dataclass
class Figure:
    key: str
    label: str
    value: float | None
    unit: str = ""
    spread: str = ""
    target: str = ""
    met: Verdict = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return {
            "key": self.key, "label": self.label, "value": value, "unit": self.unit,
            "spread": self.spread, "target": self.target, "met": self.met, "note": self.note,
        }


@dataclass
class BenchResult:
    """What one benchmark measured. ``data`` holds raw samples and details (JSON-ready)."""

    name: str
    title: str
    machine: dict[str, Any]
    quick: bool
    command: str
    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    error: str | None = None

    def add(self, key: str, label: str, value: float | None, unit: str = "", *,
            spread: str = "", target: str = "", met: Verdict = None, note: str = "") -> Figure:
        figure = Figure(key, label, value, unit, spread, target, met, note)
        self.figures.append(figure)
        return figure

    def add_summary(self, key: str, label: str, summary: Summary, unit: str = "ms", *,
                    target: str = "", met: Verdict = None, note: str = "") -> Figure:
        """A p50 figure with its p95 and IQR as the spread."""
        spread = f"p95 {fmt(summary.p95)}, IQR {fmt(summary.iqr)}, n={summary.n}"
        return self.add(key, label, summary.p50, unit, spread=spread, target=target, met=met,
                        note=note)

    def skipped(self, key: str, label: str, why: str) -> Figure:
        return self.add(key, label, None, met="skipped", note=why)

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "title": self.title,
            "command": self.command,
            "quick": self.quick,
            "started_at": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "duration_s": round(time.time() - self.started, 2),
            "machine": {**self.machine, "load_average_at_end": load_average()},
            "figures": [f.to_dict() for f in self.figures],
            "notes": self.notes,
            "error": self.error,
            "data": self.data,
        }


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def verdict_text(met: Verdict) -> str:
    return {True: "yes", False: "NO", None: "", "open": "open", "skipped": "skipped"}[met]


def table(result: BenchResult) -> str:
    """The result as a plain-text table: figure, value, spread, target, met?"""
    rows = [("figure", "value", "spread", "target", "met?")]
    for f in result.figures:
        value = "-" if f.value is None else f"{fmt(f.value)} {f.unit}".strip()
        rows.append((f.label, value, f.spread, f.target, verdict_text(f.met)))
    widths = [min(max(len(r[i]) for r in rows), cap) for i, cap in enumerate((48, 16, 36, 16, 7))]
    lines = [f"== {result.name}: {result.title}" + (" (quick)" if result.quick else "")]
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f.note for f in result.figures if f.note and f.met in (False, "skipped", "open")]
    lines += [f"  note: {n}" for n in dict.fromkeys(notes + result.notes)]
    if result.error:
        lines.append(f"  ERROR: {result.error}")
    return "\n".join(lines)


def markdown_rows(result: BenchResult) -> list[str]:
    """Rows for the docs' figures table: | benchmark | figure | value | spread | target | met |"""
    rows = []
    for f in result.figures:
        value = "-" if f.value is None else f"{fmt(f.value)} {f.unit}".strip()
        rows.append(f"| {result.name} | {f.label} | {value} | {f.spread} | {f.target} | "
                    f"{verdict_text(f.met)} |")
    return rows


def write_json(result: BenchResult, out_dir: Path = DEFAULT_OUT) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    text = json.dumps(_finite(result.to_dict()), indent=2, default=_jsonable, allow_nan=False)
    path.write_text(text + "\n")
    return path


def _finite(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, Summary):
        return _finite(value.to_dict())
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Summary):
        return value.to_dict()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
