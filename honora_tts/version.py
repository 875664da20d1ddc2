"""What a running build is: the record every worker response carries.

The git sha and build time come from the image's build arguments (``GIT_SHA``, ``BUILD_TIME``,
turned into environment variables by Dockerfile.runpod). In a source checkout the sha falls back
to ``git rev-parse``; an image built without the build arguments says ``"unknown"``, which the
deploy verification flags.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from typing import Any

from honora_tts import checkout
from honora_tts.protocol import HANDLER_VERSION, VersionRecord
from honora_tts.settings import WorkerSettings

UNKNOWN = "unknown"
_loaded_model: dict[str, Any] = {}


def package_version() -> str:
    try:
        return metadata.version("honora-tts")
    except metadata.PackageNotFoundError:
        return UNKNOWN


_build_settings: WorkerSettings | None = None


def configure_build(settings: WorkerSettings) -> None:
    """Take the build's identity (``GIT_SHA``, ``BUILD_TIME``, ``RUNPOD_POD_ID``, streaming)
    from the worker's settings; without it they are read from the environment once."""
    global _build_settings
    _build_settings = settings
    git_sha.cache_clear()


def _settings() -> WorkerSettings:
    global _build_settings
    if _build_settings is None:
        _build_settings = WorkerSettings.from_env()
    return _build_settings


@functools.cache
def git_sha() -> str:
    sha = (_settings().git_sha or "").strip()
    if sha:
        return sha
    if (checkout.ROOT / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(checkout.ROOT), "rev-parse", "HEAD"],
                capture_output=True, text=True, timeout=5, check=True, stdin=subprocess.DEVNULL,
            )
            return out.stdout.strip() or UNKNOWN
        except (OSError, subprocess.SubprocessError):
            return UNKNOWN
    return UNKNOWN


def build_time() -> str:
    return (_settings().build_time or "").strip() or UNKNOWN


@functools.cache
def _torch_facts() -> dict[str, str | None]:
    try:
        import torch
    except ImportError:
        return {"torch_version": None, "cuda_version": None, "gpu_name": None}
    gpu = None
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    return {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "gpu_name": gpu,
    }


def record_loaded_model(name: str, sha256: str, device: str) -> None:
    """Called once the model is loaded, so responses name the weights actually serving."""
    _loaded_model.update(model_name=name, model_sha256=sha256, device=device)


def version_record() -> VersionRecord:
    return VersionRecord(
        handler_version=HANDLER_VERSION,
        package_version=package_version(),
        git_sha=git_sha(),
        build_time=build_time(),
        python_version=platform.python_version(),
        worker_id=_settings().pod_id,
        streaming=_settings().streaming,
        **_torch_facts(),
        **_loaded_model,
    )
