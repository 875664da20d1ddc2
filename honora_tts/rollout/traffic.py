"""A steady load of synthesis requests during a rollout, each recorded with the worker and build
that answered it, so the report can count what old and new workers answered during the overlap
and show that no request was lost (each one ends COMPLETED or with a named error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Self

from honora_tts.client import HonoraClientError, StaleWorkerError

if TYPE_CHECKING:
    from honora_tts.client import EndpointClient


@dataclass(frozen=True)
class AnsweredRequest:
    """One request of the load and how it ended. ``outcome`` is ``COMPLETED`` or the error's
    type (``StaleWorkerError`` is the old batch-only worker's named answer)."""

    request_id: str
    sent_at: float
    answered_at: float
    outcome: str
    worker_id: str | None = None
    git_sha: str | None = None
    handler_version: int | None = None
    error: str | None = None

    @property
    def completed(self) -> bool:
        return self.outcome == "COMPLETED"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SteadyLoad:
    """``concurrency`` threads, each sending one synthesis request after another (``interval_s``
    apart) until :meth:`stop`. Use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(
        self,
        client: EndpointClient,
        *,
        text: str = "Hello.",
        concurrency: int = 1,
        interval_s: float = 0.5,
        params: Mapping[str, Any] | None = None,
        deadline_s: float = 120.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a steady load needs at least one sender")
        self.client = client
        self.text = text
        self.concurrency = concurrency
        self.interval_s = interval_s
        self.params = dict(params) if params else None
        self.deadline_s = deadline_s
        self._records: list[AnsweredRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Self:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._send_loop, name=f"steady-load-{index}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[AnsweredRequest]:
        """Stop sending; wait for the requests in flight to end; every record."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.deadline_s + 30)
        return self.records

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def records(self) -> list[AnsweredRequest]:
        with self._lock:
            return sorted(self._records, key=lambda r: r.answered_at)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            record = self._send_one()
            with self._lock:
                self._records.append(record)
            self._stop.wait(self.interval_s)

    def _send_one(self) -> AnsweredRequest:
        sent = time.time()
        from honora_tts.client import new_request_id

        request_id = new_request_id()
        try:
            result = self.client.synthesize(
                self.text, params=self.params, request_id=request_id, deadline_s=self.deadline_s
            )
        except StaleWorkerError as exc:
            return AnsweredRequest(
                request_id, sent, time.time(), type(exc).__name__, worker_id=exc.worker_id,
                git_sha=exc.version.git_sha if exc.version else None,
                handler_version=exc.version.handler_version if exc.version else None,
                error=exc.seen,
            )
        except HonoraClientError as exc:
            version = getattr(exc, "version", None)
            return AnsweredRequest(
                request_id, sent, time.time(), type(exc).__name__,
                worker_id=getattr(exc, "worker_id", None),
                git_sha=version.git_sha if version else None, error=str(exc)[:500],
            )
        return AnsweredRequest(
            request_id, sent, time.time(), "COMPLETED", worker_id=result.worker_id,
            git_sha=result.version.git_sha, handler_version=result.version.handler_version,
        )
