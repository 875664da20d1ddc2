"""P7 notebooks: wall time of each of the five notebooks of ``notebooks/`` run headless by
papermill (``honora_tts.qa.notebook_runner``) with its CI parameters against localpod (tiny
model), next to a one-cell notebook run the same way (the cost of papermill and a kernel
start alone): 01-04 against a two-worker pod (04's baseline and candidate both that endpoint),
05 against a pod of its own that starts on the batch-only image and is rolled over to the
current handler.

The CI parameters are those of ``tests/notebooks`` and ``tests/rollout`` (small: a few probes,
8-token clips, two golden-set items); a notebook that no longer declares one of them fails
loudly (papermill's ``parameter(s) ... not declared``).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.measures import summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt
from honora_tts import checkout

#: The tests' budget for the notebooks (tests/notebooks/conftest.py).
BUDGET_S = 180.0
#: Notebook 05's images: the batch-only worker it starts on and the current handler.
OLD_IMAGE = "honora-tts:batchonly"
GOLDEN_ITEMS = ["en-question", "de-question"]
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
    if name.startswith("04"):
        return {"baseline": pod.endpoint_id, "candidate": pod.endpoint_id,
                "api_base": pod.base_url, "items": GOLDEN_ITEMS, "max_new_tokens": 8,
                "artifacts_dir": str(out / name)}
    if name.startswith("05"):
        return {**endpoint, "image": new_image(), "traffic": 1, "max_new_tokens": 8,
                "verify": False, "timeout_s": 240.0, "probes": 2}
    raise ValueError(f"no CI parameters for notebook {name}: add them here")


def new_image() -> str:
    """The current handler's image reference (the checkout's commit as its tag)."""
    from honora_tts.rollout.repository import head_commit

    return f"honora-tts:{(head_commit(checkout.ROOT) or '0000000')[:12]}"


def rollout_pod() -> Any:
    """Notebook 05's pod: two workers on the batch-only image, the current handler ready to
    roll out (as ``tests/rollout`` starts it)."""
    from honora_tts.localpod import LocalPod

    images = {OLD_IMAGE: checkout.STALE_HANDLER, new_image(): checkout.WORKER_HANDLER}
    return LocalPod(workers=2, model="tiny", images=images, start_image=OLD_IMAGE,
                    poll_hold_s=1.0)


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
            LocalPod(workers=2, model="tiny") as shared:
        root = Path(scratch)
        bare = _bare_notebook(root / "bare.ipynb")
        for index in range(repeats):
            run_bare = notebook_runner.run_notebook(bare, root / f"bare-{index}.out.ipynb", {},
                                                   cwd=root, execution_timeout=CELL_TIMEOUT_S)
            times.setdefault("bare kernel", []).append(run_bare.duration_s)
            for notebook in notebooks:
                rolled = notebook.stem.startswith("05")
                with (rollout_pod() if rolled else contextlib.nullcontext(shared)) as pod:
                    parameters = ci_parameters(notebook.stem, pod, root / f"run-{index}")
                    executed = notebook_runner.run_notebook(
                        notebook, root / f"{notebook.stem}-{index}.out.ipynb", parameters,
                        cwd=root, execution_timeout=CELL_TIMEOUT_S,
                        env={"RUNPOD_API_KEY": pod.api_key},
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
    result.notes.append("CI parameters of tests/notebooks and tests/rollout; localpod with 2 "
                        "workers, tiny model (05: a pod of its own, rolled from the batch-only "
                        "image to the current handler)")
