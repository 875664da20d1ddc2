"""``pytest --nbval-lax notebooks/`` runs the notebooks as committed, whose endpoint is localpod.

Unless a localpod is already running (``honora-tts localpod``), one is started for the session
(two workers, tiny random-weights model) and announced through a state file in a temporary
``HONORA_CACHE_DIR``, where the notebooks' kernels find it; it stops when the session ends.
"""

from __future__ import annotations

import os
import tempfile

import pytest

_POD = None
_CACHE = None


def _nbval_requested(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax",
                                                                     False))


def pytest_sessionstart(session: pytest.Session) -> None:
    global _POD, _CACHE
    if not _nbval_requested(session.config):
        return
    from honora_tts.localpod import LocalPod, find_running
    from honora_tts.localpod.discovery import state_file_path, write_state_file

    if find_running() is not None:
        return
    _CACHE = tempfile.TemporaryDirectory(prefix="honora-nbval-")
    os.environ["HONORA_CACHE_DIR"] = _CACHE.name
    _POD = LocalPod(workers=2, model="tiny")
    _POD.start()
    write_state_file(state_file_path(_POD.endpoint_id), {
        "base_url": _POD.base_url, "endpoint_id": _POD.endpoint_id, "api_key": _POD.api_key,
        "management_base": _POD.management_base, "management_api_key": _POD.management_api_key,
        "pid": os.getpid(), "started_at": _POD.started_at, "state_dir": str(_POD.state_dir),
        "workers": [],
    })


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _POD, _CACHE
    if _POD is not None:
        _POD.stop()
        _POD = None
    if _CACHE is not None:
        os.environ.pop("HONORA_CACHE_DIR", None)
        _CACHE.cleanup()
        _CACHE = None
