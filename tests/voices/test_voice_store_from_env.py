"""voice_store_from_env: which store the environment selects, and with what settings.
Constructing a store makes no network call."""

from __future__ import annotations

from pathlib import Path

import pytest

from honora_tts.voices.local_store import LocalVoiceStore
from honora_tts.voices.s3_store import S3VoiceStore
from honora_tts.voices.store_factory import voice_store_from_env
from honora_tts.voices.stores import VoiceStoreError
from honora_tts.voices.supabase_store import SupabaseVoiceStore

SUPABASE = {"SUPABASE_URL": "https://project.supabase.co", "SUPABASE_KEY": "sb-secret-key"}


def test_local_is_the_default(tmp_path: Path) -> None:
    store = voice_store_from_env({"HONORA_LOCAL_VOICE_STORE_DIR": str(tmp_path / "voices")})
    assert isinstance(store, LocalVoiceStore)
    assert store.root == tmp_path / "voices"


def test_local_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = voice_store_from_env({})
    assert isinstance(store, LocalVoiceStore)
    assert store.root == tmp_path / ".cache" / "honora-tts" / "voice-store"


def test_supabase_when_its_variables_are_set() -> None:
    store = voice_store_from_env(
        {**SUPABASE, "HONORA_SUPABASE_BUCKET": "clips", "HONORA_SUPABASE_PUBLIC": "1",
         "HONORA_S3_BUCKET": "ignored"}
    )
    assert isinstance(store, SupabaseVoiceStore)
    assert (store.bucket, store.public, store.url) == (
        "clips", True, "https://project.supabase.co"
    )
    assert "sb-secret-key" not in repr(store)
    store.close()


def test_s3_when_a_bucket_is_set() -> None:
    store = voice_store_from_env({
        "HONORA_S3_BUCKET": "team-voices",
        "HONORA_S3_ENDPOINT_URL": "https://minio.example.com:9000",
        "HONORA_S3_PREFIX": "refs/",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "AWS_REGION": "eu-north-1",
    })
    assert isinstance(store, S3VoiceStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        "team-voices", "refs/", "https://minio.example.com:9000"
    )
    assert store._client.meta.region_name == "eu-north-1"
    assert "aws-secret-value" not in repr(store) and "AKIAEXAMPLE" not in repr(store)


def test_explicit_choice_wins(tmp_path: Path) -> None:
    store = voice_store_from_env(
        {**SUPABASE, "HONORA_VOICE_STORE": "local",
         "HONORA_LOCAL_VOICE_STORE_DIR": str(tmp_path)}
    )
    assert isinstance(store, LocalVoiceStore)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"HONORA_VOICE_STORE": "s3"}, "HONORA_S3_BUCKET"),
        ({"HONORA_VOICE_STORE": "supabase", "SUPABASE_URL": "https://x.supabase.co"},
         "SUPABASE_KEY"),
        ({"HONORA_VOICE_STORE": "ftp"}, "HONORA_VOICE_STORE='ftp'.*'local', 's3' or 'supabase'"),
    ],
)
def test_incomplete_settings_say_what_is_missing(env: dict[str, str], names: str) -> None:
    with pytest.raises(VoiceStoreError, match=names):
        voice_store_from_env(env)
