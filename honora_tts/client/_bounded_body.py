"""Reading a response body with a cap on its decompressed size.

httpx inflates ``gzip``/``deflate`` bodies whole: a 300 KB answer can become 300 MB before the
client sees a byte. Here the raw (still compressed) body is read chunk by chunk and inflated
with :mod:`zlib`'s ``max_length``, so no more than the cap (plus one network chunk) is ever
held, however much the body would inflate.
"""

from __future__ import annotations

import io
import zlib
from typing import Any

import httpx

from honora_tts.client._exceptions import InvalidResponse, ResponseTooLarge

_GZIP_WBITS = 16 + zlib.MAX_WBITS
#: ``deflate`` is meant to be zlib-wrapped; some servers send raw deflate (httpx accepts both).
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
#: Inflate at most this much at a time (one network chunk may inflate a thousandfold).
_INFLATE_STEP = 1 << 20


class _Inflater:
    """Incremental, bounded decompression of one content encoding."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_fallback = encoding == "deflate"
        wbits = _GZIP_WBITS if encoding in ("gzip", "x-gzip") else _ZLIB_WBITS
        self._inflate: Any = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room`` bytes inflated from ``data`` (plus earlier unconsumed input)."""
        try:
            out = self._inflate.decompress(data, max(room, 1))
        except zlib.error:
            if not (self._raw_fallback and not self._started):
                raise
            self._inflate = zlib.decompressobj(_RAW_DEFLATE_WBITS)
            out = self._inflate.decompress(data, max(room, 1))
        self._started = True
        return bytes(out)

    @property
    def pending(self) -> bytes:
        return bytes(self._inflate.unconsumed_tail)


def read_body(
    response: httpx.Response, limit: int, what: str, ids: dict[str, Any]
) -> bytes:
    """The body of a streamed ``response``, decompressed, refusing more than ``limit`` bytes.

    Raises :class:`ResponseTooLarge` at the cap and :class:`InvalidResponse` for an encoding
    the client did not ask for or a body that does not inflate. Transport errors (timeouts,
    dropped connections) propagate as httpx raises them.
    """
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): already decoded
        if len(response.content) > limit:
            raise ResponseTooLarge(what, limit, **ids)
        return response.content
    encodings = [
        part.strip().lower()
        for part in response.headers.get("content-encoding", "").split(",")
        if part.strip() and part.strip().lower() != "identity"
    ]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
        raise InvalidResponse(
            f"{what} came with content-encoding {response.headers['content-encoding']!r}, "
            "which this client neither asked for nor reads (it asks for gzip or deflate)",
            **ids,
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"{what} ({int(declared):,} bytes declared)", limit, **ids)
    inflater = _Inflater(encodings[0]) if encodings else None
    # BytesIO.getvalue() hands over its buffer without a copy: the peak stays near the body.
    body = io.BytesIO()
    for chunk in response.iter_raw():
        if inflater is None:
            body.write(chunk)
        else:
            data = chunk
            while data:
                try:
                    room = limit - body.tell() + 1
                    body.write(inflater.feed(data, min(room, _INFLATE_STEP)))
                except zlib.error as exc:
                    raise InvalidResponse(
                        f"{what} is not valid {inflater.encoding} data: {exc}", **ids
                    ) from exc
                if body.tell() > limit:
                    break
                data = inflater.pending
        if body.tell() > limit:
            response.close()
            raise ResponseTooLarge(what, limit, **ids)
    return body.getvalue()
