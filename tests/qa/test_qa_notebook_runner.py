"""papermill runs with checked parameter names, kernel environment, failures and HTML export."""

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from honora_tts.qa import notebook_runner as runner

pytestmark = pytest.mark.notebooks


DEMO_PARAMETERS = 'greeting = "hello"  # what to write\ncount = 1\nout = "result.json"'


def write_notebook(path: Path, body: str, parameters: str = DEMO_PARAMETERS) -> Path:
    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))
    return path


WRITE_RESULT = """
import json, os
print("greeting is", greeting)
with open(out, "w") as f:
    json.dump({"greeting": greeting, "count": count,
               "secret": os.environ.get("QA_RUNNER_SECRET")}, f)
"""


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "demo.ipynb", WRITE_RESULT)


def test_declared_parameters_come_from_the_tagged_cell(notebook):
    declared = runner.declared_parameters(notebook)
    assert list(declared) == ["greeting", "count", "out"]
    assert declared["greeting"]["help"] == "what to write"


def test_unknown_parameter_raises_before_running(notebook, tmp_path):
    with pytest.raises(runner.UnknownParameterError, match="greting"):
        runner.run_notebook(notebook, tmp_path / "out.ipynb", {"greting": "typo"})
    assert not (tmp_path / "out.ipynb").exists()


def test_run_passes_parameters_cwd_and_environment(notebook, tmp_path):
    run = runner.run_notebook(
        notebook, tmp_path / "out" / "executed.ipynb", {"greeting": "hej", "count": 3},
        cwd=tmp_path, env={"QA_RUNNER_SECRET": "s3cr3t-value"}, execution_timeout=120,
    )
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == {"greeting": "hej", "count": 3, "secret": "s3cr3t-value"}
    executed = run.output_path.read_text()
    assert "s3cr3t-value" not in executed  # environment, unlike parameters, stays out
    assert runner.has_outputs(run.output_path)
    html = runner.export_html(run.output_path, tmp_path / "report.html").read_text()
    assert "greeting is hej" in html
    assert runner.clear_outputs(run.output_path)
    assert not runner.has_outputs(run.output_path)
    assert not runner.clear_outputs(run.output_path)


def test_api_key_parameter_travels_in_the_environment_only(tmp_path):
    notebook = write_notebook(
        tmp_path / "keyed.ipynb",
        "import json, os\njson.dump({'parameter': api_key, "
        "'environment': os.environ.get('RUNPOD_API_KEY')}, open(out, 'w'))",
        parameters='api_key = ""\nout = "result.json"',
    )
    run = runner.run_notebook(notebook, tmp_path / "keyed-out.ipynb",
                              {"api_key": "rpa_SECRETKEY123"}, cwd=tmp_path,
                              execution_timeout=120)
    assert json.loads((tmp_path / "result.json").read_text()) == {
        "parameter": "", "environment": "rpa_SECRETKEY123"}
    assert "rpa_SECRETKEY123" not in run.output_path.read_text()
    assert "api_key" not in run.parameters


def test_failing_cell_is_reported_with_its_error(tmp_path):
    notebook = write_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom ' + greeting)")
    with pytest.raises(runner.NotebookFailed) as failure:
        runner.run_notebook(notebook, tmp_path / "bad-out.ipynb", cwd=tmp_path,
                            execution_timeout=120)
    assert failure.value.ename == "RuntimeError" and "boom hello" in failure.value.evalue
    assert failure.value.output_path.exists()


def test_cell_timeout_fails_the_run(tmp_path):
    notebook = write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    with pytest.raises(runner.NotebookFailed, match="Timeout"):
        runner.run_notebook(notebook, tmp_path / "slow-out.ipynb", cwd=tmp_path,
                            execution_timeout=2)


def test_notebook_names_resolve_to_the_repository(tmp_path):
    assert runner.notebook_path("01_deploy_verification").name == "01_deploy_verification.ipynb"
    assert runner.notebook_path("03_latency.ipynb").parent == runner.NOTEBOOKS_DIR
    with pytest.raises(FileNotFoundError, match="01_deploy_verification"):
        runner.notebook_path("99_missing")
    empty = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), str(empty))
    with pytest.raises(ValueError, match="parameters"):
        runner.declared_parameters(empty)


def test_environment_is_restored(monkeypatch):
    monkeypatch.setenv("QA_KEEP", "before")
    monkeypatch.delenv("QA_GONE", raising=False)
    import os

    with runner.kernel_environment({"QA_KEEP": "during", "QA_GONE": "set", "QA_DROP": None}):
        assert os.environ["QA_KEEP"] == "during" and os.environ["QA_GONE"] == "set"
    assert os.environ["QA_KEEP"] == "before" and "QA_GONE" not in os.environ
