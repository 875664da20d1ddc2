"""An overall deadline for a job: every HTTP call, poll and retry sleep fits inside it."""

from __future__ import annotations

import time

import httpx


class Deadline:
    """A point in monotonic time. ``Deadline(None)`` never expires."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self._at = None if seconds is None else self.started + max(0.0, seconds)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.0

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def allows(self, seconds: float) -> bool:
        """Whether waiting ``seconds`` still ends before the deadline."""
        left = self.remaining()
        return left is None or seconds < left

    def clip(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """``timeout`` with each phase shortened to the time left (at least 50 ms, so that an
        almost-expired deadline still lets a quick call such as a cancel through)."""
        left = self.remaining()
        if left is None:
            return timeout
        left = max(left, 0.05)

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(
            connect=cap(timeout.connect),
            read=cap(timeout.read),
            write=cap(timeout.write),
            pool=cap(timeout.pool),
        )

    def ms_left(self) -> int | None:
        left = self.remaining()
        return None if left is None else int(left * 1000)
