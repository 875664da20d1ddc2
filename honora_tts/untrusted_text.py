"""Text from a request (or a worker) on its way to a log line, an error or a terminal: control
characters, Unicode line and paragraph separators and bidirectional overrides are written as
visible escapes (``\\n``, ``\\x1b``, ``\\u2028``, ``\\u202e``), so such text can neither forge a
log line nor drive a terminal."""

from __future__ import annotations

#: Bidirectional controls reorder what a terminal shows (U+061C, U+200E/F, U+202A-E, U+2066-9).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_SEPARATORS = frozenset("\u2028\u2029\x85")


def _unsafe(ch: str, keep: str) -> bool:
    if ch in keep:
        return False
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or ch in _LINE_SEPARATORS or ch in _BIDI


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` with control characters, line separators and bidirectional overrides written as
    escapes; characters in ``keep`` (e.g. ``"\\n\\t"``) are left alone."""
    if not any(_unsafe(ch, keep) for ch in text):
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if _unsafe(ch, keep) else ch for ch in text
    )
