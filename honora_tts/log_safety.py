"""What may reach a log line or a terminal: request text defused, secrets and signatures masked.

Two threats, one place:

- Log forging: a request's text (an unknown field name, a section id, a URL) can hold a line
  break or a terminal escape. :func:`honora_tts.untrusted_text.escape_controls` writes them
  as visible escapes; errors (:class:`honora_tts.protocol.ErrorInfo`) apply it to their
  ``message`` and ``field``, and :class:`SafeFormatter` to every log record.
- Secrets in logs: with ``--verbose`` httpx logs each request's full URL, signed query
  included. :func:`redact_secrets` masks signature and token query parameters
  (``X-Amz-Signature``, ``X-Amz-Credential``, ``token``, ``sig``, ...), bearer tokens, JWTs and
  every secret the client registered (:func:`honora_tts.redaction.register_secret`).

:func:`configure_logging` is how every entry point of the project (worker, CLI, localpod, qa)
sets logging up: it puts :class:`SafeFormatter` on every root handler (and on the handlers it
is given), so records of every library (httpx, httpcore, runpod, papermill) pass through it.
A record's own line breaks (tracebacks, multi-line messages) are kept, but every continuation
line is indented, so nothing inside a record can pass for a record of its own.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from honora_tts.redaction import redact
from honora_tts.untrusted_text import escape_controls

_MASK = "***"
_CONTINUATION = "\n    | "
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:signature|sig|token|credential|secret|password|passwd|apikey"
    r"|api_key|access_key|key|auth)[\w.-]*)=)[^&;#\s\"'<>]*"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def redact_secrets(text: str) -> str:
    """``text`` with signed-URL query values, bearer tokens, JWTs and registered secrets
    masked."""
    text = redact(text)
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + _MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + _MASK, text)
    return _JWT.sub(_MASK, text)


class SafeFormatter(logging.Formatter):
    """Formats with ``inner`` (or its own format), then masks secrets, escapes control
    characters and indents continuation lines."""

    def __init__(self, inner: logging.Formatter | None = None, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record) if self.inner is not None else super().format(record)
        text = escape_controls(redact_secrets(text), keep="\n\t")
        return text.replace("\n", _CONTINUATION)


def make_safe(handlers: Iterable[logging.Handler]) -> None:
    """Put a :class:`SafeFormatter` around each handler's formatter (idempotent)."""
    for handler in handlers:
        if not isinstance(handler.formatter, SafeFormatter):
            handler.setFormatter(SafeFormatter(handler.formatter))


def configure_logging(
    level: int | str = logging.INFO,
    fmt: str = "%(levelname)s %(name)s: %(message)s",
    stream: TextIO | None = None,
) -> None:
    """``logging.basicConfig(level, fmt, stream)`` (a no-op when the root logger already has
    handlers, as under pytest or Jupyter), then every root handler made safe."""
    logging.basicConfig(level=level, format=fmt, stream=stream or sys.stderr)
    make_safe(logging.getLogger().handlers)
