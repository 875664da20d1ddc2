"""Shared test setup. Area fixtures live in each area's conftest; localpod's come from its plugin."""

import os
from pathlib import Path

import pytest

pytest_plugins = ["localpod_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Tests run against servers on 127.0.0.1 (localpod, voice stores): allow private voice URLs
# for the worker code the tests run in process. SSRF tests build caches with allow_private=False.
os.environ.setdefault("HONORA_ALLOW_PRIVATE_URLS", "1")
os.environ.setdefault("HONORA_XTTS_MODEL", "tiny")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
