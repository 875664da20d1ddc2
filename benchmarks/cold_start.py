"""P8 cold start: from starting a worker to its first completed job, tiny model, CPU, against
the bare model load.

- *phases* (``cold_start_probe.py`` in a fresh interpreter, what ``worker/handler.py`` does
  before its first job): interpreter start, ``import runpod``, ``import honora_tts.worker``,
  coqui-tts's model stack, model load (the bare load), warm-up (default voice latents and one
  short generation), first job in process;
- *through localpod*: a one-worker pod started with a job already waiting: worker process
  started -> ready (first job-take) -> the job completed, as the client saw it;
- *imports*: ``python -X importtime`` of the same imports, top-level packages by cumulative
  time (what dominates the import phase).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.measures import Stopwatch, ratio, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt

PROBE = Path(__file__).with_name("cold_start_probe.py")
PHASES = (
    ("interpreter", "main"), ("import runpod", "runpod"),
    ("import honora_tts.worker", "honora_worker"), ("import coqui-tts XTTS", "coqui_tts"),
    ("model load (bare)", "model_load"), ("warm-up", "warm_up"), ("first job", "first_job"),
)
IMPORTS = ("import runpod, honora_tts.worker; from honora_tts import model; "
           "model.skip_unused_sklearn_import(); import TTS.tts.models.xtts")
TIMEOUT_S = 600


def _child_env() -> dict[str, str]:
    return {**os.environ, "HONORA_XTTS_MODEL": "tiny", "PYTHONUNBUFFERED": "1"}


def _probe() -> dict[str, float]:
    """Phase durations in ms of one fresh worker-like process."""
    spawned = time.time()
    done = subprocess.run(
        [sys.executable, "-P", str(PROBE)], capture_output=True, text=True, check=False,
        timeout=TIMEOUT_S, env=_child_env(), stdin=subprocess.DEVNULL,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"the cold-start probe failed ({done.returncode}): "
                           f"{done.stderr[-2000:]}")
    marks = json.loads(lines[-1])["marks"]
    phases, previous = {}, spawned
    for label, key in PHASES:
        phases[label] = (marks[key] - previous) * 1000
        previous = marks[key]
    phases["total"] = (marks["first_job"] - spawned) * 1000
    return phases


def _through_localpod() -> dict[str, float]:
    from honora_tts.client import EndpointClient
    from honora_tts.localpod import LocalPod

    pod = LocalPod(workers=1, model="tiny")
    watch = Stopwatch()
    pod.start(wait_ready=False)
    try:
        with EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url) as client:
            result = client.synthesize("Hello.", params={"max_new_tokens": 8, "seed": 1},
                                       deadline_s=TIMEOUT_S)
        done_at = time.time()
        to_result = watch.ms()
        worker = pod.workers()[0]
    finally:
        pod.stop()
    started, ready = worker["started_at"], worker["ready_at"]
    return {
        "pod start to result": to_result,
        "worker start to ready": (ready - started) * 1000,
        "ready to result": (done_at - ready) * 1000,
        "worker start to result": (done_at - started) * 1000,
        "job execution": result.timings.execution_ms or 0.0,
    }


def _import_profile(top: int = 6) -> list[dict[str, Any]]:
    """Top-level packages by cumulative import time (``-X importtime``, which inflates every
    import a little: compare shares, not absolute times)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORTS], capture_output=True, text=True,
        check=False, timeout=TIMEOUT_S, env=_child_env(), stdin=subprocess.DEVNULL,
    )
    by_package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, raw_name = line[len("import time:"):].split("|")
        cumulative, name = cumulative.strip(), raw_name[1:]
        if not cumulative.isdigit() or name.startswith(" "):
            continue  # nested imports are indented; only top-level ones count
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(cumulative) / 1000
    total = sum(by_package.values()) or 1.0
    ranked = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    return [{"package": name, "ms": round(ms, 1), "share": round(ms / total, 3)}
            for name, ms in ranked]


def run(options: BenchOptions, result: BenchResult) -> None:
    quiet_library_logs()
    repeats = options.repeats_or(2, 1)
    probes = [_probe() for _ in range(repeats)]
    result.data["probes"] = probes
    for label, _ in PHASES:
        result.add_summary(f"phase_{label}", f"phase: {label}", summarize(p[label] for p in probes))
    total = summarize(p["total"] for p in probes)
    load = summarize(p["model load (bare)"] for p in probes)
    imports = summarize(sum(p[label] for label, _ in PHASES[:4]) for p in probes)
    result.add_summary("probe_total_ms", "start to first job (in process)", total)
    result.add("total_over_load", "start to first job / bare model load",
               ratio(total.p50, load.p50), "x",
               spread=f"interpreter + imports {fmt(imports.p50)} ms = "
               f"{fmt(ratio(imports.p50, total.p50))} of the total")
    if options.quick:
        result.skipped("localpod", "through localpod", "skipped (quick)")
        return
    pod = _through_localpod()
    result.data["localpod"] = pod
    for label, value in pod.items():
        result.add(f"localpod_{label}", f"localpod: {label}", value, "ms")
    result.add("localpod_over_load", "localpod worker start to result / bare model load",
               ratio(pod["worker start to result"], load.p50), "x")
    profile = _import_profile()
    result.data["import_profile"] = profile
    result.add("import_top", "imports: largest top-level package", profile[0]["ms"], "ms",
               spread=", ".join(f"{p['package']} {fmt(100 * p['share'])}%" for p in profile),
               note="-X importtime cumulative per top-level import")
