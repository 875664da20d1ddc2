"""The one place the client reads the worker's result envelope (a finished job's output and
error) into a :class:`~honora_tts.protocol.SynthesisResponse`, with the stale-worker and
request-id checks."""

from __future__ import annotations

from honora_tts.client._exceptions import interpret
from honora_tts.client.results import JobStatus
from honora_tts.protocol import HANDLER_VERSION, SynthesisResponse


class ResponseReader:
    """Reads finished jobs; ``min_handler_version``: older workers count as stale."""

    def __init__(self, min_handler_version: int = HANDLER_VERSION) -> None:
        self.min_handler_version = min_handler_version

    def read(
        self, status: JobStatus, request_id: str, *, min_handler_version: int | None = None
    ) -> SynthesisResponse:
        """The worker's response, or the typed error (JobFailed, StaleWorkerError, ...)."""
        minimum = self.min_handler_version if min_handler_version is None else min_handler_version
        return interpret(status, request_id=request_id, min_handler_version=minimum)
