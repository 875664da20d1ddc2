"""localpod's endpoint configuration and rolling releases, as RunPod documents them
(``serverless/endpoints/rolling-releases``; REST API v2 ``PATCH /serverless/{id}``,
``/workers``, ``/releases``).

- The endpoint has an image, worker bounds and a configuration version (1 at start).
  Container changes (``image``, ``env``) create a release: the version goes up by one and the
  release is recorded (``diff`` ``template.imageName`` old/new). Worker bounds change at once
  and create no release (RunPod: "applied to the autoscaler promptly").
- Rolling release: workers on an older version (``isStale``) that hold no job are replaced at
  once; busy ones finish their current job, take no other, and are replaced then. localpod keeps
  ``workers.max`` workers (a local fleet does not scale with load); a stale worker still busy
  counts against that number, so old and new overlap only while old ones finish their jobs.
  ``workers.max = 0`` drains the endpoint (strict consistency: scale to zero, change the image,
  scale back).
- Before the first ``PATCH`` localpod leaves its workers as it started them (``stale_workers``,
  ``add-workers``); from then on it holds them to the endpoint's configuration.
- A ``PATCH`` is checked whole before anything changes: ``env`` by
  :mod:`~honora_tts.localpod.endpoint_env` (RunPod's and the kernel's rules, and no reserved
  name), ``workers.max`` against the pod's quota (RunPod caps an account's workers, 5 by
  default; a localpod worker is a process with its own model, so the quota is
  ``max(5, the workers it started with)`` unless the pod is given another). A refusal is 400
  (a rule) or 422 (the schema) naming each field; nothing is recorded.
- A release whose workers cannot start (the process does not spawn, or dies before it asks for
  work) is not counted as rolled out: while no worker of the current version has become ready
  and one has failed, its workers are listed ``UNHEALTHY`` and not on latest.
- On endpoint version 1 ``isStale`` falls back to comparing images, as RunPod does for legacy
  endpoints (a mixed fleet started with ``stale_workers`` shows its stale workers).

Everything here runs on the control plane's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from honora_tts.localpod.endpoint_env import env_refusals
from honora_tts.localpod.images import (
    ENV_ENDPOINT_VERSION,
    ENV_IMAGE,
    IMAGE_REFERENCE,
    ImageCatalog,
    ImageSpecError,
)

if TYPE_CHECKING:
    from honora_tts.localpod.controlplane import ControlPlane
    from honora_tts.localpod.supervisor import WorkerProcess

log = logging.getLogger("honora_tts.localpod")

#: What a worker started without an image reports as its image (by kind).
LEGACY_IMAGES = {"current": "localpod/honora-tts:current", "stale": "localpod/honora-tts:stale"}
RECONCILE_INTERVAL_S = 0.1
_PATCH_FIELDS = frozenset({"image", "workers", "env", "name"})
#: RunPod's default cap on an account's workers (docs ``serverless/workers/overview``, "Max
#: worker limits": 5, up to 60 with a larger balance).
RUNPOD_DEFAULT_WORKER_QUOTA = 5


class ConfigurationRefused(ValueError):
    """A PATCH body localpod refuses (answered 400 or 422 with the reasons)."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors or []
        super().__init__(detail)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReleaseRecord:
    """One release: the configuration version it produced and what changed."""

    id: str
    version: int
    created_at: str
    diff: list[dict[str, Any]] = field(default_factory=list)
    created_monotonic: float = field(default_factory=time.monotonic)


class ReleaseManager:
    """The endpoint's configuration, its releases, and the rolling release that applies them."""

    def __init__(
        self,
        plane: ControlPlane,
        catalog: ImageCatalog,
        *,
        start_image: str,
        workers_max: int,
        name: str = "localpod",
        job_api_base: str = "",
        reserved_env: frozenset[str] = frozenset(),
        worker_quota: int | None = None,
    ) -> None:
        self.plane = plane
        self.catalog = catalog
        #: Variables localpod sets for its workers (a PATCH env may not replace them).
        self.reserved_env = reserved_env | frozenset(catalog.first.worker_env(1))
        self.worker_quota = worker_quota or max(RUNPOD_DEFAULT_WORKER_QUOTA, workers_max)
        self.image = start_image
        self.env: dict[str, str] = {}
        self.name = name
        self.workers_min = 0
        self.workers_max = workers_max
        self.version = 1
        self.created_at = _now_iso()
        self.job_api_base = job_api_base
        self.managing = False
        self.releases = [
            ReleaseRecord(
                id=f"rel_{secrets.token_hex(4)}", version=1, created_at=self.created_at,
                diff=[{"field": "template.imageName", "old": None, "new": start_image}],
            )
        ]
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Begin reconciling (call on the control plane's loop)."""
        self._task = asyncio.get_running_loop().create_task(self._reconcile_loop())

    async def _reconcile_loop(self) -> None:
        while not self.plane.closing:
            try:
                self.reconcile()
            except Exception:  # the loop must outlive one bad pass
                log.exception("localpod: release reconcile failed")
            await asyncio.sleep(RECONCILE_INTERVAL_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def start_workers(self, n: int, *, start_delay_s: float = 0.0) -> list[str]:
        """Start ``n`` workers from the endpoint's image and version."""
        image = self.catalog.get(self.image)
        env = {**self.env, **image.worker_env(self.version)}
        ids = [
            self.plane.supervisor.add(
                "current", image.entry, start_delay_s=start_delay_s, env_overrides=env
            ).id
            for _ in range(n)
        ]
        self.plane.tick()
        return ids

    # ------------------------------------------------------------------ views

    def worker_image(self, worker: WorkerProcess) -> str:
        return worker.env_overrides.get(ENV_IMAGE) or LEGACY_IMAGES[worker.kind]

    def worker_version(self, worker: WorkerProcess) -> int:
        raw = worker.env_overrides.get(ENV_ENDPOINT_VERSION, "1")
        return int(raw) if raw.isdigit() else 1

    def is_stale(self, worker: WorkerProcess) -> bool:
        if self.version == 1:
            return self.worker_image(worker) != self.image
        return self.worker_version(worker) != self.version

    def _status(self, worker: WorkerProcess) -> str:
        state = self.plane.worker_state(worker)
        if state == "initializing" and self._failing(self.worker_version(worker)):
            return "UNHEALTHY"
        return {"initializing": "INITIALIZING", "running": "RUNNING"}.get(state, "IDLE")

    def _failing(self, version: int) -> bool:
        """Whether workers of ``version`` fail to start: one died before it was ready (or never
        spawned) and none has become ready since."""
        failed = ready = False
        for worker in self.plane.supervisor.workers.values():
            if self.worker_version(worker) != version:
                continue
            if worker.ready_at is not None and worker.alive:
                ready = True
            elif worker.phase == "dead" and worker.ready_at is None and worker.killed_for is None:
                failed = True
        return failed and not ready

    def _on_latest(self, worker: WorkerProcess) -> bool:
        return not self.is_stale(worker) and self._status(worker) != "UNHEALTHY"

    def _listed(self) -> list[WorkerProcess]:
        return [w for w in self.plane.supervisor.workers.values() if w.alive]

    def endpoint_view(self) -> dict[str, Any]:
        base = f"{self.job_api_base}/{self.plane.settings.endpoint_id}"
        return {
            "id": self.plane.settings.endpoint_id,
            "name": self.name,
            "type": "QUEUE",
            "requestUrls": {
                "run": f"{base}/run", "runSync": f"{base}/runsync",
                "status": f"{base}/status/{{job_id}}", "stream": f"{base}/stream/{{job_id}}",
                "cancel": f"{base}/cancel/{{job_id}}", "retry": f"{base}/retry/{{job_id}}",
                "purgeQueue": f"{base}/purge-queue", "health": f"{base}/health",
            },
            "image": self.image,
            "args": "",
            "disk": 20,
            "ports": [],
            "env": dict(self.env),
            "registry": None,
            "gpu": None,
            "workers": {"min": self.workers_min, "max": self.workers_max},
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
            "dataCenterIds": ["LOCALPOD"],
            "networkVolumes": [],
            "timeout": int(self.plane.settings.execution_timeout_s * 1000),
            "flashboot": "OFF",
            "createdAt": self.created_at,
        }

    def workers_view(self) -> dict[str, Any]:
        now = time.time()
        workers: list[dict[str, Any]] = []
        for worker in self._listed():
            started = worker.started_at
            workers.append({
                "id": worker.id,
                "status": self._status(worker),
                "isStale": self.is_stale(worker),
                "version": self.worker_version(worker),
                "gpuCount": 0,
                "image": self.worker_image(worker),
                "uptimeSeconds": int(now - started) if started else None,
                "gpuTypeId": None,
                "dataCenterId": "LOCALPOD",
                "startedAt": (
                    datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    if started else None
                ),
            })
        summary = {k: 0 for k in ("running", "idle", "initializing", "throttled", "unhealthy")}
        for entry in workers:
            summary[entry["status"].lower()] += 1
        summary["total"] = len(workers)
        return {"endpointVersion": self.version, "summary": summary, "workers": workers}

    def releases_view(self) -> dict[str, Any]:
        listed = self._listed()
        on_latest = sum(1 for w in listed if self._on_latest(w))
        by_version: dict[int, int] = {}
        for worker in listed:
            by_version[self.worker_version(worker)] = by_version.get(
                self.worker_version(worker), 0) + 1
        return {
            "endpointVersion": self.version,
            "rollout": {
                "inProgress": on_latest < len(listed),
                "workersOnLatest": on_latest,
                "workersTotal": len(listed),
                "percentOnLatest": int(100 * on_latest / len(listed)) if listed else 0,
            },
            "releases": [
                {
                    "id": r.id, "version": r.version, "source": "MANUAL", "buildId": None,
                    "createdByUserId": None, "workerCount": by_version.get(r.version, 0),
                    "createdAt": r.created_at, "diff": r.diff,
                }
                for r in reversed(self.releases)
            ],
        }

    # ------------------------------------------------------------------ changes

    def update(self, body: Any) -> dict[str, Any]:
        """Apply a PATCH body; the endpoint as it is now. Raises :class:`ConfigurationRefused`
        (nothing changed) for a body it cannot apply."""
        if not isinstance(body, dict):
            raise ConfigurationRefused(400, "the request body must be a JSON object")
        unknown = sorted(set(body) - _PATCH_FIELDS)
        if unknown:
            raise ConfigurationRefused(
                422, "Request validation failed.",
                [f"$: property '{k}' is not supported by localpod (it supports "
                 f"{', '.join(sorted(_PATCH_FIELDS))})" for k in unknown],
            )
        image = body.get("image", self.image)
        if not isinstance(image, str) or not IMAGE_REFERENCE.match(image):
            raise ConfigurationRefused(
                422, "Request validation failed.",
                [f"$.image: {image!r} is not an image reference NAME:TAG"],
            )
        if image not in self.catalog:
            try:
                self.catalog.get(image)
            except ImageSpecError as exc:
                raise ConfigurationRefused(422, str(exc)) from None
        env = body.get("env", self.env)
        refusals = env_refusals(env, self.reserved_env) if "env" in body else []
        if refusals:
            raise ConfigurationRefused(
                400, f"env refused, nothing changed: {refusals[0]}"
                + (f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""), refusals,
            )
        name = body.get("name", self.name)
        if not isinstance(name, str) or not name:
            raise ConfigurationRefused(422, "Request validation failed.",
                                       ["$.name: must be a non-empty string"])
        low, high = self._bounds(body.get("workers"))
        diff: list[dict[str, Any]] = []
        if image != self.image:
            diff.append({"field": "template.imageName", "old": self.image, "new": image})
        if env != self.env:
            diff.append({"field": "template.env", "old": dict(self.env), "new": dict(env)})
        self.name, self.workers_min, self.workers_max = name, low, high
        self.managing = True
        if diff:
            self.image, self.env = image, dict(env)
            self.version += 1
            self.releases.append(ReleaseRecord(
                id=f"rel_{secrets.token_hex(4)}", version=self.version,
                created_at=_now_iso(), diff=diff,
            ))  # fmt: skip
            log.info("localpod: release v%d: %s", self.version, diff)
        self.reconcile()
        return self.endpoint_view()

    def _bounds(self, raw: Any) -> tuple[int, int]:
        if raw is None:
            return self.workers_min, self.workers_max
        if not isinstance(raw, dict) or set(raw) - {"min", "max", "idleTimeout"}:
            raise ConfigurationRefused(422, "Request validation failed.",
                                       ["$.workers: an object with min, max, idleTimeout"])
        values = {}
        for key, current in (("min", self.workers_min), ("max", self.workers_max)):
            value = raw.get(key, current)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationRefused(422, "Request validation failed.",
                                           [f"$.workers.{key}: a whole number >= 0"])
            values[key] = value
        if values["min"] > values["max"]:
            raise ConfigurationRefused(
                400, f"workers.min ({values['min']}) exceeds workers.max ({values['max']})"
            )
        if values["max"] > self.worker_quota:
            raise ConfigurationRefused(
                400, f"workers.max ({values['max']}) exceeds this localpod's quota of "
                f"{self.worker_quota} workers (each is a process with its own model; RunPod "
                f"caps an account at {RUNPOD_DEFAULT_WORKER_QUOTA} by default). Start localpod "
                "with --worker-quota N for more.",
                [f"$.workers.max: at most {self.worker_quota}"],
            )
        return values["min"], values["max"]

    # ------------------------------------------------------------------ rolling release

    def may_take(self, worker: WorkerProcess) -> bool:
        """Whether a worker may take more work: not once it is to be replaced."""
        if not self.managing:
            return True
        return not self.is_stale(worker) and worker.id not in self._excess()

    def _excess(self) -> set[str]:
        current = [w for w in self._listed() if not self.is_stale(w)]
        extra = len(current) - self.workers_max
        if extra <= 0:
            return set()
        # Retire the ones that hold nothing first, then the youngest.
        ranked = sorted(current, key=lambda w: (bool(self.plane.table.held_by(w.id)),
                                                -(w.start_at)))
        return {w.id for w in ranked[:extra]}

    def reconcile(self) -> None:
        """One pass of the rolling release: replace what is stale or too many, start what is
        missing."""
        if not self.managing or self.plane.closing:
            return
        excess = self._excess()
        for worker in self._listed():
            if (self.is_stale(worker) or worker.id in excess) and not self.plane.table.held_by(
                worker.id
            ):
                log.info("localpod: retiring %s (%s, version %d)", worker.id,
                         self.worker_image(worker), self.worker_version(worker))
                self.plane.retire(worker)
        listed = self._listed()
        busy_old = sum(1 for w in listed if self.is_stale(w))
        current = sum(1 for w in listed if not self.is_stale(w))
        missing = self.workers_max - busy_old - current
        if missing > 0:
            self.start_workers(missing, start_delay_s=self._crash_backoff_s())

    def _crash_backoff_s(self) -> float:
        """Workers of this release that died before they were ready: back off 1, 2, 4 .. 30 s."""
        crashed = sum(
            1 for w in self.plane.supervisor.workers.values()
            if w.phase == "dead" and w.ready_at is None and w.killed_for is None
            and self.worker_version(w) == self.version
        )
        return 0.0 if crashed == 0 else min(30.0, 2.0 ** (crashed - 1))
