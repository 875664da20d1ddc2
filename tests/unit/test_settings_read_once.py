"""Configuration is read in one place: no module but ``honora_tts.settings`` reads a setting
from the environment (``os.environ``/``os.getenv``). The few modules that *build* an
environment for child processes (localpod's workers, notebook kernels) are named below with
the reason."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "honora_tts"

#: module -> why it may touch os.environ (it passes an environment on, it reads no setting)
BUILDS_CHILD_ENVIRONMENTS = {
    "localpod/pod.py": "the environment localpod's worker processes inherit",
    "localpod/lb_pod.py": "the environment the load-balancing localpod's workers inherit",
    "localpod/discovery.py": "reads other processes' environments (psutil), not its own",
    "qa/notebook_runner.py": "sets a notebook kernel's environment while it starts",
}


def _environment_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "settings.py" or relative in BUILDS_CHILD_ENVIRONMENTS:
            continue
        lines = _environment_reads(path)
        if lines:
            offenders[relative] = lines
    assert not offenders, (
        f"modules reading os.environ outside honora_tts/settings.py: {offenders}. Declare the "
        "variable in honora_tts.settings and pass the value down."
    )


def test_the_walk_sees_an_environment_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    assert _environment_reads(sample) == [2, 3]
