"""Client-side voice stores: where a caller puts a reference voice so that workers can fetch it.

A voice is uploaded once under a content-addressed key (``{prefix}{sha256}{suffix}``) and
requests carry only its URL (and hash), never the audio. Three stores implement
:class:`VoiceStore`:

- :class:`~honora_tts.voices.local_store.LocalVoiceStore`: a directory served over HTTP on
  127.0.0.1, for localpod and in-process engines (workers need ``HONORA_ALLOW_PRIVATE_URLS=1``).
- :class:`~honora_tts.voices.s3_store.S3VoiceStore`: any S3-compatible bucket, presigned URLs.
- :class:`~honora_tts.voices.supabase_store.SupabaseVoiceStore`: Supabase Storage, public or
  signed URLs.

Failures to reach a store or to authenticate raise :class:`VoiceStoreError`, whose message
names the settings to check and never holds a secret. URLs returned by stores may carry signing
tokens: log them with :func:`~honora_tts.voices.url_safety.describe_url` (host and path only).

This module holds what the stores share; :mod:`~honora_tts.voices.store_factory` picks one
from the environment (so that the stores import this module and nothing imports back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from honora_tts.voices.url_safety import describe_url

CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
}


class VoiceStoreError(Exception):
    """A voice store could not be reached, refused the credentials or failed an operation.

    The message says what to check (which environment variables) and never holds a secret.
    """


@dataclass(frozen=True, repr=False)
class StoredVoice:
    """Where an uploaded voice lives. ``uploaded`` is False when it was already there."""

    url: str
    sha256: str
    key: str
    uploaded: bool

    def __repr__(self) -> str:
        # The URL may be presigned: show host and path only.
        return (
            f"StoredVoice(url={describe_url(self.url)!r}, sha256={self.sha256!r}, "
            f"key={self.key!r}, uploaded={self.uploaded})"
        )


@runtime_checkable
class VoiceStore(Protocol):
    """Uploads a voice file once (content-addressed) and returns a URL workers can fetch."""

    name: str

    def upload(self, path: Path) -> StoredVoice:
        """Upload ``path`` unless its content is already stored; return where it lives."""
        ...


def content_key(sha256: str, suffix: str, prefix: str = "") -> str:
    """The store key of a voice: ``{prefix}{sha256}{suffix}`` (suffix lower-cased)."""
    return f"{prefix}{sha256}{suffix.lower()}"


def content_type_for(suffix: str) -> str:
    """The MIME type to store a voice file with, from its suffix."""
    return CONTENT_TYPES.get(suffix.lower(), "application/octet-stream")


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
