"""Choosing a voice store from the environment (``HONORA_VOICE_STORE`` and each store's
settings).

The local store needs only the standard library; the S3 and Supabase stores need their SDKs
(boto3, storage3), which the light client install leaves out: asking for one without them is a
:class:`VoiceStoreError` that names the extra to install.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from honora_tts.voices.local_store import LocalVoiceStore
from honora_tts.voices.stores import (
    STORE_ENV,
    VoiceStore,
    VoiceStoreError,
    default_local_store_dir,
)

STORES_EXTRA = "pip install 'honora-tts[stores]'"


def s3_store_class() -> Any:
    """:class:`~honora_tts.voices.s3_store.S3VoiceStore` (imports boto3)."""
    try:
        from honora_tts.voices.s3_store import S3VoiceStore
    except ImportError as exc:
        raise VoiceStoreError(
            f"the S3 voice store needs boto3, which is not installed ({exc}): {STORES_EXTRA}"
        ) from exc
    return S3VoiceStore


def supabase_store_class() -> Any:
    """:class:`~honora_tts.voices.supabase_store.SupabaseVoiceStore` (imports storage3)."""
    try:
        from honora_tts.voices.supabase_store import SupabaseVoiceStore
    except ImportError as exc:
        raise VoiceStoreError(
            "the Supabase voice store needs storage3, which is not installed "
            f"({exc}): {STORES_EXTRA}"
        ) from exc
    return SupabaseVoiceStore


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
    # The SDK-backed stores are imported only when chosen.
    kind = (env.get(STORE_ENV) or "").strip().lower()
    if not kind:
        if env.get("SUPABASE_URL") and env.get("SUPABASE_KEY"):
            kind = "supabase"
        elif env.get("HONORA_S3_BUCKET"):
            kind = "s3"
        else:
            kind = "local"
    if kind == "local":
        return LocalVoiceStore(default_local_store_dir(env))
    if kind == "s3":
        bucket = env.get("HONORA_S3_BUCKET")
        if not bucket:
            raise VoiceStoreError(f"{STORE_ENV}=s3 needs HONORA_S3_BUCKET (the bucket name)")
        return s3_store_class()(
            bucket,
            endpoint_url=env.get("HONORA_S3_ENDPOINT_URL") or None,
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            prefix=env.get("HONORA_S3_PREFIX", "voices/"),
        )
    if kind == "supabase":
        url, key = env.get("SUPABASE_URL"), env.get("SUPABASE_KEY")
        if not url or not key:
            raise VoiceStoreError(
                f"{STORE_ENV}=supabase needs SUPABASE_URL (https://<project>.supabase.co) "
                "and SUPABASE_KEY"
            )
        return supabase_store_class()(
            url,
            key,
            bucket=env.get("HONORA_SUPABASE_BUCKET") or "voices",
            public=env.get("HONORA_SUPABASE_PUBLIC", "").strip() == "1",
        )
    raise VoiceStoreError(
        f"{STORE_ENV}={kind!r} is not a voice store; use local, s3 or supabase"
    )
