"""Helpers for localpod's tests: the scripted worker's settings. Raw API calls go through
:class:`localpod_fixtures.PodAPI`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

SCRIPTED_HANDLER = Path(__file__).with_name("scripted_handler.py")
SCRIPTED = {"handler_path": SCRIPTED_HANDLER, "enforce_policy_minimums": False}


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
