"""The platform's list of workers next to the census: RunPod's management API (``GET
/serverless/{id}/workers``, with the management key) says which workers exist, so a worker that
never answered a health job is counted against that list instead of guessed from ``/health``.

Where the management API cannot be reached (another key scope, a network that allows only the
job API), the census goes on without it and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from honora_tts.client import _constants as C
from honora_tts.client._base_client import RetryPolicy
from honora_tts.client._exceptions import HonoraClientError
from honora_tts.client.census_report import Census, group_probes
from honora_tts.client.management import DEFAULT_MANAGEMENT_API_BASE, ManagementClient
from honora_tts.client.management_models import WorkerList

if TYPE_CHECKING:
    from honora_tts.client.endpoint import EndpointClient

log = logging.getLogger("honora_tts.client")

READY = frozenset({"IDLE", "RUNNING"})
_LOOKUP_TIMEOUT = httpx.Timeout(connect=3.0, read=15.0, write=15.0, pool=5.0)


def default_management_base(client: EndpointClient, management_api_base: str | None) -> str:
    """The given base, else the job API's base when it is not RunPod's (localpod serves both
    on one port), else RunPod's management API."""
    if management_api_base:
        return management_api_base.rstrip("/")
    if client.api_base.rstrip("/") != C.DEFAULT_API_BASE:
        return client.api_base.rstrip("/")
    return DEFAULT_MANAGEMENT_API_BASE


def management_client_for(client: EndpointClient, management_api_base: str | None = None,
                          **options: object) -> ManagementClient:
    """A management API client for the job client's endpoint, with its management key."""
    return ManagementClient(client.management_api_key,
                            default_management_base(client, management_api_base),
                            **options)  # type: ignore[arg-type]


def platform_workers(client: EndpointClient,
                     management_api_base: str | None = None) -> WorkerList | None:
    """``/workers`` of the client's endpoint, or None (logged) when the management API does not
    answer."""
    base = default_management_base(client, management_api_base)
    try:
        # An optional look: one try, a short connect timeout.
        with management_client_for(client, base, timeout=_LOOKUP_TIMEOUT,
                                   retry=RetryPolicy(max_attempts=1)) as management:
            return management.workers(client.endpoint_id)
    except HonoraClientError as exc:
        log.warning("the management API at %s is not reachable (%s); the census counts only "
                    "the workers that answer", base, exc)
        return None


@dataclass(frozen=True)
class PlatformCensus:
    """A census and the platform's list: ``unheard`` are ready workers the platform lists that
    answered no health job; ``not_ready`` those still starting."""

    census: Census
    platform: WorkerList | None
    unheard: list[str]
    not_ready: list[str]

    @property
    def ok(self) -> bool:
        return self.census.ok and not self.unheard

    def summary(self) -> str:
        lines = [self.census.summary()]
        if self.platform is None:
            lines.append("  platform: management API not reachable; unanswered workers are not "
                         "counted")
            return "\n".join(lines)
        listed = len(self.platform.workers)
        lines.append(f"  platform lists {listed} worker(s) (endpoint version "
                     f"{self.platform.endpoint_version}); {len(self.unheard)} never answered")
        for worker in self.platform.workers:
            mark = ("never answered" if worker.id in self.unheard else
                    "starting" if worker.id in self.not_ready else "answered")
            lines.append(f"  [{mark}] {worker.id} {worker.status} {worker.image or '?'}"
                         f"{' (stale on the platform)' if worker.is_stale else ''}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            **self.census.to_dict(),
            "ok": self.ok,
            "platform": None if self.platform is None else self.platform.model_dump(
                by_alias=True),
            "unheard": self.unheard,
            "not_ready": self.not_ready,
        }


def census_with_platform(
    client: EndpointClient,
    probes: int,
    *,
    platform: WorkerList | None,
    rounds: int = 3,
    min_handler_version: int | None = None,
    deadline_s: float | None = None,
) -> PlatformCensus:
    """Census rounds of ``probes`` health jobs until every ready worker the platform lists has
    answered (at most ``rounds``); without a platform list, one round."""
    ready = [w.id for w in platform.workers if w.status in READY] if platform else []
    collected = []
    census = None
    for _ in range(max(1, rounds if platform else 1)):
        census = client.census(probes, min_handler_version=min_handler_version,
                               deadline_s=deadline_s)
        collected.extend(census.probes)
        heard = {p.worker_id for p in collected if p.answered and p.worker_id}
        if set(ready) <= heard:
            break
    assert census is not None
    merged = Census(probes=collected, groups=group_probes(collected),
                    min_handler_version=census.min_handler_version,
                    endpoint_health=census.endpoint_health)
    heard = {p.worker_id for p in collected if p.answered and p.worker_id}
    not_ready = [w.id for w in platform.workers if w.status not in READY] if platform else []
    return PlatformCensus(merged, platform, [w for w in ready if w not in heard], not_ready)
