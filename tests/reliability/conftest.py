"""Reliability suite (issue #7): the bad-input corpus, faults, load, secrets and fuzzing, run
against real worker processes through localpod. Each module records its figures
(:data:`reliability_support.FIGURES`); they are printed at the end of the session and written
to ``artifacts/reliability/report.json``."""

from __future__ import annotations

import json
import time

from reliability_support import ARTIFACTS, FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **FIGURES}
    path = ARTIFACTS / "report.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    terminalreporter.write_sep("-", "reliability figures")
    for section, facts in FIGURES.items():
        terminalreporter.write_line(f"{section}: {json.dumps(facts, sort_keys=True)}")
    terminalreporter.write_line(f"written to {path}")
