"""Request bodies read with bounds, for the HTTP servers (localpod's API, the worker's
load-balancing mode): the size is bounded before the body is read, JSON is parsed strictly
(no NaN or Infinity, valid UTF-8) and refused when it nests deeper than any real request
(:mod:`honora_tts.bounded_json`).

Standard library only; the request is any ASGI framework's object with ``headers`` and an
async ``stream()`` (Starlette's ``Request``).
"""

from __future__ import annotations

from typing import Any, Protocol

from honora_tts import bounded_json

#: Deepest nesting of arrays and objects a body may have, the body itself counting as one.
#: Python's JSON encoder gives up near 1000 levels (its recursion limit, reached sooner deep in
#: a server's stack than at parse time); real requests nest a few levels.
MAX_NESTING_DEPTH = 800
#: Bodies whose declared length is beyond this are not even read to the end (the connection
#: is closed after the answer); smaller ones over the limit are read and dropped, so the
#: client gets the answer instead of a reset connection.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class _Request(Protocol):
    @property
    def headers(self) -> Any: ...

    def stream(self) -> Any: ...


async def read_capped(request: _Request, limit: int) -> bytes | int:
    """The body, or its size when it is over ``limit`` bytes (then nothing of it is kept)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max(limit, DRAIN_LIMIT_BYTES):
        return int(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks = []
    return size if size > limit else b"".join(chunks)


def loads_strict(raw: bytes) -> Any:
    """Parse a JSON body; :class:`~honora_tts.bounded_json.JsonRefused` (a ValueError) when it
    is not JSON (NaN and Infinity are not: RunPod's API refuses them), not UTF-8, or nested
    more than :data:`MAX_NESTING_DEPTH` levels."""
    return bounded_json.loads(raw, max_depth=MAX_NESTING_DEPTH)
