"""P3 scaling: 10 and 40 synthesis requests sent at once through localpod (tiny model, honora's
client, one thread per request), with 1 worker and with 2 workers; throughput ratio and
failures.

Configurations, each on its own pod (all pods started together, then the bursts interleaved:
for each size, every configuration in turn, ``--repeats`` rounds): ``1w`` (one worker) and
``2w`` (two workers) as localpod starts them (one torch thread per worker on 2 cores: its share
of the cores less one for the control plane and the clients); ``1w-2t`` (at 10 requests
only): one worker with 2 torch threads (torch's default of one per core); ``1w-c2`` and
``2w-c2``: ``worker/handler.py`` with ``HONORA_CONCURRENCY=2`` (each worker holds two jobs:
it takes its next job while one runs, and the two decode in one batch; what
``HONORA_PREFETCH=1`` was, except that the held job no longer waits for the first to end).

From localpod's job table: per worker, the idle gap between finishing a job and taking the
next while jobs were still queued (the runpod SDK worker loop sleeps in 1 s steps while it holds
a job), and the share of the run each worker spent executing. The CPU time of this process
(client threads and localpod's control plane) is reported as well: on 2 cores it competes with
the workers.
"""

from __future__ import annotations

import itertools
import resource
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.measures import Stopwatch, ratio, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt

TEXT = "Scaling test sentence."
TWO_AT_ONCE = {"HONORA_CONCURRENCY": "2"}
TARGET_RATIO = 1.8


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _burst(pod: Any, parallel: int, params: dict[str, Any]) -> dict[str, Any]:
    from honora_tts.client import EndpointClient, HonoraClientError

    before = {job["id"] for job in pod.jobs()}
    outcomes: list[dict[str, Any]] = []

    def one(_: int) -> dict[str, Any]:
        try:
            result = client.synthesize(TEXT, params=params, deadline_s=600)
        except HonoraClientError as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        stages = result.timings.stages
        return {"ok": True, "client_ms": result.timings.client_ms, "job_id": result.job_id,
                "audio_s": result.duration_s, "worker_id": result.worker_id,
                "handler_ms": stages.total_ms if stages else None}

    with EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url) as client:
        cpu, watch = _cpu_s(), Stopwatch()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            outcomes = list(pool.map(one, range(parallel)))
        wall_ms, cpu_s = watch.ms(), _cpu_s() - cpu
    jobs = [job for job in pod.jobs() if job["id"] not in before]
    return {"parallel": parallel, "wall_ms": wall_ms, "bench_process_cpu_s": cpu_s,
            "outcomes": outcomes, "jobs": jobs}


def _worker_figures(burst: dict[str, Any]) -> dict[str, Any]:
    """Per worker, between two consecutive completions, the time not spent in the handler
    (``timings.total_ms`` of the worker's answer) when the next job was already submitted:
    the worker's idle per job. And the share of the run each worker spent in the handler."""
    handler_ms = {o["job_id"]: o["handler_ms"] for o in burst["outcomes"] if o["ok"]}
    done = []
    for job in burst["jobs"]:
        if job["id"] not in handler_ms or job["delay_ms"] is None or job["execution_ms"] is None:
            continue
        submitted = job["submitted_at"] * 1000
        end = submitted + job["delay_ms"] + job["execution_ms"]
        done.append((job["worker_id"], submitted, end, handler_ms[job["id"]]))
    gaps, busy = [], {}
    for worker in {w for w, *_ in done}:
        mine = sorted((end, submitted, handler) for w, submitted, end, handler in done
                      if w == worker)
        busy[worker] = sum(handler for *_, handler in mine) / burst["wall_ms"]
        gaps += [following[0] - current[0] - following[2]
                 for current, following in itertools.pairwise(mine)
                 if following[1] <= current[0]]
    return {"idle_gaps_ms": gaps, "busy_share": busy}


def run(options: BenchOptions, result: BenchResult) -> None:
    from honora_tts.localpod import LocalPod

    quiet_library_logs()
    sizes = (2, 4) if options.quick else (10, 40)
    tokens = 8 if options.quick else 16
    rounds = options.repeats_or(1, 1)
    params = {"max_new_tokens": tokens, "seed": 3}
    configurations: list[tuple[str, int, dict[str, str], tuple[int, ...]]] = [
        ("1w", 1, {}, sizes), ("2w", 2, {}, sizes),
        ("1w-2t", 1, {"OMP_NUM_THREADS": "2"}, sizes[:1]),
        ("1w-c2", 1, TWO_AT_ONCE, sizes),
        ("2w-c2", 2, TWO_AT_ONCE, sizes),
    ]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {c[0]: {} for c in configurations}
    pods: dict[str, Any] = {}
    try:
        for tag, workers, env, _ in configurations:
            pods[tag] = LocalPod(workers=workers, model="tiny",
                                 worker_env=env).start(wait_ready=False)
        for tag, pod in pods.items():
            pod.wait_ready(timeout_s=900)
            _burst(pod, len(pod.workers()), params)  # every worker has answered once
        for _ in range(rounds):
            for parallel in sizes:
                for tag, _, _, measured_sizes in configurations:
                    if parallel in measured_sizes:
                        burst = _burst(pods[tag], parallel, params)
                        runs[tag].setdefault(parallel, []).append(burst)
    finally:
        for pod in pods.values():
            pod.stop()

    result.data.update(params=params, text=TEXT, rounds=rounds, runs={
        tag: {str(k): v for k, v in by_size.items()} for tag, by_size in runs.items()
    })
    rates: dict[str, dict[int, float]] = {}
    for tag, by_size in runs.items():
        rates[tag] = {}
        for parallel in [size for size in sizes if size in by_size]:
            bursts = by_size[parallel]
            outcomes = [o for burst in bursts for o in burst["outcomes"]]
            ok = [o for o in outcomes if o["ok"]]
            failures = len(outcomes) - len(ok)
            per_round = summarize(
                sum(o["ok"] for o in burst["outcomes"]) / (burst["wall_ms"] / 1000)
                for burst in bursts
            )
            rates[tag][parallel] = per_round.p50
            figures = [_worker_figures(burst) for burst in bursts]
            for burst, worker in zip(bursts, figures, strict=True):
                burst["workers"] = worker
            latency = summarize(o["client_ms"] for o in ok)
            busy = summarize(v for worker in figures for v in worker["busy_share"].values())
            spread = f"latency p50 {fmt(latency.p50)} p95 {fmt(latency.p95)} ms"
            if rounds > 1:
                spread += f"; rate IQR {fmt(per_round.iqr)}, n={per_round.n}"
            result.add(f"throughput_{tag}_{parallel}", f"{tag}, {parallel} parallel: throughput",
                       per_round.p50, "jobs/s", spread=spread, target="0 failures",
                       met=failures == 0, note=f"{failures} failed" if failures else "")
            gaps = summarize(g for worker in figures for g in worker["idle_gaps_ms"])
            cpu = sum(burst["bench_process_cpu_s"] for burst in bursts) / len(bursts)
            result.add(f"idle_gap_{tag}_{parallel}", f"{tag}, {parallel} parallel: idle per job",
                       gaps.p50, "ms", spread=f"p95 {fmt(gaps.p95)}, n={gaps.n}; busy "
                       f"{fmt(busy.p50)}; bench CPU {fmt(cpu)} s")
    comparisons = (
        ("2w", "1w", "two workers vs one, as localpod starts them"),
        ("1w", "1w-2t", "one worker: 1 torch thread vs 2"),
        ("1w-c2", "1w", "one worker: HONORA_CONCURRENCY=2 vs 1"),
        ("2w-c2", "2w", "two workers: HONORA_CONCURRENCY=2 vs 1"),
        ("2w-c2", "1w-c2", "two workers holding two jobs vs one"),
    )
    for better, base, meaning in comparisons:
        for parallel in [size for size in sizes if size in rates[better] and size in rates[base]]:
            value = ratio(rates[better][parallel], rates[base][parallel])
            target = better == "2w" and base == "1w"
            result.add(f"ratio_{better}_{base}_{parallel}",
                       f"{better} / {base} throughput, {parallel} parallel", value, "x",
                       spread=meaning if parallel == sizes[0] else "",
                       target=f">= {TARGET_RATIO}" if target else "",
                       met=value >= TARGET_RATIO if target else None)
    result.notes.append(
        f"tiny model, {tokens} tokens per job; idle per job = time between a worker's "
        "consecutive completions not spent in its handler, when the next job was already "
        "waiting; busy = share of the run a worker spent in its handler; bench CPU = this "
        "process (client threads + localpod)"
    )
