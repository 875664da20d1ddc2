"""P7 notebooks: wall time of each notebook of ``notebooks/`` run headless by papermill
(``honora_tts.qa.notebook_runner``) with its CI parameters against a two-worker localpod (tiny
model), next to a one-cell notebook run the same way (the cost of papermill and a kernel
start alone).

The CI parameters are those of ``tests/notebooks`` (small: a few probes, 8-token clips); a
notebook that no longer declares one of them fails loudly (``UnknownParameterError``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.measures import summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt

#: The tests' budget for the three notebooks (tests/notebooks/conftest.py).
BUDGET_S = 180.0
CELL_TIMEOUT_S = 600


def ci_parameters(name: str, pod: Any, out: Path) -> dict[str, Any]:
    """The parameters tests/notebooks passes to each notebook."""
    from honora_tts.version import git_sha

    endpoint = {"endpoint": pod.endpoint_id, "api_base": pod.base_url,
                "artifacts_dir": str(out / name)}
    if name.startswith("01"):
        return {**endpoint, "probes": 4, "parallel": 4, "max_new_tokens": 8,
                "tiny_text": "Hi.", "voice_text": "A short test.", "stress_text": "Stress.",
                "expected_git_sha": git_sha()}
    if name.startswith("02"):
        return {**endpoint, "texts": ["Hello there."],
                "conditions": {"cool": {"temperature": 0.6}, "warm": {"temperature": 0.9}},
                "max_new_tokens": 8, "rater": "bench", "test_type": "mos", "seed": 3,
                "simulated_raters": 2, "ratings_db": str(out / "ratings.sqlite")}
    if name.startswith("03"):
        return {**endpoint, "requests": 2, "concurrency": [1, 2],
                "texts": {"short": "Hi.", "long": "This sentence is a little longer than that."},
                "warmup": 1, "max_new_tokens": 8}
    return endpoint


def _bare_notebook(path: Path) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                       "name": "python3"}
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell, nbformat.v4.new_code_cell("print(x)")]
    nbformat.write(notebook, str(path))
    return path


def run(options: BenchOptions, result: BenchResult) -> None:
    from honora_tts.localpod import LocalPod
    from honora_tts.qa import notebook_runner

    quiet_library_logs()
    repeats = options.repeats_or(1, 1)
    notebooks = sorted(notebook_runner.NOTEBOOKS_DIR.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {notebook_runner.NOTEBOOKS_DIR}")
    if options.quick:
        notebooks = notebooks[:1]
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="honora-bench-nb-") as scratch, \
            LocalPod(workers=2, model="tiny") as pod:
        root = Path(scratch)
        env = {"RUNPOD_API_KEY": pod.api_key}
        bare = _bare_notebook(root / "bare.ipynb")
        for index in range(repeats):
            run_bare = notebook_runner.run_notebook(bare, root / f"bare-{index}.out.ipynb", {},
                                                   cwd=root, execution_timeout=CELL_TIMEOUT_S)
            times.setdefault("bare kernel", []).append(run_bare.duration_s)
            for notebook in notebooks:
                parameters = ci_parameters(notebook.stem, pod, root / f"run-{index}")
                executed = notebook_runner.run_notebook(
                    notebook, root / f"{notebook.stem}-{index}.out.ipynb", parameters, cwd=root,
                    execution_timeout=CELL_TIMEOUT_S, env=env,
                )
                times.setdefault(notebook.stem, []).append(executed.duration_s)
    result.data.update(wall_s=times, notebooks=[n.name for n in notebooks])
    bare_p50 = summarize(times["bare kernel"]).p50
    result.add_summary("bare_kernel_s", "papermill + kernel, one-cell notebook",
                       summarize(times["bare kernel"]), "s")
    total = 0.0
    for notebook in notebooks:
        wall = summarize(times[notebook.stem])
        total += wall.p50
        result.add_summary(f"{notebook.stem}_s", notebook.stem, wall, "s",
                           note=f"{fmt(wall.p50 / bare_p50)}x the bare kernel run")
    if options.quick:
        result.skipped("all_notebooks", "all notebooks", "skipped (quick): the first one only")
    else:
        result.add("total_s", f"all {len(notebooks)} notebooks (sum of medians)", total, "s",
                   spread=f"{fmt(total / bare_p50)}x the bare kernel run",
                   target=f"<= {BUDGET_S:g} s (tests' budget)", met=total <= BUDGET_S)
    result.notes.append("CI parameters of tests/notebooks; localpod with 2 workers, tiny model")
