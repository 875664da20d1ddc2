"""The load-balancing worker's HTTP routes in process (real tiny XTTS, Starlette's test
client): readiness, OpenAI's speech request and its errors, server-sent events, the voice
library, honora's job routes, and that the worker serves on after every refusal."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from starlette.testclient import TestClient

from honora_tts.protocol import HANDLER_VERSION
from honora_tts.settings import WorkerSettings
from honora_tts.voices import VoiceCache
from honora_tts.voices.library import LibraryVoices, VoiceLibrary
from honora_tts.worker import build_adapter, http_app
from honora_tts.worker.http_app import HttpWorker, build_app

TINY = {"max_new_tokens": 8}


def _speech(**fields) -> dict:
    return {"model": "tts-1", "input": "Hello there.", "voice": "alloy", "params": TINY, **fields}


def _voice_wav(seconds: float = 2.0, rate: int = 16_000, pitch_hz: float = 170.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * pitch_hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    buffer = io.BytesIO()
    sf.write(buffer, tone.astype("float32"), rate, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Iterator[HttpWorker]:
    root = tmp_path_factory.mktemp("http-worker")
    settings = WorkerSettings.from_env().model_copy(update={"streaming": True})
    library = VoiceLibrary(root / "library")
    served = HttpWorker(library, concurrency=2)
    cache = VoiceCache.from_settings(settings, root=root / "voice-cache")
    served.set_ready(build_adapter(settings, voices=LibraryVoices(library, cache)))
    yield served
    cache.close()


@pytest.fixture(scope="module")
def client(worker: HttpWorker) -> Iterator[TestClient]:
    with TestClient(build_app(worker), raise_server_exceptions=False) as test_client:
        yield test_client


def _assert_error(response, status: int, code: str, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["code"] == code
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    if param is not None:
        assert error["param"] == param
    assert response.headers["X-Honora-Handler-Version"] == str(HANDLER_VERSION)
    return error


def test_a_loading_worker_answers_204_on_ping_and_503_with_retry_after(worker):
    loading_worker = HttpWorker(worker.library)
    with TestClient(build_app(loading_worker)) as client:
        assert client.get("/ping").status_code == 204
        loading = client.get("/health")
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        refused = client.post("/v1/audio/speech", json=_speech())
        _assert_error(refused, 503, "model_not_ready")
        assert refused.headers["Retry-After"] == "5"
        assert worker.adapter is not None
        loading_worker.set_ready(worker.adapter)
        ping = client.get("/ping")
        assert ping.status_code == 200 and ping.json() == {"status": "healthy"}
        health = client.get("/health").json()
        assert health["status"] == "healthy" and health["version"]["handler_version"] == 2
        assert health["health"]["http"]["errors:model_not_ready"] == 1


def test_speech_streams_audio_with_the_build_in_its_headers(worker, client):
    with client.stream("POST", "/v1/audio/speech",
                       json=_speech(response_format="wav", instructions="cheerful")) as answer:
        assert answer.status_code == 200
        data = b"".join(answer.iter_bytes())
    headers = answer.headers
    assert headers["content-type"] == "audio/wav"
    assert len(headers["X-Honora-Git-Sha"]) >= 7
    assert headers["X-Honora-Model-Sha256"] == client.get("/health").json()["version"][
        "model_sha256"]
    assert headers["X-Honora-Ignored"] == "instructions"
    assert float(headers["X-Honora-First-Chunk-Ms"]) > 0
    samples, rate = sf.read(io.BytesIO(data))
    assert rate == 24_000 and samples.size > 0.2 * rate


def test_server_sent_events_have_openais_shapes_and_end_with_usage(client):
    answer = client.post("/v1/audio/speech", json=_speech(response_format="pcm",
                                                          stream_format="sse"))
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(block[len("data: "):]) for block in answer.text.split("\n\n") if block]
    *deltas, done = events
    assert deltas and all(set(e) == {"type", "audio"} for e in deltas)
    assert {e["type"] for e in deltas} == {"speech.audio.delta"}
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert done["type"] == "speech.audio.done"
    seconds = len(pcm) / 2 / 24_000
    assert done["honora"]["streamed_duration_s"] == pytest.approx(seconds, abs=1e-3)
    assert done["usage"]["input_tokens"] == len("Hello there.")
    assert done["usage"]["output_tokens"] == round(seconds * 22_050 / 1_024)
    assert done["usage"]["total_tokens"] == sum(
        done["usage"][k] for k in ("input_tokens", "output_tokens"))


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    (_speech(model="tts-9"), 400, "invalid_input", "model"),
    (_speech(input=""), 400, "text_empty", "input"),
    (_speech(input="a" * 5001), 400, "text_too_long", "input"),
    (_speech(voice="nobody"), 404, "voice_not_found", "voice"),
    (_speech(speed=3.0), 400, "invalid_input", "speed"),
    (_speech(response_format="ogg"), 400, "invalid_input", "response_format"),
    (_speech(language="xx"), 400, "unsupported_language", "language"),
    (_speech(voice_url="file:///etc/passwd"), 400, "voice_url_forbidden", "voice_url"),
    (_speech(speaker_wav="UklGRg=="), 400, "voice_embedded", "speaker_wav"),
    (_speech(colour="blue"), 400, "invalid_input", "colour"),
    (_speech(params={"temperature": 9}), 400, "invalid_input", "params.temperature"),
    ({"input": "Hello."}, 400, "invalid_input", "model"),
    ([1, 2, 3], 400, "invalid_input", "body"),
])
def test_bad_speech_requests_get_openai_shaped_errors_with_honoras_codes(
        client, body, status, code, param):
    _assert_error(client.post("/v1/audio/speech", json=body), status, code, param)


@pytest.mark.parametrize("raw", [
    b'{"model": "tts-1", "input": "Hi", "voice": "alloy", "speed": NaN}',
    b'{"model": "tts-1", "input": "Hi"',
    b"\xff\xfe not utf-8",
    b"[" * 801 + b"]" * 801,
    b"[" * 100_000 + b"]" * 100_000,
])
def test_bodies_that_are_not_json_or_nest_too_deep_are_refused(client, raw):
    _assert_error(client.post("/v1/audio/speech", content=raw), 400, "invalid_input", "body")


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(client, monkeypatch):
    monkeypatch.setattr(http_app, "MAX_JSON_BYTES", 4096)
    body = json.dumps(_speech(input="b" * 5000)).encode()
    _assert_error(client.post("/v1/audio/speech", content=body), 413, "request_too_large")
    chunked = client.post("/v1/audio/speech", content=iter([body[:3000], body[3000:]]))
    _assert_error(chunked, 413, "request_too_large")


def test_an_uploaded_voice_gets_a_name_is_listed_and_speaks(client, worker):
    # A pitch of its own: no latents of this voice are on disk from an earlier run.
    sample = _voice_wav(pitch_hz=float(np.random.default_rng().uniform(120, 240)))
    upload = client.post("/v1/audio/voices", data={"name": "billy", "consent": "cons_1"},
                         files={"audio_sample": ("billy.wav", sample, "audio/wav")})
    assert upload.status_code == 200, upload.text
    voice = upload.json()
    assert voice["id"] == voice["name"] == "billy" and voice["object"] == "audio.voice"
    listed = client.get("/v1/audio/voices").json()
    assert [v["id"] for v in listed["data"]] == ["billy"]
    assert "alloy" in listed["default_voices"]
    before = worker.adapter.service.health()["latent_cache"]["latents_computed"]
    for _ in range(2):
        answer = client.post("/v1/audio/speech", json=_speech(voice="billy",
                                                              response_format="pcm"))
        assert answer.status_code == 200 and len(answer.content) > 1000
    after = worker.adapter.service.health()["latent_cache"]["latents_computed"]
    assert after == before + 1, "the named voice's latents are computed once"
    # The same file sent by content hash is the same voice: no new latents.
    job = client.post("/honora/v1/runsync", json={"input": {
        "text": "Hi.", "voice_url": "library:billy", "voice_sha256": voice["sha256"],
        "params": TINY}}).json()
    assert job["status"] == "COMPLETED" and job["output"]["cache"]["latents"] == "hit"


@pytest.mark.parametrize(("form", "files", "code", "param"), [
    ({"name": "Bad Name"}, {"audio_sample": ("v.wav", _voice_wav(), "audio/wav")},
     "invalid_input", "name"),
    ({"name": "noise"}, {"audio_sample": ("v.wav", b"not audio at all" * 100, "audio/wav")},
     "voice_not_audio", None),
    ({"name": "short"}, {"audio_sample": ("v.wav", _voice_wav(0.2), "audio/wav")},
     "voice_not_audio", None),
    ({"name": "nofile"}, None, "invalid_input", "audio_sample"),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(client, form, files, code, param):
    before = client.get("/v1/audio/voices").json()["data"]
    answer = client.post("/v1/audio/voices", data=form, files=files or {"x": ("x", b"x")})
    _assert_error(answer, 400, code, param)
    assert client.get("/v1/audio/voices").json()["data"] == before


def test_an_upload_that_is_not_a_form_is_refused(client):
    _assert_error(client.post("/v1/audio/voices", content=_voice_wav(),
                              headers={"content-type": "audio/wav"}),
                  400, "invalid_input", "body")


def test_honoras_job_routes_answer_runpods_job_object(client):
    done = client.post("/honora/v1/runsync", json={"input": {"text": "Hi.", "params": TINY,
                                                             "request_id": "lb-1"}}).json()
    assert done["status"] == "COMPLETED" and done["output"]["request_id"] == "lb-1"
    assert done["output"]["audio"]["format"] == "wav" and done["executionTime"] >= 0
    failed = client.post("/honora/v1/runsync", json={"input": {"text": ""}}).json()
    assert failed["status"] == "FAILED" and json.loads(failed["error"])["code"] == "text_empty"
    assert failed["output"]["version"]["handler_version"] == HANDLER_VERSION
    refused = client.post("/honora/v1/runsync", json={"text": "no input wrapper"})
    _assert_error(refused, 400, "invalid_input", "input")
    lines = client.post("/honora/v1/stream", json={"input": {
        "text": "Hi.", "stream": True, "params": {**TINY, "stream_chunk_size": 4}}}
    ).text.splitlines()
    items = [json.loads(line) for line in lines]
    *outputs, status = items
    assert [o["output"]["type"] for o in outputs][-1] == "final"
    assert {o["output"]["type"] for o in outputs[:-1]} == {"chunk"}
    assert status["status"] == "COMPLETED"


def test_the_worker_served_on_after_every_refusal(client):
    assert client.post("/v1/audio/speech", json=_speech(response_format="mp3")).status_code == 200
    facts = client.get("/health").json()["health"]
    assert facts["model_loaded"] and facts["http"]["errors:invalid_input"] >= 10


def test_the_library_keeps_names_apart_and_refuses_unknown_ones(tmp_path: Path):
    library = VoiceLibrary(tmp_path)
    first = library.add("anna", _voice_wav(1.0))
    second = library.add("anna", _voice_wav(2.0))
    assert first.sha256 != second.sha256 and library.get("anna") == second
    assert library.resolve("anna").path.is_file()
    assert [v.name for v in library.names()] == ["anna"]
    assert library.get("../anna") is None and library.get("ANNA") is None
    with pytest.raises(Exception, match="no voice named 'bob'.*voices: anna"):
        library.resolve("bob")
