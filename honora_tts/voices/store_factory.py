"""Choosing a voice store from the environment (``HONORA_VOICE_STORE`` and each store's
settings).

The local store needs only the standard library; the S3 and Supabase stores need their SDKs
(boto3, storage3), which the light client install leaves out: asking for one without them is a
:class:`VoiceStoreError` that names the extra to install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from honora_tts.settings import SettingsError, VoiceStoreSettings
from honora_tts.voices.local_store import LocalVoiceStore
from honora_tts.voices.stores import VoiceStore, VoiceStoreError

STORE_ENV = VoiceStoreSettings.env_names()["kind"]

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


def voice_store_from_env(env: Mapping[str, str] | None = None) -> VoiceStore:
    """The store the environment (default: the process's) configures: see
    :func:`voice_store_from_settings`."""
    try:
        settings = VoiceStoreSettings.from_env(env)
    except SettingsError as exc:
        raise VoiceStoreError(str(exc)) from None
    return voice_store_from_settings(settings)


def voice_store_from_settings(settings: VoiceStoreSettings) -> VoiceStore:
    """The store ``settings`` configure.

    ``HONORA_VOICE_STORE`` = ``local`` | ``s3`` | ``supabase``; when unset: ``supabase`` if
    ``SUPABASE_URL`` and ``SUPABASE_KEY`` are set, ``s3`` if ``HONORA_S3_BUCKET`` is set, else
    ``local`` (in ``HONORA_LOCAL_VOICE_STORE_DIR``). The S3 and Supabase SDKs are imported only
    when chosen.
    """
    kind = settings.kind
    if kind is None:
        if settings.supabase_url and settings.supabase_key:
            kind = "supabase"
        elif settings.s3_bucket:
            kind = "s3"
        else:
            kind = "local"
    if kind == "local":
        return LocalVoiceStore(settings.local_dir.expanduser())
    if kind == "s3":
        if not settings.s3_bucket:
            raise VoiceStoreError(f"{STORE_ENV}=s3 needs HONORA_S3_BUCKET (the bucket name)")
        return s3_store_class()(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=_secret(settings.aws_access_key_id),
            secret_access_key=_secret(settings.aws_secret_access_key),
            region=settings.aws_region,
            prefix=settings.s3_prefix,
        )
    if not settings.supabase_url or not settings.supabase_key:
        raise VoiceStoreError(
            f"{STORE_ENV}=supabase needs SUPABASE_URL (https://<project>.supabase.co) "
            "and SUPABASE_KEY"
        )
    return supabase_store_class()(
        settings.supabase_url,
        settings.supabase_key.get_secret_value(),
        bucket=settings.supabase_bucket,
        public=settings.supabase_public,
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
