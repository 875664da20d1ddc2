"""HTTP routes of localpod's management API: RunPod's REST API v2 for one serverless endpoint,
served on the pod's port next to the job API (base ``http://127.0.0.1:PORT/v2``)::

    GET   /v2/serverless/{id}            the endpoint (image, workers min/max, ...)
    PATCH /v2/serverless/{id}            change image / env / workers: a rolling release
    GET   /v2/serverless/{id}/workers    active workers: status, version, isStale, image
    GET   /v2/serverless/{id}/releases   release history (newest first) + rollout summary

Auth: ``Authorization: Bearer <management api key>``, a key of its own (the job API's key is
refused here, so a caller who can submit jobs cannot change what the workers run). Errors are
RunPod's
``application/problem+json`` bodies ``{"title", "status", "detail", "errors"?}``: 401 for a
missing or wrong key, 404 for another endpoint id, 400/422 for a body localpod refuses (nothing
changed then). See :mod:`honora_tts.localpod.releases` for the rolling release itself.
"""

from __future__ import annotations

import hmac
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from honora_tts import bounded_json
from honora_tts.localpod.releases import ConfigurationRefused, ReleaseManager

_PATCH_LIMIT_BYTES = 1024 * 1024
#: A PATCH body is an object of a few levels (workers, env): nothing sensible nests deeper.
_PATCH_MAX_DEPTH = 16


def problem(status: int, detail: str, errors: list[str] | None = None) -> JSONResponse:
    """RunPod's error body."""
    body: dict[str, Any] = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def management_router(releases: ReleaseManager, api_key: str) -> APIRouter:
    """The management routes for the endpoint ``releases`` manages, behind ``api_key`` (the
    management key)."""
    router = APIRouter()
    endpoint_id = releases.plane.settings.endpoint_id

    def gate(request: Request, requested: str) -> JSONResponse | None:
        supplied = request.headers.get("authorization", "")
        key = supplied[7:] if supplied.lower().startswith("bearer ") else supplied
        if not key.strip():
            releases.plane.counters["unauthorized"] += 1
            return problem(401, "missing bearer token")
        if not hmac.compare_digest(key.strip().encode(), api_key.encode()):
            releases.plane.counters["unauthorized"] += 1
            return problem(401, "invalid bearer token")
        if requested != endpoint_id:
            return problem(404, f"endpoint {requested!r} not found")
        return None

    @router.get("/v2/serverless/{requested}")
    async def get_endpoint(request: Request, requested: str) -> Response:
        return gate(request, requested) or JSONResponse(releases.endpoint_view())

    @router.patch("/v2/serverless/{requested}")
    async def patch_endpoint(request: Request, requested: str) -> Response:
        refused = gate(request, requested)
        if refused is not None:
            return refused
        raw = await request.body()
        if len(raw) > _PATCH_LIMIT_BYTES:
            return problem(400, "request body too large")
        try:
            body = bounded_json.loads(raw or b"null", max_depth=_PATCH_MAX_DEPTH)
        except bounded_json.JsonRefused as exc:
            return problem(400, f"request body is not valid JSON here: {exc}")
        try:
            return JSONResponse(releases.update(body))
        except ConfigurationRefused as exc:
            return problem(exc.status, exc.detail, exc.errors)

    @router.get("/v2/serverless/{requested}/workers")
    async def list_workers(request: Request, requested: str) -> Response:
        return gate(request, requested) or JSONResponse(releases.workers_view())

    @router.get("/v2/serverless/{requested}/releases")
    async def list_releases(request: Request, requested: str) -> Response:
        return gate(request, requested) or JSONResponse(releases.releases_view())

    return router
