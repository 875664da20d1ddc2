"""Worker processes: start real RunPod workers (an unmodified handler file run by the runpod SDK's
worker loop) pointed at the control plane, notice when they exit, kill them on command.

Each worker is its own session and process group (the SDK forks a heartbeat process next to
it), so stopping or killing a worker signals the whole group and nothing is left behind. On
Linux a worker also gets ``PR_SET_PDEATHSIG``: if the process that started it dies without
stopping it, the kernel kills the worker. Workers never share the parent's terminal: stdin is
/dev/null, stdout and stderr go to one log file per worker under the state directory, readable
by its owner only (0600 in a 0700 directory: a log may hold what a job carried). A worker whose
process cannot be started at all (``execve`` refuses its environment, the interpreter is gone)
is marked dead with the reason in its log, and reported like a worker that died loading.

A worker's own variables (a release's ``env``, its image's) never replace the pod's wiring:
the ``RUNPOD_*`` variables the pod sets are applied after them.

The SDK reads its configuration from the environment when it is imported:

- ``RUNPOD_WEBHOOK_GET_JOB`` (``$ID`` = worker id; the SDK appends ``&job_in_progress=``, so the
  URL carries a query already), ``RUNPOD_WEBHOOK_POST_OUTPUT`` (``$ID`` = job id,
  ``$RUNPOD_POD_ID`` = worker id), ``RUNPOD_WEBHOOK_POST_STREAM``, ``RUNPOD_WEBHOOK_PING``,
  ``RUNPOD_POD_ID``, ``RUNPOD_AI_API_KEY`` (pings are only sent when it is set),
  ``RUNPOD_PING_INTERVAL`` (ms; the SDK floors it to whole seconds, so it must be >= 1000).
- Fitness checks (``rp_fitness``) run before the worker loop. ``RUNPOD_SKIP_AUTO_SYSTEM_CHECKS``
  skips the automatic memory (4 GB free per worker), disk and network checks; the network check
  opens a connection to 8.8.8.8:53, which a local endpoint must never do.
  ``RUNPOD_SKIP_GPU_CHECK`` skips the automatic GPU check (on a CPU machine it would skip itself
  after ``nvidia-smi`` fails; on a GPU machine it would run RunPod's gpu_test binary at every
  cold start). Both can be overridden through ``worker_env``. Checks a handler registers itself
  still run.
- Every other ``RUNPOD_*`` variable of the parent is dropped (e.g. ``RUNPOD_REALTIME_PORT`` would
  turn the worker into an HTTP server).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

WorkerKind = Literal["current", "stale"]
WorkerPhase = Literal["waiting", "initializing", "ready", "dead"]

PING_INTERVAL_MS = 3000


@dataclass
class WorkerProcess:
    """One worker: its process once started, and what happened to it."""

    id: str
    kind: WorkerKind
    handler_path: Path
    log_path: Path
    start_at: float  # monotonic time at which the process is (or was) started
    proc: subprocess.Popen[bytes] | None = None
    phase: WorkerPhase = "waiting"
    started_at: float | None = None  # wall clock
    ready_at: float | None = None  # wall clock: first job-take
    exited_at: float | None = None
    exit_code: int | None = None
    killed_for: str | None = None  # why localpod killed it, when it did
    start_error: str | None = None  # why its process could not be started, when it could not
    jobs_done: int = 0
    last_ping_at: float | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.phase != "dead"

    def log_tail(self, max_bytes: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - max_bytes))
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


def worker_environment(
    *,
    parent_env: Mapping[str, str],
    api_root: str,
    endpoint_id: str,
    worker_token: str,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The environment every worker of one pod shares (the worker id is added per worker).

    ``api_root`` is ``http://127.0.0.1:PORT/v2``; the worker-facing paths sit next to the public
    ones under the endpoint id, as on RunPod. The token authenticates the worker to the control
    plane; it travels in the query string because the SDK's Authorization header may come from
    ``~/.runpod/config.toml`` instead of the environment."""
    env = {key: value for key, value in parent_env.items() if not key.startswith("RUNPOD_")}
    base = f"{api_root}/{endpoint_id}"
    query = f"?token={worker_token}"
    env.update(
        RUNPOD_WEBHOOK_GET_JOB=f"{base}/job-take/$ID{query}",
        RUNPOD_WEBHOOK_POST_OUTPUT=f"{base}/job-done/$RUNPOD_POD_ID/$ID{query}",
        RUNPOD_WEBHOOK_POST_STREAM=f"{base}/job-stream/$RUNPOD_POD_ID/$ID{query}",
        RUNPOD_WEBHOOK_PING=f"{base}/ping/$RUNPOD_POD_ID{query}",
        RUNPOD_AI_API_KEY=worker_token,
        RUNPOD_ENDPOINT_ID=endpoint_id,
        RUNPOD_PING_INTERVAL=str(PING_INTERVAL_MS),
        RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="true",
        RUNPOD_SKIP_GPU_CHECK="true",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def threads_per_worker(workers: int) -> int:
    """Each worker's share of the cores (its ``OMP_NUM_THREADS``), less one core for localpod
    itself and its clients. Torch otherwise starts one thread per core in every worker, and
    threads on the same cores thrash: on 2 cores two workers made an 8-token clip take 5 to
    17 s instead of under 1 s; one worker with 2 threads served 3 to 5 times fewer jobs than
    with 1 thread while its clients polled (``python -m benchmarks p3``)."""
    cores = max(1, (os.cpu_count() or 1) - 1)
    return max(1, cores // max(1, workers))


# Runs first in a new worker: ask the kernel to SIGKILL it when its parent goes away (Linux), then
# become the real worker. ``PR_SET_PDEATHSIG`` (1) survives exec; a child whose parent already
# died before the call sees a different parent pid and exits.
_LAUNCHER = (
    "import os, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None).prctl(1, 9)\n"
    "    if os.getppid() != int(sys.argv[2]):\n"
    "        sys.exit(70)\n"
    "os.execv(sys.executable, [sys.executable, sys.argv[1]])\n"
)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Starts, watches and stops the worker processes of one pod. Called from one thread."""

    def __init__(self, *, log_dir: Path, env: Mapping[str, str], python: str = sys.executable):
        self._log_dir = log_dir
        self._env = dict(env)
        self._python = python
        self._serial = 0
        self.workers: dict[str, WorkerProcess] = {}
        self._failed_starts: list[WorkerProcess] = []

    def add(
        self,
        kind: WorkerKind,
        handler_path: Path,
        *,
        start_delay_s: float = 0.0,
        env_overrides: Mapping[str, str] | None = None,
    ) -> WorkerProcess:
        """Register a worker; it starts at the next :meth:`start_due` after the delay."""
        self._serial += 1
        worker_id = f"{'stale' if kind == 'stale' else 'worker'}-{self._serial}"
        worker = WorkerProcess(
            id=worker_id, kind=kind, handler_path=handler_path,
            log_path=self._log_dir / f"{worker_id}.log",
            start_at=time.monotonic() + max(0.0, start_delay_s),
            env_overrides=dict(env_overrides or {}),
        )  # fmt: skip
        self.workers[worker_id] = worker
        return worker

    def start_due(self) -> list[WorkerProcess]:
        """Start every registered worker whose start time has come."""
        now = time.monotonic()
        started = []
        for worker in self.workers.values():
            if worker.phase == "waiting" and worker.start_at <= now and self._spawn(worker):
                started.append(worker)
        return started

    def _spawn(self, worker: WorkerProcess) -> bool:
        """Start the worker's process; False (the worker marked dead, the reason in its log)
        when it cannot be started."""
        env = dict(self._env)
        env.update(worker.env_overrides)
        env.update({k: v for k, v in self._env.items() if k.startswith("RUNPOD_")})
        env.update(RUNPOD_POD_ID=worker.id, RUNPOD_POD_HOSTNAME=worker.id)
        self._log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(worker.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a log left by an earlier run keeps its mode otherwise
        with os.fdopen(fd, "wb") as log:
            try:
                worker.proc = subprocess.Popen(
                    [self._python, "-S", "-c", _LAUNCHER, str(worker.handler_path),
                     str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,
                )  # fmt: skip
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                worker.start_error = f"{type(exc).__name__}: {exc}"
                log.write(f"localpod: the worker process could not be started: "
                          f"{worker.start_error}\n".encode())
                worker.phase, worker.exited_at = "dead", time.time()
                self._failed_starts.append(worker)
                return False
        worker.phase = "initializing"
        worker.started_at = time.time()
        return True

    def reap(self) -> list[WorkerProcess]:
        """Workers whose process exited, or could not be started, since the last call."""
        dead, self._failed_starts = self._failed_starts, []
        for worker in self.workers.values():
            if worker.proc is not None and worker.phase != "dead":
                code = worker.proc.poll()
                if code is not None:
                    self._mark_dead(worker, code)
                    dead.append(worker)
        return dead

    def kill(self, worker: WorkerProcess, reason: str) -> None:
        """SIGKILL the worker's process group and wait for it; the caller handles the death."""
        if worker.phase == "dead":
            return
        worker.killed_for = reason
        if worker.proc is None:  # still waiting for its start: it simply never starts
            worker.phase = "dead"
            worker.exited_at = time.time()
            return
        _signal_group(worker.proc.pid, signal.SIGKILL)
        try:
            code = worker.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            code = -signal.SIGKILL
        self._mark_dead(worker, code)

    def running(self) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.proc is not None and w.phase != "dead"]

    def terminate_all(self) -> None:
        """First step of a stop: SIGTERM every worker group (the SDK's worker loop then finishes
        its current requests and exits); workers still waiting for their start never start."""
        for worker in self.workers.values():
            if worker.phase == "waiting":
                worker.phase, worker.killed_for, worker.exited_at = "dead", "stop", time.time()
        for worker in self.running():
            worker.killed_for = "stop"
            _signal_group(worker.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]

    def kill_all(self) -> None:
        """Last step of a stop: SIGKILL every group that is left, including heartbeat processes
        whose worker already exited, and reap them."""
        for worker in self.workers.values():
            if worker.proc is not None:
                _signal_group(worker.proc.pid, signal.SIGKILL)
                code = worker.proc.wait()
                if worker.phase != "dead":
                    self._mark_dead(worker, code)

    def _mark_dead(self, worker: WorkerProcess, code: int) -> None:
        worker.phase = "dead"
        worker.exit_code = code
        worker.exited_at = time.time()
        assert worker.proc is not None
        # The SDK's heartbeat process outlives a worker that crashed on its own.
        _signal_group(worker.proc.pid, signal.SIGKILL)
