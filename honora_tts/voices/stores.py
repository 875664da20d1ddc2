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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from honora_tts.voices.url_safety import describe_url

STORE_ENV = "HONORA_VOICE_STORE"
LOCAL_DIR_ENV = "HONORA_LOCAL_VOICE_STORE_DIR"
DEFAULT_LOCAL_DIR = Path("~/.cache/honora-tts/voice-store")

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


def default_local_store_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``HONORA_LOCAL_VOICE_STORE_DIR`` or ``~/.cache/honora-tts/voice-store``."""
    return Path(env.get(LOCAL_DIR_ENV) or DEFAULT_LOCAL_DIR).expanduser()


def voice_store_from_env(env: Mapping[str, str] = os.environ) -> VoiceStore:
    """The store the environment configures.

    ``HONORA_VOICE_STORE`` = ``local`` | ``s3`` | ``supabase``; when unset: ``supabase`` if
    ``SUPABASE_URL`` and ``SUPABASE_KEY`` are set, ``s3`` if ``HONORA_S3_BUCKET`` is set, else
    ``local``.

    - local: ``HONORA_LOCAL_VOICE_STORE_DIR`` (default ``~/.cache/honora-tts/voice-store``).
    - s3: ``HONORA_S3_BUCKET``, ``HONORA_S3_ENDPOINT_URL``, ``HONORA_S3_PREFIX`` (default
      ``voices/``); credentials and region from boto3's own ``AWS_ACCESS_KEY_ID``,
      ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``.
    - supabase: ``SUPABASE_URL``, ``SUPABASE_KEY``, ``HONORA_SUPABASE_BUCKET`` (default
      ``voices``), ``HONORA_SUPABASE_PUBLIC=1`` for public URLs instead of signed ones.
    """
    # Imported here so that choosing one store does not import the others' SDKs.
    kind = (env.get(STORE_ENV) or "").strip().lower()
    if not kind:
        if env.get("SUPABASE_URL") and env.get("SUPABASE_KEY"):
            kind = "supabase"
        elif env.get("HONORA_S3_BUCKET"):
            kind = "s3"
        else:
            kind = "local"
    if kind == "local":
        from honora_tts.voices.local_store import LocalVoiceStore

        return LocalVoiceStore(default_local_store_dir(env))
    if kind == "s3":
        from honora_tts.voices.s3_store import S3VoiceStore

        bucket = env.get("HONORA_S3_BUCKET")
        if not bucket:
            raise VoiceStoreError(f"{STORE_ENV}=s3 needs HONORA_S3_BUCKET (the bucket name)")
        return S3VoiceStore(
            bucket,
            endpoint_url=env.get("HONORA_S3_ENDPOINT_URL") or None,
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            prefix=env.get("HONORA_S3_PREFIX", "voices/"),
        )
    if kind == "supabase":
        from honora_tts.voices.supabase_store import SupabaseVoiceStore

        url, key = env.get("SUPABASE_URL"), env.get("SUPABASE_KEY")
        if not url or not key:
            raise VoiceStoreError(
                f"{STORE_ENV}=supabase needs SUPABASE_URL (https://<project>.supabase.co) "
                "and SUPABASE_KEY"
            )
        return SupabaseVoiceStore(
            url,
            key,
            bucket=env.get("HONORA_SUPABASE_BUCKET") or "voices",
            public=env.get("HONORA_SUPABASE_PUBLIC", "").strip() == "1",
        )
    raise VoiceStoreError(
        f"{STORE_ENV}={kind!r} is not a voice store; use local, s3 or supabase"
    )
