"""Keeping the API key out of logs, exception messages and reprs.

The client registers its key here; every client exception message passes through
:func:`redact`, and :class:`RedactingFilter` rewrites log records of the client's loggers.
"""

from __future__ import annotations

import logging
import threading

_MIN_SECRET_CHARS = 4
_MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` masks it from now on."""
    if secret and len(secret) >= _MIN_SECRET_CHARS:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not _secrets:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def mask(secret: str | None) -> str:
    """How a secret is shown in reprs: its presence, never its value."""
    return _MASK if secret else "<unset>"


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its formatted traceback) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: show its parts, redacted
            message = f"{record.msg} {record.args}"
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_installed: set[str] = set()


def install_redaction(logger: logging.Logger) -> logging.Logger:
    """Attach one :class:`RedactingFilter` to ``logger`` (idempotent) and return it."""
    with _lock:
        if logger.name not in _installed:
            logger.addFilter(RedactingFilter())
            _installed.add(logger.name)
    return logger
