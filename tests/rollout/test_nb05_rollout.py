"""Notebook 05 run by papermill against localpod: it looks (platform view, release history,
census against the platform), rolls the batch-only image over to the current handler under a
steady load, and writes the timeline and summary."""

from __future__ import annotations

import json

import pytest
from test_rollout_localpod import IMAGES, NEW, OLD

from honora_tts.qa import notebook_runner

pytestmark = [pytest.mark.notebooks, pytest.mark.integration]


def test_notebook_05_rolls_out_and_writes_the_timeline(localpod_factory, tmp_path):
    pod = localpod_factory(workers=2, model="tiny", images=IMAGES, start_image=OLD,
                           poll_hold_s=1.0, timeout_s=120)
    notebook_runner.run_notebook(
        "05_rollout", tmp_path / "05.ipynb",
        {"endpoint": pod.endpoint_id, "api_base": pod.base_url, "image": NEW, "traffic": 1,
         "max_new_tokens": 8, "verify": False, "timeout_s": 240.0, "probes": 2,
         "artifacts_dir": "artifacts/05_rollout"},
        cwd=tmp_path, execution_timeout=300,
        env={"RUNPOD_API_KEY": pod.api_key, "RUNPOD_MANAGEMENT_API_KEY": pod.management_api_key},
    )
    out = tmp_path / "artifacts" / "05_rollout"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["image_before"] == OLD
    assert summary["census"]["platform"]["endpointVersion"] == 1  # looked before the change
    assert summary["rollout"]["outcome"] == "done" and summary["rollout"]["ok"]
    assert summary["rollout"]["requests"]["lost"] == 0
    [plot] = out.glob("*-rollout-*/timeline.png")
    assert plot.stat().st_size > 1000
    executed = (tmp_path / "05.ipynb").read_text()
    assert pod.api_key not in executed and pod.management_api_key not in executed
