"""Fixtures for localpod's own tests: one pod of the scripted worker (fast, no model) shared by
the session, and an HTTP client bound to it. Tests that kill its workers wait for the
replacements before they end, so every test starts with two ready workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localpod_fixtures import PodAPI
from localpod_testing import SCRIPTED

from honora_tts.localpod import LocalPod


@pytest.fixture(scope="session")
def scripted_pod() -> Iterator[LocalPod]:
    """Two scripted workers; short stop grace and poll holds."""
    with LocalPod(2, stop_grace_s=1.0, poll_hold_s=2.0, **SCRIPTED) as pod:
        yield pod


@pytest.fixture
def client(scripted_pod: LocalPod) -> Iterator[PodAPI]:
    scripted_pod.wait_ready(n=2, timeout_s=60)
    with PodAPI(scripted_pod) as pod_client:
        yield pod_client
