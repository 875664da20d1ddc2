""":class:`LocalPod`: a control plane on 127.0.0.1 (uvicorn in a background thread) plus N real
worker processes, started and stopped as one object."""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from honora_tts import checkout
from honora_tts.localpod.app import build_app
from honora_tts.localpod.background_server import HOST, BackgroundServer, ServerStartError
from honora_tts.localpod.controlplane import (
    ControlPlane,
    LocalPodError,
    PodSettings,
)
from honora_tts.localpod.images import ImageCatalog
from honora_tts.localpod.pod_base import PodBase
from honora_tts.localpod.releases import LEGACY_IMAGES, ReleaseManager
from honora_tts.localpod.supervisor import Supervisor, threads_per_worker, worker_environment

DEFAULT_HANDLER = checkout.worker_entry()
DEFAULT_STALE_HANDLER = checkout.STALE_HANDLER

T = TypeVar("T")


def model_environment(model: str) -> dict[str, str]:
    """``--model tiny|NAME|PATH`` -> the worker's model variables: an existing directory (or
    anything that looks like a path) is a checkpoint, anything else a model name."""
    looks_like_path = os.sep in model or model.startswith(".") or Path(model).is_dir()
    if looks_like_path:
        return {"HONORA_XTTS_CHECKPOINT": str(Path(model).expanduser().resolve())}
    return {"HONORA_XTTS_MODEL": model}


class LocalPod(PodBase):
    """A local RunPod-compatible serverless endpoint running real worker processes.

    Use it as a context manager (``with LocalPod(workers=2) as pod: ...``) or call
    :meth:`start` and :meth:`stop`. Point a client at :attr:`base_url` with :attr:`api_key` and
    :attr:`endpoint_id` (see :meth:`client_env`).

    ``workers`` run ``handler_path`` (default :func:`honora_tts.checkout.worker_entry`: the
    checkout's ``worker/handler.py``, else the package's own entry); ``stale_workers`` run the
    old batch-only image (``stale_handler_path``, default ``tests/fixtures/stale_handler.py``).
    ``model`` becomes ``HONORA_XTTS_MODEL`` or ``HONORA_XTTS_CHECKPOINT``; ``streaming`` sets
    ``HONORA_STREAMING=1``; ``max_concurrency_per_worker`` sets ``HONORA_CONCURRENCY``;
    ``worker_env`` adds or overrides any worker variable. ``state_dir`` keeps the worker logs
    (default: a temporary directory removed by :meth:`stop`). ``execution_timeout_s`` is the
    endpoint's default ``executionTimeout``; ``enforce_policy_minimums=False`` lifts RunPod's
    5 s / 10 s minimums for short tests; a timed-out job's worker is killed when it still holds
    the job ``stop_grace_s`` after the stop signal; ``poll_hold_s`` is how long job-take and
    job-stop polls wait for work. See the package docstring for the RunPod behaviours.

    ``images`` maps image references (``NAME:TAG``) to worker entry files: ``workers`` then start
    from ``start_image`` (default: the first), each with ``GIT_SHA=TAG`` and a ``BUILD_TIME``,
    and the management API (``PATCH /v2/serverless/{id}``) can switch the endpoint to another
    of them in a rolling release (see :mod:`honora_tts.localpod.releases`). Without ``images``
    the workers report ``localpod/honora-tts:current`` (or ``:stale``) as their image. The
    management API has a key of its own, ``management_api_key`` (default: random), which must
    differ from ``api_key``; ``worker_quota`` caps its ``workers.max`` (default
    ``max(5, workers + stale_workers)``).
    """

    ready_states = ("ready", "running")

    def __init__(
        self,
        workers: int = 2,
        *,
        model: str = "tiny",
        port: int = 0,
        endpoint_id: str = "localpod",
        api_key: str | None = None,
        stale_workers: int = 0,
        streaming: bool = False,
        start_delay_s: float = 0.0,
        max_concurrency_per_worker: int = 1,
        rate_limit_per_10s: int | None = None,
        result_retention_s: float = 1800,
        runsync_retention_s: float = 60,
        worker_env: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        handler_path: Path | None = None,
        restart_dead_workers: bool = True,
        stale_handler_path: Path | None = None,
        execution_timeout_s: float = 600.0,
        enforce_policy_minimums: bool = True,
        stop_grace_s: float = 3.0,
        poll_hold_s: float = 5.0,
        images: Mapping[str, Path | str] | None = None,
        start_image: str | None = None,
        management_api_key: str | None = None,
        worker_quota: int | None = None,
    ) -> None:
        if workers < 0 or stale_workers < 0 or workers + stale_workers < 1:
            raise ValueError("a pod needs at least one worker")
        if max_concurrency_per_worker < 1:
            raise ValueError("max_concurrency_per_worker must be at least 1")
        self.catalog = ImageCatalog(
            {ref: Path(entry) for ref, entry in images.items()} if images else {
                LEGACY_IMAGES["current"]: Path(handler_path or DEFAULT_HANDLER),
                LEGACY_IMAGES["stale"]: Path(stale_handler_path or DEFAULT_STALE_HANDLER),
            }
        )
        self._from_images = bool(images)
        self.start_image = start_image or self.catalog.first.reference
        start_entry = self.catalog.get(self.start_image).entry
        if images and handler_path is None:
            handler_path = start_entry
        self.endpoint_id = endpoint_id
        self.api_key = api_key or f"localpod-{secrets.token_urlsafe(24)}"
        self.management_api_key = (
            management_api_key or f"localpod-manage-{secrets.token_urlsafe(24)}"
        )
        if self.management_api_key == self.api_key:
            raise ValueError(
                "the management API key must differ from the job API key: whoever can submit "
                "jobs must not be able to change what the workers run"
            )
        if worker_quota is not None and worker_quota < workers + stale_workers:
            raise ValueError(
                f"worker_quota {worker_quota} is below the {workers + stale_workers} workers "
                "the pod starts with"
            )
        self._worker_quota = worker_quota
        self.model = model
        self.streaming = streaming
        self._requested = (workers, stale_workers, start_delay_s)
        self._port = port
        self._worker_env = dict(worker_env or {})
        self._max_concurrency = max_concurrency_per_worker
        super().__init__(state_dir)
        self._settings = PodSettings(
            endpoint_id=endpoint_id,
            api_key=self.api_key,
            worker_token=secrets.token_hex(16),
            current_handler=Path(handler_path or DEFAULT_HANDLER).resolve(),
            stale_handler=Path(stale_handler_path or DEFAULT_STALE_HANDLER).resolve(),
            execution_timeout_s=execution_timeout_s,
            result_retention_s=result_retention_s,
            runsync_retention_s=runsync_retention_s,
            rate_limit_per_10s=rate_limit_per_10s,
            enforce_policy_minimums=enforce_policy_minimums,
            restart_dead_workers=restart_dead_workers,
            stop_grace_s=stop_grace_s,
            poll_hold_s=poll_hold_s,
        )
        self._plane: ControlPlane | None = None
        self._releases: ReleaseManager | None = None
        self.base_url = ""
        self.endpoint_url = ""
        self.started_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, wait_ready: bool = True, timeout_s: float = 120) -> LocalPod:
        """Serve the control plane, start the workers and (by default) wait until every worker
        has loaded its model and asked for work."""
        if self._http is not None:
            raise LocalPodError("this LocalPod is already started")
        if not self._settings.current_handler.exists():
            raise LocalPodError(f"worker handler not found: {self._settings.current_handler}")
        self.started_at = time.time()
        self._prepare_state_dir("localpod")
        http = BackgroundServer(port=self._port, name=f"localpod-{self.endpoint_id}")
        try:
            port = http.listen()
        except ServerStartError as exc:
            raise LocalPodError(str(exc)) from exc
        self._http = http
        self.base_url = f"http://{HOST}:{port}/v2"
        self.endpoint_url = f"{self.base_url}/{self.endpoint_id}"

        assert self.state_dir is not None
        extra = {
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(threads_per_worker(sum(self._requested[:2]))),
            "HONORA_ALLOW_PRIVATE_URLS": "1",
            "HONORA_STREAMING": "1" if self.streaming else "0",
            "HONORA_CONCURRENCY": str(self._max_concurrency),
            **model_environment(self.model),
            **self._worker_env,
        }
        env = worker_environment(
            parent_env=os.environ, api_root=self.base_url, endpoint_id=self.endpoint_id,
            worker_token=self._settings.worker_token, extra=extra,
        )  # fmt: skip
        supervisor = Supervisor(log_dir=self.state_dir / "logs", env=env)
        self._plane = ControlPlane(self._settings, supervisor)
        self._releases = ReleaseManager(
            self._plane, self.catalog, start_image=self.start_image,
            workers_max=sum(self._requested[:2]), name=self.endpoint_id,
            job_api_base=self.base_url, reserved_env=frozenset(extra),
            worker_quota=self._worker_quota,
        )  # fmt: skip
        self._plane.may_take = self._releases.may_take
        try:
            http.start(build_app(self._plane, self._releases, self.management_api_key))
        except ServerStartError as exc:
            self.stop()
            raise LocalPodError("the localpod control plane did not start") from exc
        atexit.register(self.stop)
        workers, stale, delay = self._requested
        self._call(self._plane.start)
        self._call(self._releases.start)
        try:
            if workers and self._from_images:
                self._call(self._releases.start_workers, workers, start_delay_s=delay)
            elif workers:
                self.add_workers(workers, start_delay_s=delay)
            if stale:
                self.add_workers(stale, stale=True, start_delay_s=delay)
            if wait_ready:
                self.wait_ready(timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every worker (no process is left behind), then the control plane."""
        http, plane = self._http, self._plane
        if http is None:
            return
        self._http = None
        atexit.unregister(self.stop)
        if plane is not None and http.running:
            grace = self._settings.stop_grace_s
            try:
                http.run(plane.shutdown(grace), timeout_s=grace + 30)
            except (concurrent.futures.TimeoutError, RuntimeError):
                plane.supervisor.kill_all()
        elif plane is not None:
            plane.supervisor.kill_all()
        http.stop()
        if self._created_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # ------------------------------------------------------------------ calls into the loop

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the control plane's event loop and return its result."""
        if self._http is None or self._plane is None:
            raise LocalPodError("this LocalPod is not running; call start() first")
        try:
            return self._http.call(fn, *args, **kwargs)
        except ServerStartError as exc:
            raise LocalPodError("this LocalPod's control plane has stopped") from exc

    @property
    def plane(self) -> ControlPlane:
        if self._plane is None:
            raise LocalPodError("this LocalPod is not running; call start() first")
        return self._plane

    # ------------------------------------------------------------------ public API

    def _client_env_extra(self) -> dict[str, str]:
        return {"RUNPOD_MANAGEMENT_API_BASE": self.management_base,
                "RUNPOD_MANAGEMENT_API_KEY": self.management_api_key}

    @property
    def management_base(self) -> str:
        """Base URL of the management API (``{base}/serverless/{endpoint_id}``): the job
        API's base, as both share the port."""
        return self.base_url

    def workers(self) -> list[dict[str, Any]]:
        """Every worker this pod started (dead ones included): id, pid, state
        (initializing|ready|running|dead), kind (current|stale), jobs_done, started_at, ..."""
        return self._call(self.plane.workers_view)

    def jobs(self) -> list[dict[str, Any]]:
        """The job table: id, state, route, worker_id, delay_ms, execution_ms, takes, ..."""
        return self._call(self.plane.table.snapshot)

    def counters(self) -> dict[str, int]:
        """jobs_submitted, jobs_taken, jobs_done_posts, duplicate_done_posts, ... (see
        :data:`~honora_tts.localpod.jobs.COUNTER_NAMES` and ``PLANE_COUNTERS``)."""
        return self._call(self.plane.all_counters)

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` answers."""
        return self._call(self.plane.health_view)

    def add_workers(
        self, n: int = 1, *, stale: bool = False, start_delay_s: float = 0.0
    ) -> list[str]:
        """Start ``n`` more workers (of the old batch-only image when ``stale``), optionally
        after a delay; returns their ids."""
        return self._call(self.plane.add_workers, n, stale=stale, start_delay_s=start_delay_s)

    def kill_worker(self, worker_id: str | None = None, *, busy: bool = True) -> str:
        """SIGKILL a worker (by default one that is running a job) and return its id. Its jobs
        end FAILED (``worker_died``) and the supervisor starts a replacement."""
        return self._call(self.plane.kill_worker, worker_id, busy=busy)

    def log_tail(self, worker_id: str, max_bytes: int = 4000) -> str:
        """The end of a worker's log file."""
        worker = self._call(self.plane.supervisor.workers.get, worker_id)
        if worker is None:
            raise LocalPodError(f"no worker {worker_id!r}")
        return worker.log_tail(max_bytes)

    def _init_crashes(self) -> list[str]:
        return list(self._call(lambda: list(self.plane.init_crashes)))
