"""The census: many health jobs at once, grouped by the build that answered them, so that stale
or half-rolled deployments show up."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from honora_tts.client._base_client import new_request_id
from honora_tts.client._exceptions import (
    HonoraClientError,
    InvalidRequest,
    JobFailed,
    StaleWorkerError,
)
from honora_tts.client.census_report import Census, CensusProbe, group_probes
from honora_tts.client.resources.health import Health
from honora_tts.client.results import EndpointHealth
from honora_tts.redaction import install_redaction

log = install_redaction(logging.getLogger("honora_tts.client"))

#: Probes sent at once, at most.
_MAX_PARALLEL_PROBES = 32


class CensusTaker:
    """``census`` of :class:`EndpointClient`."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def census(
        self,
        probes: int = 8,
        *,
        min_handler_version: int | None = None,
        deadline_s: float | None = None,
        include_endpoint_health: bool = True,
    ) -> Census:
        """Send ``probes`` health jobs at once; stale answers are grouped, not raised."""
        if probes < 1:
            raise InvalidRequest("census needs at least one probe")
        minimum = (
            self.health.responses.min_handler_version
            if min_handler_version is None else min_handler_version
        )
        with ThreadPoolExecutor(max_workers=min(probes, _MAX_PARALLEL_PROBES)) as pool:
            futures = [pool.submit(self.probe, minimum, deadline_s) for _ in range(probes)]
            results = [f.result() for f in futures]
        endpoint_health: EndpointHealth | None = None
        if include_endpoint_health:
            try:
                endpoint_health = self.health.endpoint(deadline_s)
            except HonoraClientError as exc:
                log.warning("GET /health failed during the census: %s", exc)
        return Census(
            probes=results, groups=group_probes(results), min_handler_version=minimum,
            endpoint_health=endpoint_health,
        )

    def probe(self, min_handler_version: int, deadline_s: float | None) -> CensusProbe:
        """One health job, its outcome as a :class:`CensusProbe` (never raises a client
        error)."""
        request_id = new_request_id()
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            report = self.health.job(
                min_handler_version=min_handler_version, request_id=request_id,
                deadline_s=deadline_s,
            )
        except StaleWorkerError as exc:
            return CensusProbe(
                request_id=request_id, job_id=exc.job_id, worker_id=exc.worker_id,
                version=exc.version, stale_reason=exc.seen, client_ms=elapsed(),
            )
        except JobFailed as exc:
            return CensusProbe(
                request_id=request_id, job_id=exc.job_id,
                worker_id=exc.worker_id or (exc.version.worker_id if exc.version else None),
                version=exc.version,
                error=f"{exc.code}: {exc.worker_message}", client_ms=elapsed(),
            )
        except HonoraClientError as exc:
            return CensusProbe(
                request_id=request_id, job_id=exc.job_id, worker_id=None, version=None,
                error=f"{type(exc).__name__}: {exc}", client_ms=elapsed(),
            )
        return CensusProbe(
            request_id=request_id, job_id=report.job_id, worker_id=report.worker_id,
            version=report.version, client_ms=elapsed(),
        )
