"""HTTP routes of the control plane: RunPod's public API and its worker-facing webhooks, both
under ``/v2/{endpoint_id}/``. Routes are thin: they authenticate, read and size-check bodies and
turn :class:`~honora_tts.localpod.controlplane.ControlPlane` answers into RunPod's responses.

Public (``Authorization: Bearer <api key>``; the bare key is accepted too, as RunPod does)::

    POST /run  POST /runsync?wait=  GET|POST /status/{id}  GET|POST /stream/{id}
    POST /cancel/{id}  POST /retry/{id}  POST /purge-queue  GET /health

Worker-facing (authenticated by the ``token`` query parameter localpod gives its workers)::

    GET  /job-take/{worker}?job_in_progress=      GET /job-take-batch/{worker}?batch_size=
    GET  /job-stop/{worker}                        GET /ping/{worker}
    POST /job-done/{worker}/{job}?isStream=        POST /job-stream/{worker}/{job}

The management API (``/v2/serverless/{endpoint_id}``, ``/workers``, ``/releases``) is in
:mod:`.management_api`; its routes come first, so they win over the patterns above.

localpod's own (public auth), for driving a pod that runs in another process::

    GET /localpod/workers  GET /localpod/jobs  GET /localpod/counters
    POST /localpod/kill-worker {"worker_id"?, "busy"?}
    POST /localpod/add-workers {"n"?, "stale"?, "start_delay_s"?}
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from honora_tts import bounded_json
from honora_tts.http_body import MAX_NESTING_DEPTH, read_capped
from honora_tts.localpod.controlplane import (
    MAX_RESULT_BYTES,
    MAX_RUN_BYTES,
    MAX_RUNSYNC_BYTES,
    MAX_STREAM_CHUNK_BYTES,
    RUNSYNC_DEFAULT_WAIT_MS,
    RUNSYNC_MAX_WAIT_MS,
    RUNSYNC_MIN_WAIT_MS,
    ControlPlane,
    LocalPodError,
    PolicyError,
)
from honora_tts.localpod.jobs import DoneOutcome, JobNotFound, JobNotRetryable
from honora_tts.localpod.management_api import management_router
from honora_tts.localpod.releases import ReleaseManager
from honora_tts.localpod.supervisor import WorkerProcess


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _not_found(job_id: str) -> JSONResponse:
    return _error(404, f"request does not exist: {job_id}")


def build_app(
    plane: ControlPlane, releases: ReleaseManager | None = None,
    management_api_key: str | None = None,
) -> FastAPI:
    """The FastAPI application serving one pod's control plane (and, with ``releases`` and
    ``management_api_key``, its management API)."""
    settings = plane.settings
    app = FastAPI(title="localpod", docs_url=None, redoc_url=None, openapi_url=None)
    if releases is not None:
        if not management_api_key or management_api_key == settings.api_key:
            raise ValueError("the management API needs a key of its own")
        app.include_router(management_router(releases, management_api_key))

    def public_gate(request: Request, endpoint_id: str, operation: str) -> JSONResponse | None:
        supplied = request.headers.get("authorization", "")
        key = supplied[7:] if supplied.lower().startswith("bearer ") else supplied
        if not hmac.compare_digest(key.strip().encode(), settings.api_key.encode()):
            plane.counters["unauthorized"] += 1
            return _error(401, "Unauthorized: missing or wrong API key")
        if endpoint_id != settings.endpoint_id:
            return _error(404, f"endpoint {endpoint_id!r} does not exist")
        retry_after = plane.rate_limited(operation) if operation else None
        if retry_after is not None:
            return _error(
                429,
                f"too many /{operation} requests: at most {settings.rate_limit_per_10s} per 10 s",
                **{"Retry-After": str(retry_after)},
            )
        return None

    def worker_gate(
        request: Request, endpoint_id: str, worker_id: str
    ) -> tuple[WorkerProcess | None, Response | None]:
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), settings.worker_token.encode()):
            return None, _error(401, "Unauthorized worker")
        if endpoint_id != settings.endpoint_id:
            return None, _error(404, f"endpoint {endpoint_id!r} does not exist")
        worker = plane.known_worker(worker_id)
        if worker is None:
            return None, _error(404, f"worker {worker_id!r} is not part of this endpoint")
        return worker, None

    # ----------------------------------------------------------------- submissions

    async def submission(
        request: Request, endpoint_id: str, route: str, limit: int
    ) -> tuple[Any, JSONResponse | None]:
        refused = public_gate(request, endpoint_id, route)
        if refused is not None:
            return None, refused
        raw = await read_capped(request, limit)
        if isinstance(raw, int):
            plane.counters["payloads_rejected"] += 1
            return None, _error(
                413,
                f"request body is {raw} bytes; /{route} accepts at most {limit} bytes "
                f"({limit // (1024 * 1024)} MB). Send large inputs such as reference audio "
                "as a URL, not inline.",
            )
        try:
            # NaN and Infinity are not JSON: RunPod's API refuses them. A body nested too
            # deeply is refused here too (see the package docstring).
            body = bounded_json.loads(raw, max_depth=MAX_NESTING_DEPTH)
        except bounded_json.JsonRefused as exc:
            return None, _error(400, f"the request body is not valid JSON here: {exc}")
        if not isinstance(body, dict) or body.get("input") is None:
            return None, _error(400, 'the request body needs an "input" field')
        try:
            job = plane.submit(body, route)  # type: ignore[arg-type]
        except PolicyError as exc:
            return None, _error(400, str(exc))
        return job, None

    @app.post("/v2/{endpoint_id}/run")
    async def run(request: Request, endpoint_id: str) -> Response:
        job, refused = await submission(request, endpoint_id, "run", MAX_RUN_BYTES)
        if refused is not None:
            return refused
        return JSONResponse({"id": job.id, "status": job.state.value})

    @app.post("/v2/{endpoint_id}/runsync")
    async def runsync(request: Request, endpoint_id: str) -> Response:
        raw_wait = request.query_params.get("wait")
        wait_ms = RUNSYNC_DEFAULT_WAIT_MS
        if raw_wait is not None:
            try:
                wait_ms = int(raw_wait)
            except ValueError:
                return _error(400, "wait must be a whole number of milliseconds")
        wait_ms = min(max(wait_ms, RUNSYNC_MIN_WAIT_MS), RUNSYNC_MAX_WAIT_MS)
        job, refused = await submission(request, endpoint_id, "runsync", MAX_RUNSYNC_BYTES)
        if refused is not None:
            return refused
        await plane.wait_for_end(job.id, wait_ms / 1000)
        return JSONResponse(job.status_view())

    # ----------------------------------------------------------------- job operations

    def job_operation(
        operation: str, act: Callable[[str], dict[str, Any]]
    ) -> Callable[[Request, str, str], Awaitable[Response]]:
        async def route(request: Request, endpoint_id: str, job_id: str) -> Response:
            refused = public_gate(request, endpoint_id, operation)
            if refused is not None:
                return refused
            try:
                return JSONResponse(act(job_id))
            except JobNotFound:
                return _not_found(job_id)
            except JobNotRetryable as exc:
                return _error(400, str(exc))

        return route

    def status(job_id: str) -> dict[str, Any]:
        return plane.table.get(job_id).status_view()

    def cancel(job_id: str) -> dict[str, Any]:
        job = plane.cancel(job_id)
        return {"id": job.id, "status": job.state.value}

    def retry(job_id: str) -> dict[str, Any]:
        job = plane.retry(job_id)
        return {"id": job.id, "status": job.state.value}

    app.add_api_route(
        "/v2/{endpoint_id}/status/{job_id}", job_operation("status", status),
        methods=["GET", "POST"],
    )  # fmt: skip
    app.add_api_route(
        "/v2/{endpoint_id}/stream/{job_id}", job_operation("stream", plane.table.stream_view),
        methods=["GET", "POST"],
    )  # fmt: skip
    app.add_api_route(
        "/v2/{endpoint_id}/cancel/{job_id}", job_operation("cancel", cancel), methods=["POST"]
    )
    app.add_api_route(
        "/v2/{endpoint_id}/retry/{job_id}", job_operation("retry", retry), methods=["POST"]
    )

    @app.post("/v2/{endpoint_id}/purge-queue")
    async def purge_queue(request: Request, endpoint_id: str) -> Response:
        refused = public_gate(request, endpoint_id, "purge-queue")
        if refused is not None:
            return refused
        return JSONResponse({"removed": plane.table.purge_queue(), "status": "completed"})

    @app.get("/v2/{endpoint_id}/health")
    async def health(request: Request, endpoint_id: str) -> Response:
        refused = public_gate(request, endpoint_id, "")
        return refused or JSONResponse(plane.health_view())

    # ----------------------------------------------------------------- worker-facing

    async def job_take(request: Request, endpoint_id: str, worker_id: str, batch: bool) -> Response:
        worker, refused = worker_gate(request, endpoint_id, worker_id)
        if refused is not None:
            return refused
        assert worker is not None
        size = 1
        if batch:
            try:
                size = max(1, int(request.query_params.get("batch_size", "1")))
            except ValueError:
                return _error(400, "batch_size must be a whole number")
        in_progress = request.query_params.get("job_in_progress", "0") == "1"
        taken = await plane.take_jobs(worker, size, in_progress)
        if not taken:
            return Response(status_code=204)
        bodies = [body for _, body in taken]
        content = b"[" + b",".join(bodies) + b"]" if batch else bodies[0]
        return Response(content, media_type="application/json")

    @app.get("/v2/{endpoint_id}/job-take/{worker_id}")
    async def job_take_single(request: Request, endpoint_id: str, worker_id: str) -> Response:
        return await job_take(request, endpoint_id, worker_id, batch=False)

    @app.get("/v2/{endpoint_id}/job-take-batch/{worker_id}")
    async def job_take_batch(request: Request, endpoint_id: str, worker_id: str) -> Response:
        return await job_take(request, endpoint_id, worker_id, batch=True)

    @app.get("/v2/{endpoint_id}/job-stop/{worker_id}")
    async def job_stop(request: Request, endpoint_id: str, worker_id: str) -> Response:
        worker, refused = worker_gate(request, endpoint_id, worker_id)
        if refused is not None:
            return refused
        assert worker is not None
        ids = await plane.stop_signals(worker)
        return JSONResponse({"jobsToStop": ids}) if ids else Response(status_code=204)

    @app.post("/v2/{endpoint_id}/job-done/{worker_id}/{job_id}")
    async def job_done(request: Request, endpoint_id: str, worker_id: str, job_id: str) -> Response:
        worker, refused = worker_gate(request, endpoint_id, worker_id)
        if refused is not None:
            return refused
        assert worker is not None
        outcome = plane.job_done(worker, job_id, await read_capped(request, MAX_RESULT_BYTES))
        if not isinstance(outcome, DoneOutcome):  # a refusal message (DoneOutcome is a str too)
            return _error(400, outcome)
        if outcome is DoneOutcome.UNKNOWN:
            return _not_found(job_id)
        return JSONResponse({"status": outcome.value})

    @app.post("/v2/{endpoint_id}/job-stream/{worker_id}/{job_id}")
    async def job_stream(
        request: Request, endpoint_id: str, worker_id: str, job_id: str
    ) -> Response:
        worker, refused = worker_gate(request, endpoint_id, worker_id)
        if refused is not None:
            return refused
        assert worker is not None
        body = await read_capped(request, MAX_STREAM_CHUNK_BYTES)
        accepted = plane.stream_chunk(worker, job_id, body)
        if isinstance(accepted, str):
            return _error(400, accepted)
        return JSONResponse({"status": "accepted" if accepted else "late"})

    @app.get("/v2/{endpoint_id}/ping/{worker_id}")
    async def ping(request: Request, endpoint_id: str, worker_id: str) -> Response:
        worker, refused = worker_gate(request, endpoint_id, worker_id)
        if refused is not None:
            return refused
        assert worker is not None
        plane.ping(worker, dict(request.query_params))
        return JSONResponse({})

    # ----------------------------------------------------------------- localpod's own

    @app.get("/v2/{endpoint_id}/localpod/{what}")
    async def inspect(request: Request, endpoint_id: str, what: str) -> Response:
        refused = public_gate(request, endpoint_id, "")
        if refused is not None:
            return refused
        views: dict[str, Callable[[], Any]] = {
            "workers": plane.workers_view,
            "jobs": plane.table.snapshot,
            "counters": plane.all_counters,
        }
        if what not in views:
            return _error(404, f"no localpod view {what!r}; try workers, jobs or counters")
        return JSONResponse(views[what]())

    @app.post("/v2/{endpoint_id}/localpod/{action}")
    async def control(request: Request, endpoint_id: str, action: str) -> Response:
        refused = public_gate(request, endpoint_id, "")
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "the request body must be an object")
        try:
            if action == "kill-worker":
                killed = plane.kill_worker(body.get("worker_id"), busy=bool(body.get("busy", True)))
                return JSONResponse({"killed": killed})
            if action == "add-workers":
                ids = plane.add_workers(
                    int(body.get("n", 1)), stale=bool(body.get("stale", False)),
                    start_delay_s=float(body.get("start_delay_s", 0.0)),
                )  # fmt: skip
                return JSONResponse({"added": ids})
        except LocalPodError as exc:
            return _error(409, str(exc))
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        return _error(404, f"no localpod action {action!r}; try kill-worker or add-workers")

    return app
