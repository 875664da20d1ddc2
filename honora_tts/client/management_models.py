"""Typed answers of RunPod's management API (REST API v2), as its OpenAPI file defines them
(``runpod/docs``, ``api-reference-v2/openapi.json``: schemas ``Endpoint``,
``ListEndpointWorkersResponse``, ``Worker``, ``WorkerSummary``, ``ListEndpointReleasesResponse``,
``RolloutSummary``, ``Release``, ``ReleaseDiffEntry``).

Attributes are snake_case; the wire names (camelCase) are the aliases. Fields RunPod may add
later are kept (``extra="allow"``), so a newer API never breaks the client.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: The ``diff`` field names under which a release records an image change (RunPod's example
#: names ``template.imageName``; the PATCH body's name is ``image``).
IMAGE_DIFF_FIELDS = frozenset({"template.imageName", "image", "imageName"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class EndpointWorkers(_Model):
    """``workers`` of an endpoint: the autoscaler's bounds."""

    min: int = 0
    max: int = 0
    idle_timeout: int | None = Field(default=None, alias="idleTimeout")


class Endpoint(_Model):
    """``GET /serverless/{id}`` and ``PATCH /serverless/{id}``: one serverless endpoint."""

    id: str
    name: str = ""
    type: str | None = None
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    workers: EndpointWorkers = Field(default_factory=EndpointWorkers)
    timeout: int | None = None
    flashboot: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    request_urls: dict[str, str] | None = Field(default=None, alias="requestUrls")


class Worker(_Model):
    """One active worker of ``GET /serverless/{id}/workers``. ``is_stale`` is RunPod's
    authoritative flag: the worker runs an older endpoint version than the current one."""

    id: str
    status: str
    is_stale: bool = Field(alias="isStale")
    gpu_count: int = Field(default=0, alias="gpuCount")
    version: int | None = None
    image: str | None = None
    uptime_seconds: int | None = Field(default=None, alias="uptimeSeconds")
    gpu_type_id: str | None = Field(default=None, alias="gpuTypeId")
    data_center_id: str | None = Field(default=None, alias="dataCenterId")
    started_at: str | None = Field(default=None, alias="startedAt")


class WorkerSummary(_Model):
    """Worker counts by status (``running + idle + initializing + throttled + unhealthy ==
    total``)."""

    running: int = 0
    idle: int = 0
    initializing: int = 0
    throttled: int = 0
    unhealthy: int = 0
    total: int = 0


class WorkerList(_Model):
    """``GET /serverless/{id}/workers``."""

    workers: list[Worker]
    summary: WorkerSummary
    endpoint_version: int | None = Field(default=None, alias="endpointVersion")


class RolloutSummary(_Model):
    """How far the current release has rolled out."""

    in_progress: bool = Field(alias="inProgress")
    workers_on_latest: int = Field(alias="workersOnLatest")
    workers_total: int = Field(alias="workersTotal")
    percent_on_latest: int = Field(alias="percentOnLatest")


class ReleaseDiffEntry(_Model):
    """One configuration field a release changed (raw JSON values; None when added/removed)."""

    field: str
    old: Any = None
    new: Any = None


class Release(_Model):
    """One entry of the release history."""

    id: str
    source: str
    created_at: str = Field(alias="createdAt")
    worker_count: int = Field(alias="workerCount")
    diff: list[ReleaseDiffEntry] = Field(default_factory=list)
    version: int | None = None
    build_id: str | None = Field(default=None, alias="buildId")
    created_by_user_id: str | None = Field(default=None, alias="createdByUserId")

    def image_change(self) -> ReleaseDiffEntry | None:
        """The diff entry that changed the image, if this release changed it."""
        return next((d for d in self.diff if d.field in IMAGE_DIFF_FIELDS), None)


class ReleaseHistory(_Model):
    """``GET /serverless/{id}/releases``: releases newest first plus the rollout summary."""

    rollout: RolloutSummary
    releases: list[Release]
    endpoint_version: int | None = Field(default=None, alias="endpointVersion")

    def images(self) -> list[str]:
        """Every image reference the history mentions (old and new values), oldest last."""
        seen: list[str] = []
        for release in self.releases:
            change = release.image_change()
            if change is None:
                continue
            for value in (change.new, change.old):
                if isinstance(value, str) and value and value not in seen:
                    seen.append(value)
        return seen

    def latest(self) -> Release | None:
        return self.releases[0] if self.releases else None
