"""``honora-tts localpod``: run a local RunPod-compatible endpoint in the foreground.

It prints the job API's base URL, endpoint id, API key and the management API's base and key
(``RUNPOD_MANAGEMENT_API_BASE``, ``RUNPOD_MANAGEMENT_API_KEY``: ``GET|PATCH /serverless/{id}``,
``/workers``, ``/releases``; the job API's key is refused there) as ``NAME=value`` lines (ready
to ``export``)
as soon as the control plane listens, writes the state file other processes attach through,
says when the workers are ready, and on SIGTERM or Ctrl-C stops every worker and removes the
state file.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from honora_tts.localpod.controlplane import LocalPodError, WorkerStartError
from honora_tts.localpod.discovery import (
    find_running,
    state_dir_for,
    state_file_path,
    write_state_file,
)
from honora_tts.localpod.images import ImageSpecError, parse_image_spec
from honora_tts.localpod.lb_pod import LoadBalancedPod
from honora_tts.localpod.load_balancer import PROCESSING_LIMIT_S
from honora_tts.localpod.pod import LocalPod
from honora_tts.log_safety import make_safe

DEFAULT_PORT = 8000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="honora-tts localpod",
        description="Run a local RunPod-compatible serverless endpoint with real workers.",
    )
    add = parser.add_argument
    add("--workers", type=int, default=2, help="current workers (default 2)")
    add("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default "
        f"{DEFAULT_PORT}; 0 picks a free one)")  # fmt: skip
    add("--endpoint-id", default="localpod", help="endpoint id in the URLs (default localpod)")
    add("--api-key", default=None, help="API key clients must send (default: random)")
    add("--management-api-key", default=None,
        help="the management API's own key (default: random; never the job API's key)")
    add("--model", default="tiny", help="tiny, a model name, or a checkpoint directory")
    add("--stale-workers", type=int, default=0,
        help="workers running the old batch-only image (a mixed-version fleet)")  # fmt: skip
    add("--streaming", action="store_true", help="workers register the streaming handler")
    add("--start-delay", type=float, default=0.0, metavar="S",
        help="delay every worker's start by S seconds")  # fmt: skip
    add("--max-concurrency", type=int, default=1, help="jobs per worker at once (default 1)")
    add("--rate-limit", type=int, default=None, metavar="N",
        help="answer 429 past N requests per 10 s per operation (default: no limit)")
    add("--execution-timeout", type=float, default=600.0, metavar="S",
        help="default executionTimeout in seconds (default 600)")  # fmt: skip
    add("--handler", type=Path, default=None, help="worker handler file (default "
        "worker/handler.py)")  # fmt: skip
    add("--state-dir", type=Path, default=None, help="where worker logs go")
    add("--no-restart", action="store_true", help="do not replace workers that die")
    add("--image", action="append", default=[], metavar="NAME:TAG=ENTRY",
        help="an image the endpoint can run: NAME:TAG stands for the worker entry file ENTRY "
        "(its workers get GIT_SHA=TAG); repeatable. PATCH /v2/serverless/{id} switches images "
        "in a rolling release")
    add("--worker-quota", type=int, default=None, metavar="N",
        help="the most workers PATCH workers.max may ask for (default: 5, RunPod's default "
        "account quota, or the workers started if more)")
    add("--start-image", default=None, metavar="NAME:TAG",
        help="the image the endpoint runs at start (default: the first --image)")
    add("--ready-timeout", type=float, default=300.0, metavar="S",
        help="give up when the workers are not ready after S seconds (default 300)")
    add("--load-balancing", action="store_true",
        help="a load-balancing endpoint instead: the workers serve HTTP themselves "
        "(HONORA_SERVE=http: OpenAI's /v1/audio/speech, /ping) behind one base URL that routes "
        "by X-Runpod-Worker-Id as RunPod does")
    return parser


def _state(pod: LocalPod | LoadBalancedPod) -> dict[str, Any]:
    state = {
        "base_url": pod.base_url,
        "endpoint_id": pod.endpoint_id,
        "api_key": pod.api_key,
        "pid": os.getpid(),
        "started_at": pod.started_at,
        "state_dir": str(pod.state_dir),
    }
    if isinstance(pod, LoadBalancedPod):
        workers = [{k: w[k] for k in ("id", "pid", "handler", "port")} for w in pod.workers()
                   if w["state"] != "dead"]
        return {**state, "mode": "load_balancing", "workers": workers}
    return {
        **state,
        "management_base": pod.management_base,
        "management_api_key": pod.management_api_key,
        "workers": [
            {k: w[k] for k in ("id", "pid", "kind", "handler")}
            for w in pod.workers()
            if w["state"] != "dead"
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the endpoint until SIGTERM or SIGINT; returns the exit code."""
    args = _parser().parse_args(argv)
    running = find_running(args.endpoint_id)
    if running is not None:
        print(
            f"localpod: endpoint {args.endpoint_id!r} already runs at {running['base_url']} "
            f"(pid {running['pid']})",
            file=sys.stderr,
        )
        return 1

    events = logging.getLogger("honora_tts.localpod")
    events.setLevel(logging.INFO)
    events_handler = logging.StreamHandler(sys.stdout)
    make_safe([events_handler])
    events.addHandler(events_handler)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    try:
        images = dict(parse_image_spec(spec) for spec in args.image)
    except ImageSpecError as exc:
        print(f"localpod: {exc}", file=sys.stderr)
        return 2
    if args.start_image is not None and args.start_image not in images:
        print(f"localpod: --start-image {args.start_image!r} is not one of the --image "
              f"references ({', '.join(images) or 'none given'})", file=sys.stderr)
        return 2
    if args.load_balancing:
        pod: LocalPod | LoadBalancedPod | None = _load_balanced_pod(args)
        if pod is None:
            return 2
    else:
        pod = LocalPod(
            args.workers, model=args.model, port=args.port, endpoint_id=args.endpoint_id,
            api_key=args.api_key, management_api_key=args.management_api_key,
            stale_workers=args.stale_workers, streaming=args.streaming,
            start_delay_s=args.start_delay, max_concurrency_per_worker=args.max_concurrency,
            rate_limit_per_10s=args.rate_limit, execution_timeout_s=args.execution_timeout,
            handler_path=args.handler,
            state_dir=args.state_dir or state_dir_for(args.endpoint_id),
            restart_dead_workers=not args.no_restart, images=images or None,
            start_image=args.start_image, worker_quota=args.worker_quota,
        )  # fmt: skip
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    state_file = state_file_path(args.endpoint_id)
    try:
        try:
            pod.start(wait_ready=False)
        except (LocalPodError, ValueError) as exc:
            print(f"localpod: {exc}", file=sys.stderr)
            return 1
        write_state_file(state_file, _state(pod))
        for line in _banner(pod, args):
            print(line)
        for name, value in pod.client_env().items():
            print(f"{name}={value}")
        print("localpod: workers are loading; requests wait until one is ready", flush=True)
        return _serve(pod, stop, state_file, args.ready_timeout)
    finally:
        pod.stop()
        state_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("localpod: stopped", flush=True)


def _load_balanced_pod(args: argparse.Namespace) -> LoadBalancedPod | None:
    """``--load-balancing``'s pod, or None (after saying why) for queue-only flags."""
    queue_only = [flag for flag, given in (
        ("--stale-workers", args.stale_workers), ("--streaming", args.streaming),
        ("--rate-limit", args.rate_limit), ("--image", args.image),
        ("--start-image", args.start_image), ("--start-delay", args.start_delay),
        ("--management-api-key", args.management_api_key), ("--worker-quota", args.worker_quota),
    ) if given]
    if queue_only:
        print(f"localpod: {', '.join(queue_only)} belong(s) to the queue endpoint, not "
              "--load-balancing (every load-balancing worker streams)", file=sys.stderr)
        return None
    return LoadBalancedPod(
        args.workers, model=args.model, port=args.port, endpoint_id=args.endpoint_id,
        api_key=args.api_key, max_concurrency_per_worker=args.max_concurrency,
        handler_path=args.handler, state_dir=args.state_dir or state_dir_for(args.endpoint_id),
        restart_dead_workers=not args.no_restart,
        processing_limit_s=min(args.execution_timeout, PROCESSING_LIMIT_S),
    )  # fmt: skip


def _banner(pod: LocalPod | LoadBalancedPod, args: argparse.Namespace) -> list[str]:
    if isinstance(pod, LoadBalancedPod):
        return [
            (f"localpod: load-balancing endpoint {pod.endpoint_id} at {pod.base_url} "
            f"({args.workers} worker(s), model {args.model}; logs in {pod.state_dir}/logs)"),
            f"localpod: OpenAI's speech API at {pod.base_url}/v1 (the API key as the key)",
        ]
    total = args.workers + args.stale_workers
    return [
        (f"localpod: endpoint {pod.endpoint_id} at {pod.base_url} "
        f"({total} worker(s), model {args.model}; logs in {pod.state_dir}/logs)"),
        (f"localpod: management API at {pod.management_base}/serverless/{pod.endpoint_id} "
        f"(image {pod.start_image})"),
    ]


def _serve(pod: LocalPod | LoadBalancedPod, stop: threading.Event, state_file: Path,
           ready_timeout: float) -> int:
    started = time.monotonic()
    ready = False
    recorded = _worker_key(pod)
    while not stop.is_set():
        if not ready:
            try:
                pod.wait_ready(timeout_s=0.5)
                ready = True
                count = sum(w["state"] in pod.ready_states for w in pod.workers())
                print(
                    f"localpod: ready: {count} worker(s) in {time.monotonic() - started:.1f} s",
                    flush=True,
                )
            except WorkerStartError as exc:
                print(f"localpod: {exc}", file=sys.stderr, flush=True)
                return 1
            except LocalPodError:
                if time.monotonic() - started > ready_timeout:
                    print(
                        f"localpod: workers not ready after {ready_timeout:g} s",
                        file=sys.stderr, flush=True,
                    )  # fmt: skip
                    return 1
        else:
            stop.wait(0.5)
        key = _worker_key(pod)
        if key != recorded:
            recorded = key
            write_state_file(state_file, _state(pod))
    print("localpod: stopping", flush=True)
    return 0


def _worker_key(pod: LocalPod | LoadBalancedPod) -> tuple[tuple[str, int | None, bool], ...]:
    return tuple((w["id"], w["pid"], w["state"] == "dead") for w in pod.workers())
