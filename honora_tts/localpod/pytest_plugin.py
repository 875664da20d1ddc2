"""pytest fixtures for tests that run against localpod (register with
``pytest_plugins = ["honora_tts.localpod.pytest_plugin"]``).

- ``localpod``: one pod per test session, two current workers (``worker/handler.py``) with the
  tiny model, ready before the first test that uses it.
- ``localpod_factory(**kwargs)``: starts a pod with :class:`LocalPod`'s keyword arguments (plus
  ``wait_ready`` and ``timeout_s`` for :meth:`LocalPod.start`) and stops it after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from honora_tts.localpod.pod import LocalPod

SESSION_READY_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def localpod() -> Iterator[LocalPod]:
    """A running pod shared by the whole session: 2 current workers, tiny model."""
    pod = LocalPod(workers=2, model="tiny")
    pod.start(timeout_s=SESSION_READY_TIMEOUT_S)
    try:
        yield pod
    finally:
        pod.stop()


@pytest.fixture
def localpod_factory() -> Iterator[Callable[..., LocalPod]]:
    """Start custom pods for one test; every pod it started is stopped at teardown."""
    pods: list[LocalPod] = []

    def start(**kwargs: Any) -> LocalPod:
        wait_ready = kwargs.pop("wait_ready", True)
        timeout_s = kwargs.pop("timeout_s", SESSION_READY_TIMEOUT_S)
        pod = LocalPod(**kwargs)
        pods.append(pod)
        return pod.start(wait_ready=wait_ready, timeout_s=timeout_s)

    try:
        yield start
    finally:
        for pod in reversed(pods):
            pod.stop()
