"""What both localpods (:class:`~honora_tts.localpod.LocalPod`, the queue endpoint, and
:class:`~honora_tts.localpod.lb_pod.LoadBalancedPod`) do alike: their state directory, being a
context manager, and waiting until their workers are ready."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from honora_tts.localpod.background_server import BackgroundServer
from honora_tts.localpod.controlplane import LocalPodError, WorkerStartError


class PodBase:
    """The shared part; a pod sets :attr:`endpoint_id`, serves on ``_http`` and implements
    ``start``, ``stop``, ``workers``, ``log_tail`` and ``_init_crashes``."""

    endpoint_id: str
    api_key: str
    base_url: str
    #: The ``state`` values of a worker that serves.
    ready_states: tuple[str, ...] = ("ready",)

    def __init__(self, state_dir: Path | None) -> None:
        self._state_dir_given = state_dir
        self.state_dir: Path | None = None
        self._created_state_dir = False
        self._crashes_reported = 0
        self._http: BackgroundServer | None = None

    # ---- implemented by each pod

    def start(self, *, wait_ready: bool = True, timeout_s: float = 120) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def workers(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def log_tail(self, worker_id: str, max_bytes: int = 4000) -> str:
        raise NotImplementedError

    def _init_crashes(self) -> list[str]:
        raise NotImplementedError

    def _client_env_extra(self) -> dict[str, str]:
        """What a client needs beyond the job API's coordinates."""
        return {}

    # ---- shared

    def client_env(self) -> dict[str, str]:
        """The variables ``honora_tts.client`` (and a shell) uses to reach this pod."""
        return {
            "RUNPOD_API_BASE": self.base_url,
            "RUNPOD_ENDPOINT_ID": self.endpoint_id,
            "RUNPOD_API_KEY": self.api_key,
            **self._client_env_extra(),
        }

    @property
    def running(self) -> bool:
        return self._http is not None

    def __enter__(self) -> Self:
        if self._http is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _prepare_state_dir(self, prefix: str) -> Path:
        if self._state_dir_given is not None:
            self.state_dir = Path(self._state_dir_given)
            self.state_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.state_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-{self.endpoint_id}-"))
            self._created_state_dir = True
        return self.state_dir

    def wait_ready(self, n: int | None = None, timeout_s: float = 120) -> None:
        """Block until ``n`` workers (default: every live worker) serve. Raises
        :class:`WorkerStartError` with the worker's log when a worker died while loading (each
        such death is reported once), :class:`LocalPodError` when time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            workers = self.workers()
            crashes = self._init_crashes()
            if len(crashes) > self._crashes_reported:
                self._crashes_reported = len(crashes)
                crashed = crashes[-1]
                raise WorkerStartError(
                    f"worker {crashed} died while loading; its log ends with:\n"
                    + self.log_tail(crashed)
                )
            ready = [w for w in workers if w["state"] in self.ready_states]
            alive = [w for w in workers if w["state"] != "dead"]
            if len(ready) >= (n if n is not None else max(1, len(alive))):
                return
            if time.monotonic() >= deadline:
                states = ", ".join(f"{w['id']}={w['state']}" for w in alive)
                tails = "".join(
                    f"\n--- {w['id']} ---\n{self.log_tail(w['id'], 1500)}"
                    for w in alive
                    if w["state"] not in self.ready_states
                )
                raise LocalPodError(f"workers not ready after {timeout_s:g} s ({states}){tails}")
            time.sleep(0.1)
