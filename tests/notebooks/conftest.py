"""Running the notebooks against localpod with small CI parameters.

Each test runs a notebook with papermill (a timeout per cell), in a temporary working
directory, and asserts on the files it wrote. Wall times are collected and printed at the end of
the session, so the "all three notebooks in under 3 minutes" budget is visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from honora_tts.qa import notebook_runner

#: Longest one cell may run in CI.
CELL_TIMEOUT_S = 240
_WALL_TIMES: dict[str, float] = {}


@pytest.fixture
def endpoint_parameters(localpod) -> dict[str, str]:
    """Notebook parameters pointing at the session's localpod. The key travels through the
    kernel's environment (see :func:`run_notebook`), as ``make verify`` does."""
    return {"endpoint": localpod.endpoint_id, "api_base": localpod.base_url}


@pytest.fixture
def run_notebook(tmp_path: Path, localpod) -> Callable[..., nbformat.NotebookNode]:
    """Run a notebook of ``notebooks/`` in ``tmp_path`` and return the executed notebook."""

    def run(name: str, parameters: dict[str, Any], *, env: dict[str, str] | None = None,
            record_time: bool = True) -> nbformat.NotebookNode:
        started = time.perf_counter()
        kernel_env = {"RUNPOD_API_KEY": localpod.api_key, **(env or {})}
        result = notebook_runner.run_notebook(
            name, tmp_path / f"{name}.executed.ipynb", parameters, cwd=tmp_path,
            execution_timeout=CELL_TIMEOUT_S, env=kernel_env,
        )
        if record_time:
            _WALL_TIMES[name] = time.perf_counter() - started
        return nbformat.read(str(result.output_path), as_version=4)

    return run


def pytest_terminal_summary(terminalreporter) -> None:
    if _WALL_TIMES:
        times = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _WALL_TIMES.items())
        terminalreporter.write_line(
            f"notebook wall times: {times}; total {sum(_WALL_TIMES.values()):.1f} s"
        )
