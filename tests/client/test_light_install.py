"""The light install: ``pip install 'honora-tts[client]'`` calls an endpoint without torch,
coqui-tts, fastapi, boto3, storage3, pandas, matplotlib, scipy or runpod.

The fast test runs the client's paths in a subprocess of this (full) venv where importing any
of those fails, as it would where they are not installed. The slow test builds a real venv with
uv, installs ``.[client]`` into it, and runs ``honora-tts health`` from it against a localpod
started from this venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("torch", "TTS", "fastapi", "uvicorn", "boto3", "botocore", "storage3", "pandas",
         "matplotlib", "scipy", "runpod", "transformers", "papermill")
REPO_ROOT = Path(__file__).resolve().parents[2]
UV_CANDIDATES = (Path.home() / ".cache" / "honora-tts" / "tools" / "bin" / "uv",)

#: Makes every HEAVY module unimportable in the process it runs in.
BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    HEAVY = {HEAVY!r}

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
""")


def run_light(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv where HEAVY modules cannot be
    imported."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], check=False,
        capture_output=True, text=True, timeout=300, env=environment, cwd=REPO_ROOT,
    )


def test_the_client_paths_need_none_of_the_heavy_packages(tmp_path):
    done = run_light(f"""
        import contextlib, io, json
        from honora_tts import cli, engine_manager
        from honora_tts.client import ConfigurationError, EndpointClient, EndpointNotConfigured
        from honora_tts.engines import XttsRunpodEngine
        from honora_tts.voices import VoiceStoreError, voice_store_from_env
        from honora_tts.qa import verify_command as verify

        report = {{}}
        for command in ("health", "say", "census"):
            with contextlib.redirect_stdout(io.StringIO()):
                report[command + " --help"] = cli.main([command, "--help"])
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            report["health without endpoint"] = cli.main(["health"])
        report["health stderr"] = err.getvalue()
        try:
            EndpointClient.from_env({{}}, endpoint="localpod")
        except ConfigurationError as exc:
            report["localpod"] = str(exc)
        try:
            voice_store_from_env({{"HONORA_VOICE_STORE": "s3", "HONORA_S3_BUCKET": "b"}})
        except VoiceStoreError as exc:
            report["s3"] = str(exc)
        try:
            voice_store_from_env({{"SUPABASE_URL": "https://p.supabase.co", "SUPABASE_KEY": "k"}})
        except VoiceStoreError as exc:
            report["supabase"] = str(exc)
        report["local store"] = type(voice_store_from_env(
            {{"HONORA_LOCAL_VOICE_STORE_DIR": {str(tmp_path)!r}}})).__name__
        report["engine"] = type(engine_manager.get_engine("xtts-runpod")).__name__
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            report["verify"] = verify.main(["--out", {str(tmp_path / "verify")!r}])
        report["verify stderr"] = err.getvalue()
        import sys
        report["loaded"] = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
        print(json.dumps(report))
    """, env={"RUNPOD_ENDPOINT_ID": "", "HONORA_VOICES_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["health --help"] == report["say --help"] == report["census --help"] == 0
    assert report["health without endpoint"] == 2
    assert "RUNPOD_ENDPOINT_ID" in report["health stderr"]
    assert "pip install 'honora-tts[localpod]'" in report["localpod"]
    assert "pip install 'honora-tts[stores]'" in report["s3"]
    assert "pip install 'honora-tts[stores]'" in report["supabase"]
    assert report["local store"] == "LocalVoiceStore"
    assert report["engine"] == "XttsRunpodEngine"
    assert report["verify"] == 2 and "pip install 'honora-tts[qa]'" in report["verify stderr"]


def _uv() -> str | None:
    for candidate in UV_CANDIDATES:
        if candidate.is_file():
            return str(candidate)
    return shutil.which("uv")


@pytest.mark.slow
@pytest.mark.integration
def test_a_fresh_client_venv_runs_health_against_localpod(tmp_path, localpod_factory):
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (make setup installs it under ~/.cache/honora-tts)")
    venv = tmp_path / "client-venv"
    python = venv / "bin" / "python"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   timeout=300)
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), f"{REPO_ROOT}[client]"],
        check=False, capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr
    probe = subprocess.run(
        [str(python), "-c", (
            "import importlib.util, json, sys; import honora_tts.client; "
            f"print(json.dumps({{'absent': [m for m in {HEAVY!r} "
            "if importlib.util.find_spec(m) is None], 'file': honora_tts.client.__file__}))"
        )],
        check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    facts = json.loads(probe.stdout)
    assert set(facts["absent"]) == set(HEAVY)  # none of them came with [client]
    assert str(venv) in facts["file"]  # the installed package, not the worktree

    pod = localpod_factory(workers=1, model="tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PYTHON"))}
    env.update(pod.client_env())
    health = subprocess.run(
        [str(venv / "bin" / "honora-tts"), "health", "--json", "--deadline", "240"],
        check=False, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert health.returncode == 0, health.stderr
    report = json.loads(health.stdout)
    assert report["status"] == "healthy"
    assert report["version"]["handler_version"] >= 1 and report["endpoint"]["workers"]
