"""Request rate limits: a sliding window per operation, answered with 429 and ``Retry-After``
the way RunPod limits ``/run``, ``/runsync``, ``/status`` ... per 10 seconds."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 10.0


class SlidingWindowLimiter:
    """At most ``limit`` requests in any ``window_s`` seconds."""

    def __init__(
        self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one request per window")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def acquire(self) -> int | None:
        """Count one request. Returns None when it is allowed, else the whole seconds to wait
        before the oldest request in the window leaves it (the ``Retry-After`` value)."""
        now = self._clock()
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return max(1, math.ceil(self._times[0] + self.window_s - now))
        self._times.append(now)
        return None
