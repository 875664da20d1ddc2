"""Client test fixtures: a scripted endpoint (MockTransport), a counting voice store, and a
voices directory holding a generated voice."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from client_testing import API_BASE, API_KEY, ENDPOINT_ID, FakeRunPod, write_voice

from honora_tts.client import EndpointClient, RetryPolicy


class CountingVoiceStore:
    """A voice store that 'uploads' by remembering files and counts the uploads."""

    name = "counting"

    def __init__(self) -> None:
        self.uploads = 0
        self._lock = threading.Lock()

    def upload(self, path: Path):
        from honora_tts.voices import StoredVoice

        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        with self._lock:
            self.uploads += 1
        return StoredVoice(url=f"https://voices.test/{sha}.wav", sha256=sha,
                           key=f"{sha}.wav", uploaded=True)


class Sleeps(list):
    """Records the client's sleeps instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakeRunPod:
    return FakeRunPod()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def voice_store() -> CountingVoiceStore:
    return CountingVoiceStore()


@pytest.fixture
def make_client(fake: FakeRunPod, sleeps: Sleeps, voice_store: CountingVoiceStore):
    clients: list[EndpointClient] = []

    def make(**kwargs) -> EndpointClient:
        kwargs.setdefault("retry", RetryPolicy(max_attempts=4))
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("voice_store", voice_store)
        client = EndpointClient(
            ENDPOINT_ID, API_KEY, API_BASE, transport=fake.transport(), **kwargs
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client) -> EndpointClient:
    return make_client()


@pytest.fixture
def voices_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "voices"
    write_voice(directory / "AI_Voice_Honora_Billy.wav")
    monkeypatch.setenv("HONORA_VOICES_DIR", str(directory))
    return directory
