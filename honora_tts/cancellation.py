"""Cancelling a synthesis that is under way, from any thread.

A caller hands :class:`~honora_tts.synthesis.SynthesisService` a :class:`CancelToken` with the
request and calls :meth:`CancelToken.cancel` when the answer is no longer wanted: the RunPod
worker when the platform stops a job (its per-job stop cancels the job's task), an HTTP server
when its client disconnects, a test. The work then stops at its next check: between two
pipeline stages (voice, latents, synthesis, encoding), between two decoding steps (the row
leaves its batch), or before it starts when it still waits for a row; what was stopped raises
:class:`SynthesisCancelled`. Callbacks registered with :meth:`CancelToken.on_cancel` run once, on
the cancelling thread, so a waiting decoder can be woken at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from honora_tts.protocol import ErrorCode, WorkerError


class SynthesisCancelled(WorkerError):
    """The caller cancelled the request (``code`` is ``cancelled``); its work has stopped.
    Nothing to fix: send the request again if its answer is still wanted."""

    def __init__(self, reason: str):
        super().__init__(ErrorCode.CANCELLED, f"the request was cancelled: {reason}")
        self.reason = reason


class CancelToken:
    """One request's cancellation flag, safe to set from any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled by the caller") -> None:
        """Cancel (once; later calls change nothing) and run the registered callbacks."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`SynthesisCancelled` when cancelled."""
        if self._event.is_set():
            raise SynthesisCancelled(self.reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (True) or ``timeout`` seconds pass (False)."""
        return self._event.wait(timeout)

    @contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run ``callback`` if the token is cancelled while the block runs (at once, if it
        already is)."""
        with self._lock:
            already = self._event.is_set()
            key = self._next
            self._next += 1
            if not already:
                self._callbacks[key] = callback
        if already:
            callback()
        try:
            yield
        finally:
            with self._lock:
                self._callbacks.pop(key, None)
