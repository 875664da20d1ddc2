""":class:`LoadBalancedPod`: localpod's load-balancing endpoint, N real HTTP workers
(``HONORA_SERVE=http``, the unmodified worker entry) behind one base URL that routes as RunPod's
load balancer does (:mod:`honora_tts.localpod.load_balancer`).

Each worker is its own "machine": its own port (``PORT``), its own cache directory (latents,
downloaded voices), so a voice's latents computed on one worker are not on another's disk, as
on RunPod. What they share is what a RunPod endpoint's workers can share: the model checkpoint
(the image) and the voice library (a network volume, ``HONORA_VOICE_LIBRARY``). A worker that
dies is replaced by a new one with a new id and an empty cache.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from honora_tts import checkout
from honora_tts.localpod.background_server import HOST, BackgroundServer, ServerStartError
from honora_tts.localpod.controlplane import LocalPodError
from honora_tts.localpod.load_balancer import (
    HOLD_S,
    MAX_BODY_BYTES,
    PROCESSING_LIMIT_S,
    Balancer,
    Upstream,
    build_app,
)
from honora_tts.localpod.pod_base import PodBase
from honora_tts.localpod.supervisor import Supervisor, WorkerProcess, threads_per_worker

#: How often each worker's /ping is asked.
PING_INTERVAL_S = 0.25
#: A replacement for a worker that died while loading starts after this (then doubles).
RESTART_BACKOFF_S = (1.0, 30.0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _model_environment(model: str) -> dict[str, str]:
    """The workers' model: ``tiny`` is built here once and handed to every worker as a
    checkpoint (their cache directories are their own); a path is a checkpoint; any other name
    is passed on."""
    if model == "tiny":
        from honora_tts.model.checkpoints import tiny_checkpoint_dir

        return {"HONORA_XTTS_CHECKPOINT": str(tiny_checkpoint_dir(0))}
    looks_like_path = os.sep in model or model.startswith(".") or Path(model).is_dir()
    if looks_like_path:
        return {"HONORA_XTTS_CHECKPOINT": str(Path(model).expanduser().resolve())}
    return {"HONORA_XTTS_MODEL": model}


class LoadBalancedPod(PodBase):
    """A local RunPod load-balancing endpoint: ``with LoadBalancedPod(workers=3) as pod:`` then
    point clients at :attr:`base_url` with :attr:`api_key` (:meth:`client_env`; OpenAI's client:
    ``base_url=pod.base_url + "/v1"``).

    ``model``: ``tiny`` (default), a checkpoint directory or a model name.
    ``max_concurrency_per_worker``: requests one worker holds at once (its
    ``HONORA_CONCURRENCY``, and what the balancer counts as at capacity). ``worker_env``
    adds or overrides worker variables. ``hold_s``, ``processing_limit_s`` and
    ``max_body_bytes`` default to RunPod's 2 minutes, 5.5 minutes and 30 MB.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        model: str = "tiny",
        port: int = 0,
        endpoint_id: str = "localpod",
        api_key: str | None = None,
        max_concurrency_per_worker: int = 1,
        worker_env: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        handler_path: Path | None = None,
        restart_dead_workers: bool = True,
        hold_s: float = HOLD_S,
        processing_limit_s: float = PROCESSING_LIMIT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if workers < 1:
            raise ValueError("a pod needs at least one worker")
        if max_concurrency_per_worker < 1:
            raise ValueError("max_concurrency_per_worker must be at least 1")
        self.endpoint_id = endpoint_id
        self.api_key = api_key or f"localpod-{secrets.token_urlsafe(24)}"
        self.model = model
        self.handler_path = Path(handler_path or checkout.worker_entry()).resolve()
        self._workers = workers
        self._port = port
        self._concurrency = max_concurrency_per_worker
        self._worker_env = dict(worker_env or {})
        super().__init__(state_dir)
        self._restart = restart_dead_workers
        self._processing_limit_s = processing_limit_s
        self._max_body_bytes = max_body_bytes
        self.balancer = Balancer(capacity=max_concurrency_per_worker, hold_s=hold_s)
        self._supervisor: Supervisor | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._machines = 0
        self._early_deaths = 0
        self.init_crashes: list[str] = []
        self.base_url = ""
        self.started_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, wait_ready: bool = True, timeout_s: float = 120) -> LoadBalancedPod:
        """Serve the balancer, start the workers and (by default) wait until each answers 200
        on /ping."""
        if self._http is not None:
            raise LocalPodError("this LoadBalancedPod is already started")
        if not self.handler_path.exists():
            raise LocalPodError(f"worker entry not found: {self.handler_path}")
        self.started_at = time.time()
        self._prepare_state_dir("localpod-lb")
        assert self.state_dir is not None
        http = BackgroundServer(port=self._port, name=f"localpod-lb-{self.endpoint_id}")
        try:
            port = http.listen()
        except ServerStartError as exc:
            raise LocalPodError(str(exc)) from exc
        self._http = http
        self.base_url = f"http://{HOST}:{port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("RUNPOD_")}
        env.update({
            "HONORA_SERVE": "http", "HONORA_HTTP_HOST": HOST, "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")
            or str(threads_per_worker(self._workers)),
            "HONORA_ALLOW_PRIVATE_URLS": "1",
            "HONORA_CONCURRENCY": str(self._concurrency),
            "HONORA_VOICE_LIBRARY": str(self.state_dir / "voice-library"),
            **_model_environment(self.model),
        })
        self._supervisor = Supervisor(log_dir=self.state_dir / "logs", env=env)
        app = build_app(self.balancer, self.api_key, kill_worker=self._kill,
                        max_body_bytes=self._max_body_bytes,
                        processing_limit_s=self._processing_limit_s)
        try:
            http.start(app)
        except ServerStartError as exc:
            self.stop()
            raise LocalPodError("the localpod load balancer did not start") from exc
        atexit.register(self.stop)
        try:
            self._call_soon(self._begin)
            if wait_ready:
                self.wait_ready(timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _begin(self) -> None:
        for _ in range(self._workers):
            self._add_worker()
        self._monitor = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL what is left), then the balancer."""
        http, supervisor = self._http, self._supervisor
        if http is None:
            return
        self._http = None
        atexit.unregister(self.stop)
        if supervisor is not None and http.running:
            try:
                http.run(self._shutdown(supervisor), timeout_s=30)
            except Exception:  # noqa: BLE001 - whatever happened, no worker is left behind
                supervisor.kill_all()
        elif supervisor is not None:
            supervisor.kill_all()
        http.stop()
        if self._created_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def _shutdown(self, supervisor: Supervisor, grace_s: float = 5.0) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        supervisor.terminate_all()
        deadline = time.monotonic() + grace_s
        while supervisor.running() and time.monotonic() < deadline:
            supervisor.reap()
            await asyncio.sleep(0.05)
        supervisor.kill_all()

    def _call_soon(self, fn: Any, *args: Any) -> Any:
        if self._http is None:
            raise LocalPodError("this LoadBalancedPod is not running; call start() first")
        try:
            return self._http.call(fn, *args)
        except ServerStartError as exc:
            raise LocalPodError("this LoadBalancedPod's balancer has stopped") from exc

    # ------------------------------------------------------------------ workers (on the loop)

    def _add_worker(self, start_delay_s: float = 0.0) -> WorkerProcess:
        assert self._supervisor is not None and self.state_dir is not None
        self._machines += 1
        port = _free_port()
        overrides = {
            "PORT": str(port),
            "HONORA_CACHE_DIR": str(self.state_dir / "machines" / str(self._machines)),
            **self._worker_env,
        }
        worker = self._supervisor.add("current", self.handler_path,
                                      start_delay_s=start_delay_s, env_overrides=overrides)
        self.balancer.upstreams[worker.id] = Upstream(id=worker.id, port=port)
        self._supervisor.start_due()
        return worker

    async def _watch(self) -> None:
        """Start due workers, notice dead ones (and replace them), ask each /ping."""
        assert self._supervisor is not None
        supervisor = self._supervisor
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                supervisor.start_due()
                for dead in supervisor.reap():
                    self._died(dead)
                live = [u for u in self.balancer.upstreams.values() if u.active]
                await asyncio.gather(*(self._ping(client, u) for u in live))
                self.balancer.changed()
                await asyncio.sleep(PING_INTERVAL_S)

    async def _ping(self, client: httpx.AsyncClient, upstream: Upstream) -> None:
        try:
            status = (await client.get(f"{upstream.url}/ping")).status_code
        except httpx.HTTPError:
            status = 0
        upstream.pings[status] += 1
        if upstream.health == "dead":
            return
        if status == 200:
            if upstream.ready_at is None:
                upstream.ready_at = time.time()
            upstream.health = "ready"
        elif status == 204 or (status == 0 and upstream.ready_at is None):
            upstream.health = "initializing"  # not listening yet while it imports
        else:
            upstream.health = "unhealthy"

    def _died(self, worker: WorkerProcess) -> None:
        upstream = self.balancer.upstreams.get(worker.id)
        was_ready = upstream is not None and upstream.ready_at is not None
        if upstream is not None:
            upstream.health = "dead"
        self.balancer.counters["workers_died"] += 1
        if not was_ready and worker.killed_for is None:
            self.init_crashes.append(worker.id)
            self._early_deaths += 1
        else:
            self._early_deaths = 0
        if self._restart and worker.killed_for != "stop":
            low, high = RESTART_BACKOFF_S
            delay = 0.0 if self._early_deaths == 0 else min(high, low * 2 ** (self._early_deaths - 1))
            self._add_worker(start_delay_s=delay)
            self.balancer.counters["workers_replaced"] += 1

    def _kill(self, worker_id: str | None = None) -> str:
        assert self._supervisor is not None
        candidates = [u for u in self.balancer.upstreams.values() if u.active
                      and (worker_id is None or u.id == worker_id)]
        if not candidates:
            raise LookupError(f"no live worker {worker_id!r}" if worker_id else "no live worker")
        upstream = candidates[0]
        process = self._supervisor.workers[upstream.id]
        self._supervisor.kill(process, "killed on request")
        self._died(process)
        return upstream.id

    # ------------------------------------------------------------------ public API

    def _client_env_extra(self) -> dict[str, str]:
        return {"HONORA_ENDPOINT_MODE": "load_balancing"}

    def workers(self) -> list[dict[str, Any]]:
        """Every worker started (dead ones included): id, pid, port, health (also as
        ``state``: initializing|ready|unhealthy|dead), in_flight, served, handler, log_path."""
        def view() -> list[dict[str, Any]]:
            assert self._supervisor is not None
            rows = []
            for row in self.balancer.view():
                process = self._supervisor.workers[row["id"]]
                rows.append({**row, "pid": process.pid, "handler": str(process.handler_path),
                             "log_path": str(process.log_path), "state": row["health"]})
            return rows

        return list(self._call_soon(view))

    def counters(self) -> dict[str, int]:
        """requests, affinity_routed, affinity_fallbacks, affinity_worker_gone, held,
        no_workers, request_too_large, processing_timeouts, worker_lost, workers_died, ..."""
        return dict(self._call_soon(lambda: dict(self.balancer.counters)))

    def kill_worker(self, worker_id: str | None = None) -> str:
        """SIGKILL a worker (by default the first live one) and return its id; a replacement
        starts (with a new id and an empty cache)."""
        try:
            return str(self._call_soon(self._kill, worker_id))
        except LookupError as exc:
            raise LocalPodError(str(exc)) from exc

    def add_workers(self, n: int = 1) -> list[str]:
        """Start ``n`` more workers; returns their ids."""
        return [w.id for w in (self._call_soon(self._add_worker) for _ in range(n))]

    def log_tail(self, worker_id: str, max_bytes: int = 4000) -> str:
        """The end of a worker's log file."""
        assert self._supervisor is not None
        worker = self._supervisor.workers.get(worker_id)
        if worker is None:
            raise LocalPodError(f"no worker {worker_id!r}")
        return worker.log_tail(max_bytes)

    def _init_crashes(self) -> list[str]:
        return list(self.init_crashes)
