"""Benchmarks print a table, not per-request log lines: libraries log at WARNING and above."""

from __future__ import annotations

import logging
import warnings

_CHATTY = ("httpx", "httpcore", "honora_tts", "runpod", "urllib3", "TTS", "transformers",
           "papermill", "traitlets", "uvicorn", "filelock", "numba")


def quiet_library_logs() -> None:
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
