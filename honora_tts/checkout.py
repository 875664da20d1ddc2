"""Where the source checkout of honora-tts is, for the repository's own tools.

Some things live next to the package in the git repository and are not in the wheel: the worker
entry RunPod and the Dockerfile run (``worker/handler.py``), the notebooks, the old batch-only
handler localpod's stale workers run (``tests/fixtures/stale_handler.py``) and the ``.git``
directory the build identity and ``honora-tts rollout`` read. This module is the one place that
knows where: :data:`ROOT`, the directory above the package, is the checkout when the package is
run from one (an editable install or ``PYTHONPATH``); :func:`is_checkout` says whether it is.

An installed package has none of them, and each tool falls back or says what to pass instead:
localpod's workers run the package's own entry (:func:`worker_entry`), stale workers and the
notebooks need their paths given.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root when the package runs from a checkout.
ROOT = PACKAGE_DIR.parent
#: The file RunPod runs (Dockerfile.runpod's CMD), in a checkout.
WORKER_HANDLER = ROOT / "worker" / "handler.py"
#: The package's own worker entry (``python -m honora_tts.worker``), wherever it is installed.
PACKAGE_WORKER_ENTRY = PACKAGE_DIR / "worker" / "__main__.py"
NOTEBOOKS_DIR = ROOT / "notebooks"
STALE_HANDLER = ROOT / "tests" / "fixtures" / "stale_handler.py"


def is_checkout() -> bool:
    """True when the package runs from its source checkout (the worker entry is beside it)."""
    return WORKER_HANDLER.is_file() and (ROOT / "pyproject.toml").is_file()


def worker_entry() -> Path:
    """The worker file to run: the checkout's ``worker/handler.py`` (what the image runs), else
    the installed package's ``honora_tts/worker/__main__.py`` (the same ``main``)."""
    return WORKER_HANDLER if is_checkout() else PACKAGE_WORKER_ENTRY
