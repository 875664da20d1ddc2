"""Running the project's notebooks headless: papermill with checked parameter names, a timeout
per cell, optional environment for the kernel, and an HTML export of the executed notebook.

papermill only logs a parameter the notebook does not declare; here an unknown name raises
:class:`UnknownParameterError` before anything runs, so a typo cannot silently run a notebook on
its defaults.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honora_tts.checkout import NOTEBOOKS_DIR
from honora_tts.checkout import ROOT as REPO_ROOT

#: Longest a single cell may run by default (seconds).
DEFAULT_CELL_TIMEOUT_S = 600
#: Parameters that hold secrets: passed to the kernel as these environment variables instead,
#: since papermill writes every parameter into the executed notebook. The notebooks read the
#: variable when the parameter is empty.
SECRET_PARAMETERS = {"api_key": "RUNPOD_API_KEY"}
_ENV_LOCK = threading.Lock()


class UnknownParameterError(ValueError):
    """A parameter was passed that the notebook's ``parameters`` cell does not declare."""


class NotebookFailed(RuntimeError):
    """A cell raised. ``output_path`` holds the executed notebook up to the failing cell."""

    def __init__(self, notebook: Path, output_path: Path, cell: int | None, ename: str,
                 evalue: str) -> None:
        self.notebook = notebook
        self.output_path = output_path
        self.cell = cell
        self.ename = ename
        self.evalue = evalue
        where = f"cell {cell}" if cell is not None else "a cell"
        super().__init__(f"{notebook.name}: {where} raised {ename}: {evalue} "
                         f"(executed notebook: {output_path})")


@dataclass(frozen=True)
class NotebookRun:
    """An executed notebook."""

    notebook: Path
    output_path: Path
    parameters: dict[str, Any]
    duration_s: float


def notebook_path(name: str | Path) -> Path:
    """``name`` as a path: an existing file, or a notebook of ``notebooks/`` named with or
    without ``.ipynb`` (``"01_deploy_verification"``)."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    stem = candidate.name.removesuffix(".ipynb")
    in_repo = NOTEBOOKS_DIR / f"{stem}.ipynb"
    if in_repo.is_file():
        return in_repo
    known = ", ".join(sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))) or "none"
    raise FileNotFoundError(f"no notebook {name!r}; notebooks here: {known}")


def declared_parameters(notebook: str | Path) -> dict[str, dict[str, Any]]:
    """The parameters the notebook's ``parameters`` cell declares (papermill's inspection:
    name -> {name, inferred_type_name, default, help})."""
    import papermill

    path = notebook_path(notebook)
    declared = papermill.inspect_notebook(str(path))
    if not declared:
        raise ValueError(f"{path.name} has no cell tagged 'parameters'")
    return declared


def check_parameters(notebook: str | Path, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownParameterError` when ``parameters`` names anything undeclared."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise UnknownParameterError(
            f"{notebook_path(notebook).name} does not declare parameter(s) "
            f"{', '.join(unknown)}; it declares {', '.join(sorted(declared))}"
        )


@contextlib.contextmanager
def kernel_environment(overrides: Mapping[str, str | None] | None) -> Iterator[None]:
    """Set (or, for None, remove) environment variables while a kernel starts: the kernel
    process inherits them. Values never appear in the notebook."""
    if not overrides:
        yield
        return
    with _ENV_LOCK:
        saved = {key: os.environ.get(key) for key in overrides}
        try:
            for key, value in overrides.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run_notebook(notebook: str | Path, output_path: str | Path,
                 parameters: Mapping[str, Any] | None = None, *,
                 cwd: str | Path | None = None,
                 execution_timeout: int = DEFAULT_CELL_TIMEOUT_S,
                 env: Mapping[str, str | None] | None = None,
                 log_output: bool = False, progress_bar: bool = False,
                 kernel_name: str | None = None) -> NotebookRun:
    """Execute ``notebook`` with papermill into ``output_path``.

    Parameter names are checked first. ``cwd`` is the kernel's working directory (default:
    the repository root, so ``artifacts/`` lands there). ``env`` is added to the kernel's
    environment (secrets go here, not in ``parameters``: parameters are written into the
    executed notebook; a secret passed as a parameter, ``api_key``, is moved to the kernel's
    environment for that reason). Raises :class:`NotebookFailed` when a cell raises or times
    out."""
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    path = notebook_path(notebook)
    params = dict(parameters or {})
    check_parameters(path, params)
    env = dict(env or {})
    for name, variable in SECRET_PARAMETERS.items():
        secret = params.pop(name, None)
        if secret:
            env[variable] = str(secret)
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with kernel_environment(env):
            papermill.execute_notebook(
                str(path), str(output), parameters=params, cwd=str(cwd or REPO_ROOT),
                execution_timeout=execution_timeout, log_output=log_output,
                progress_bar=progress_bar, kernel_name=kernel_name,
                request_save_on_cell_execute=True,
            )
    except PapermillExecutionError as exc:
        raise NotebookFailed(path, output, exc.cell_index, exc.ename, exc.evalue) from exc
    except DeadKernelError as exc:
        raise NotebookFailed(path, output, None, "DeadKernelError", str(exc)) from exc
    except TimeoutError as exc:
        raise NotebookFailed(path, output, None, "TimeoutError",
                             f"a cell ran longer than {execution_timeout} s: {exc}") from exc
    return NotebookRun(path, output, params, time.perf_counter() - started)


def export_html(executed: str | Path, html_path: str | Path) -> Path:
    """An HTML report of an executed notebook (nbconvert), inputs and outputs shown."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(executed), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    target = Path(html_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


def has_outputs(notebook: str | Path) -> bool:
    """True when any code cell holds outputs or an execution count."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return any(cell.get("outputs") or cell.get("execution_count") is not None
               for cell in nb.cells if cell.cell_type == "code")


def clear_outputs(notebook: str | Path) -> bool:
    """Remove outputs and execution counts (how notebooks are committed); True if changed."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed = True
        cell.outputs = []
        cell.execution_count = None
    if changed:
        nbformat.write(nb, str(notebook))
    return changed
