"""Splitting text into pieces XTTS can speak: sentences (pysbd, no spaCy) joined while they fit
a per-language character limit; over-long sentences cut at clauses, then whitespace."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_PYSBD_LANGUAGES = {
    "en", "hi", "mr", "zh", "es", "am", "ar", "hy", "bg", "ur", "ru", "pl", "fa", "nl", "da",
    "fr", "my", "el", "it", "ja", "de", "kk", "sk",
}  # fmt: skip
_CLAUSE_END = re.compile(r"[,;:\u2013\u2014\u060c\u061b\u3001\uff0c\uff1b\uff1a]+\s*")
_WHITESPACE = re.compile(r"\s+")
_PARAGRAPHS = re.compile(r"\s*\n\s*")
_segmenters: dict[str, Any] = {}
_segmenters_lock = threading.Lock()


def _sentences(text: str, language: str) -> list[str]:
    import pysbd

    code = language.split("-")[0].lower()
    code = code if code in _PYSBD_LANGUAGES else "en"
    with _segmenters_lock:
        segmenter = _segmenters.get(code)
        if segmenter is None:
            segmenter = _segmenters[code] = pysbd.Segmenter(language=code, clean=False)
        try:
            return [s for s in segmenter.segment(text) if s.strip()]
        # pysbd's rules can fail on odd input: fall back to clause splitting.
        except Exception:  # noqa: BLE001
            logger.warning("pysbd could not segment %d characters of %s text", len(text), code)
            return [text]


def _split_long(text: str, limit: int, level: int = 0) -> list[str]:
    """Split one over-long sentence: at clause punctuation, then whitespace, then hard cuts."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    patterns = (_CLAUSE_END, _WHITESPACE)
    if level >= len(patterns):
        return [p for p in (text[i:i + limit].strip() for i in range(0, len(text), limit)) if p]
    cuts = [m.end() for m in patterns[level].finditer(text) if 0 < m.end() < len(text)]
    if not cuts:
        return _split_long(text, limit, level + 1)
    segments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return _pack(segments, limit, lambda seg: _split_long(seg, limit, level + 1))


def _pack(segments: list[str], limit: int, split_further: Callable[[str], list[str]]) -> list[str]:
    """Greedily join consecutive segments into pieces of at most ``limit`` characters."""
    pieces: list[str] = []
    current = ""
    for segment in segments:
        if len((current + segment).strip()) <= limit:
            current += segment
            continue
        if current.strip():
            pieces.append(current.strip())
        current = ""
        if len(segment.strip()) <= limit:
            current = segment
        else:
            pieces.extend(split_further(segment))
    if current.strip():
        pieces.append(current.strip())
    return pieces


def split_text(text: str, language: str, limit: int) -> list[str]:
    """Pieces of ``text`` of at most ``limit`` characters: sentences (pysbd, no spaCy) joined
    while they fit; a sentence over the limit is cut at clause punctuation, then at whitespace,
    then every ``limit`` characters. Whitespace inside a piece is collapsed to single spaces."""
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    pieces: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        if not paragraph.strip():
            continue
        sentences = _sentences(paragraph, language)
        pieces.extend(_pack(sentences, limit, lambda s: _split_long(s, limit)))
    return [_WHITESPACE.sub(" ", p).strip() for p in pieces if p.strip()]
