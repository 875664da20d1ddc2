"""What a running build is: the record every worker response carries.

The git sha and build time come from the image's build arguments (``GIT_SHA``, ``BUILD_TIME``,
turned into environment variables by Dockerfile.runpod). In a source checkout the sha falls back
to ``git rev-parse``; an image built without the build arguments says ``"unknown"``, which the
deploy verification flags.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from honora_tts.protocol import HANDLER_VERSION, VersionRecord

UNKNOWN = "unknown"
_REPO_ROOT = Path(__file__).resolve().parent.parent
_loaded_model: dict[str, Any] = {}


def package_version() -> str:
    try:
        return metadata.version("honora-tts")
    except metadata.PackageNotFoundError:
        return UNKNOWN


@functools.cache
def git_sha() -> str:
    sha = os.environ.get("GIT_SHA", "").strip()
    if sha:
        return sha
    if (_REPO_ROOT / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(_REPO_ROOT), "rev-parse", "HEAD"],
                capture_output=True, text=True, timeout=5, check=True, stdin=subprocess.DEVNULL,
            )
            return out.stdout.strip() or UNKNOWN
        except (OSError, subprocess.SubprocessError):
            return UNKNOWN
    return UNKNOWN


def build_time() -> str:
    return os.environ.get("BUILD_TIME", "").strip() or UNKNOWN


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


def streaming_enabled() -> bool:
    return os.environ.get("HONORA_STREAMING", "0").strip().lower() in {"1", "true", "yes"}


def version_record() -> VersionRecord:
    return VersionRecord(
        handler_version=HANDLER_VERSION,
        package_version=package_version(),
        git_sha=git_sha(),
        build_time=build_time(),
        python_version=platform.python_version(),
        worker_id=os.environ.get("RUNPOD_POD_ID") or None,
        streaming=streaming_enabled(),
        **_torch_facts(),
        **_loaded_model,
    )
