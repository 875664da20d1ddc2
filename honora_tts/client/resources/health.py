"""Health: one health job (which build answers, is its model loaded) and RunPod's counts."""

from __future__ import annotations

from honora_tts.client import _constants as C
from honora_tts.client._base_client import Deadline, new_request_id
from honora_tts.client._requests import build_request
from honora_tts.client._response_reader import ResponseReader
from honora_tts.client.job_runner import JobRunner
from honora_tts.client.results import EndpointHealth, HealthReport, Timings


class Health:
    """``health_job`` and ``health`` of :class:`EndpointClient`."""

    def __init__(self, jobs: JobRunner, responses: ResponseReader) -> None:
        self.jobs = jobs
        self.responses = responses

    def job(
        self,
        *,
        min_handler_version: int | None = None,
        request_id: str | None = None,
        deadline_s: float | None = None,
    ) -> HealthReport:
        """Run one health job through ``/runsync`` (it does no work: nothing is lost with a
        lost answer, and it is answered the moment the job ends)."""
        deadline = Deadline(C.DEFAULT_HEALTH_DEADLINE_S if deadline_s is None else deadline_s)
        request_id = request_id or new_request_id()
        job_input = build_request(action="health", request_id=request_id).to_input()
        status, timing = self.jobs.execute(job_input, request_id, deadline, waiting=True)
        response = self.responses.read(
            status, request_id, min_handler_version=min_handler_version
        )
        return HealthReport(
            status=response.status,
            version=response.version,
            request_id=request_id,
            job_id=status.id,
            worker_id=status.worker_id or response.version.worker_id,
            health=response.health or {},
            timings=Timings(
                client_ms=deadline.elapsed_ms(), delay_ms=status.delay_ms,
                execution_ms=status.execution_ms, submit_ms=timing.submit_ms,
                polls=timing.polls,
            ),
        )

    def endpoint(self, deadline_s: float | None = None) -> EndpointHealth:
        """``GET /health``: job and worker counts by state."""
        return self.jobs.endpoint_health(None if deadline_s is None else Deadline(deadline_s))
