"""Fixtures for the voice cache and voice store tests: a scriptable HTTP server, caches in
temporary directories, moto's S3 server and the local Supabase Storage imitation."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from voice_test_support import ScriptedServer, load_fixture_module

from honora_tts.voices.cache import VoiceCache


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


@pytest.fixture
def make_cache(tmp_path: Path) -> Iterator[Callable[..., VoiceCache]]:
    """Build caches under ``tmp_path``; private URLs allowed unless told otherwise."""
    caches: list[VoiceCache] = []

    def build(**kwargs: Any) -> VoiceCache:
        kwargs.setdefault("root", tmp_path / "voice-cache")
        kwargs.setdefault("allow_private", True)
        kwargs.setdefault("trusted_hosts", ())
        cache = VoiceCache(**kwargs)
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        cache.close()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture(scope="session")
def fake_supabase_module() -> ModuleType:
    return load_fixture_module("fake_supabase_storage")


@pytest.fixture
def supabase_key() -> str:
    return "sb-service-key-" + "Z9" * 20


@pytest.fixture
def fake_supabase(fake_supabase_module: ModuleType, supabase_key: str) -> Iterator[Any]:
    fake = fake_supabase_module.FakeSupabaseStorage(
        supabase_key, buckets={"voices": False, "public-voices": True}
    )
    with fake:
        yield fake


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-protocol server: moto in server mode on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    yield f"http://{host}:{port}"
    moto_server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[str]:
    """A fresh bucket on the moto server (deleted afterwards)."""
    client = boto3.client(
        "s3", endpoint_url=moto_endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
    )
    name = f"voices-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    for obj in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)
