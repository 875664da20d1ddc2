"""LocalVoiceStore: a directory served over HTTP on 127.0.0.1, exercised with real requests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from voice_test_support import voice_bytes

from honora_tts.voices.audio_check import REFERENCE_RATE
from honora_tts.voices.cache import VoiceCache
from honora_tts.voices.local_store import LocalVoiceStore
from honora_tts.voices.stores import StoredVoice, VoiceStore, VoiceStoreError


def _voice_file(tmp_path: Path, name: str = "Speaker.WAV") -> Path:
    path = tmp_path / name
    path.write_bytes(voice_bytes(fmt=path.suffix.lstrip(".").upper()))
    return path


def test_upload_is_content_addressed_deduplicated_and_served(tmp_path: Path) -> None:
    voice = _voice_file(tmp_path)
    sha = hashlib.sha256(voice.read_bytes()).hexdigest()
    with LocalVoiceStore(tmp_path / "store") as store:
        assert isinstance(store, VoiceStore)
        first = store.upload(voice)
        second = store.upload(voice)

        assert first == StoredVoice(url=f"{store.base_url}/{sha}.wav", sha256=sha,
                                    key=f"{sha}.wav", uploaded=True)
        assert second.uploaded is False and second.url == first.url
        assert store.uploads == 1
        assert (tmp_path / "store" / f"{sha}.wav").read_bytes() == voice.read_bytes()

        response = httpx.get(first.url)
        assert response.status_code == 200
        assert response.content == voice.read_bytes()
        assert response.headers["content-type"] == "audio/wav"
        assert store.requests_served == 1


def test_a_damaged_stored_copy_is_rewritten(tmp_path: Path) -> None:
    voice = _voice_file(tmp_path)
    with LocalVoiceStore(tmp_path / "store") as store:
        stored = store.upload(voice)
        (tmp_path / "store" / stored.key).write_bytes(b"damaged")
        assert store.upload(voice).uploaded is True
        assert httpx.get(stored.url).content == voice.read_bytes()


@pytest.mark.parametrize(
    "path", ["/", "/index.json", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
             "/" + "a" * 64 + ".wav"],
)
def test_only_stored_voices_can_be_requested(tmp_path: Path, path: str) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "index.json").write_text("{}")
    with LocalVoiceStore(tmp_path / "store") as store:
        response = httpx.get(f"{store.base_url}{path}")
        assert response.status_code == 404
        assert store.requests_served == 0


def test_upload_starts_the_server_and_close_stops_it(tmp_path: Path) -> None:
    store = LocalVoiceStore(tmp_path / "store")
    with pytest.raises(VoiceStoreError):
        _ = store.base_url
    stored = store.upload(_voice_file(tmp_path))
    assert httpx.get(stored.url).status_code == 200
    store.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(stored.url)


def test_busy_port_is_a_store_error(tmp_path: Path) -> None:
    with LocalVoiceStore(tmp_path / "a") as first:
        second = LocalVoiceStore(tmp_path / "b", port=first.port)
        with pytest.raises(VoiceStoreError, match="choose another port"):
            second.start()


def test_worker_cache_fetches_what_the_local_store_serves(
    tmp_path: Path, make_cache: Callable[..., VoiceCache]
) -> None:
    voice = _voice_file(tmp_path, "voice.flac")
    with LocalVoiceStore(tmp_path / "store") as store:
        stored = store.upload(voice)
        cache = make_cache(allow_private=True)
        fetched = cache.fetch(stored.url, expected_sha256=stored.sha256)
        assert fetched.sha256 == stored.sha256  # the content the store served
        assert sf.info(fetched.path).samplerate == REFERENCE_RATE  # prepared for the model
        assert cache.fetch(stored.url, expected_sha256=stored.sha256).cache == "hit"
        assert store.requests_served == 1
