"""The notebooks as committed: a first code cell tagged ``parameters`` that papermill can read
completely, no outputs, and a last cell that writes results under ``artifacts_dir``."""

import ast

import nbformat
import papermill
import pytest

from honora_tts.qa import notebook_runner

NOTEBOOKS = sorted(notebook_runner.NOTEBOOKS_DIR.glob("*.ipynb"))


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_deploy_verification", "02_listening_test",
                                           "03_latency", "04_release_gate", "05_rollout"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_parameters_cell(path):
    nb = nbformat.read(str(path), as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code_cells[0].metadata.get("tags", [])
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    # papermill silently skips lines it cannot parse; then a parameter passed by name would be
    # refused by the runner. Every assignment of the cell must be declared.
    nb = nbformat.read(str(path), as_version=4)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [node.targets[0].id for node in ast.parse(source).body
                if isinstance(node, ast.Assign)]
    declared = papermill.inspect_notebook(str(path))
    assert list(declared) == assigned
    assert "artifacts_dir" in declared
    # Where the audio comes from: one endpoint, or (release gate) a baseline and a candidate.
    assert "endpoint" in declared or {"baseline", "candidate"} <= set(declared)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    assert not notebook_runner.has_outputs(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_last_cell_writes_results(path):
    nb = nbformat.read(str(path), as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1].source
    assert "out /" in last and ".json" in last


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_call_into_the_library_and_stay_thin(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in ast.walk(tree)), (
            "define functions in honora_tts, not in notebooks")
        assert all(len(line) <= 100 for line in cell.source.splitlines())


def test_api_key_is_not_a_default():
    for path in NOTEBOOKS:
        assert papermill.inspect_notebook(str(path))["api_key"]["default"] == '""'
