"""Load-balancing tests run against the session's ``lb_localpod`` (three HTTP workers behind
localpod's imitation of RunPod's load balancer)."""

from __future__ import annotations

import pytest

from honora_tts.localpod.lb_pod import LoadBalancedPod


@pytest.fixture(scope="module")
def lb(lb_localpod: LoadBalancedPod) -> LoadBalancedPod:
    """The session's pod with all three workers ready (a test before may have killed one)."""
    lb_localpod.wait_ready(3, timeout_s=300)
    return lb_localpod
