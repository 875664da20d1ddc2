"""The worker's RunPod adapter in process: real tiny XTTS, real voice downloads from 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from honora_tts.protocol import HANDLER_VERSION
from honora_tts.settings import WorkerSettings
from honora_tts.version import configure_build
from honora_tts.voices import LocalVoiceStore, VoiceCache
from honora_tts.worker import RunPodAdapter, build_adapter

SHORT = {"max_new_tokens": 24}  # about 1 s of audio per piece: keeps the tests quick


def _voice_wav(path: Path, pitch_hz: float = 170.0, seconds: float = 3.0) -> Path:
    rate = 22_050
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * pitch_hz * k * t) / k for k in (1, 2, 3))
    sf.write(path, (0.25 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype("float32"), rate)
    return path


@pytest.fixture(scope="module")
def voice_store(tmp_path_factory):
    with LocalVoiceStore(root=tmp_path_factory.mktemp("store")) as store:
        yield store


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """The worker as it starts (model from the environment: tiny), with a fresh voice cache
    for this module, so hit/miss facts start from nothing."""
    voices = VoiceCache.from_settings(
        WorkerSettings.from_env(), root=tmp_path_factory.mktemp("voice-cache"))
    yield build_adapter(voices=voices)
    voices.close()


@pytest.fixture
def streaming_worker() -> Iterator[None]:
    """This process configured as a streaming deployment (``HONORA_STREAMING=1``), as
    :func:`~honora_tts.worker.build_adapter` configures a worker's build identity."""
    configure_build(WorkerSettings.from_env({"HONORA_STREAMING": "1"}))
    yield
    configure_build(WorkerSettings.from_env())


def _job(adapter: RunPodAdapter, payload: dict, job_id: str = "job-1") -> dict:
    return adapter.handle({"id": job_id, "input": payload})


def _error(answer: dict) -> dict:
    """A failed job's ``error`` is the JSON text of the structured error (RunPod types it str)."""
    assert isinstance(answer["error"], str)
    return json.loads(answer["error"])


def _decode(audio: dict) -> tuple[np.ndarray, int]:
    data, rate = sf.read(io.BytesIO(base64.b64decode(audio["base64"])))
    return data, rate


def test_health_names_the_build_and_the_model(adapter):
    answer = _job(adapter, {"action": "health", "request_id": "probe-1"})
    assert answer["status"] == "healthy"
    assert answer["request_id"] == "probe-1" and answer["job_id"] == "job-1"
    version = answer["version"]
    for key in ("handler_version", "git_sha", "build_time", "torch_version", "python_version",
                "model_name", "model_sha256", "device"):
        assert version.get(key), key
    assert version["handler_version"] == HANDLER_VERSION
    assert "tiny" in version["model_name"]
    assert answer["health"]["model_loaded"] is True


def test_simple_mode_returns_decodable_24khz_audio(adapter):
    answer = _job(adapter, {"text": "Hello world.", "request_id": "r-simple", "params": SHORT})
    assert answer["status"] == "ok", answer.get("error")
    assert answer["request_id"] == "r-simple"
    samples, rate = _decode(answer["audio"])
    assert rate == 24_000 and answer["audio"]["sample_rate"] == 24_000
    assert len(samples) / rate == pytest.approx(answer["audio"]["duration_s"], abs=0.01)
    assert 0.2 < answer["audio"]["duration_s"] < 5
    assert answer["cache"]["voice"] == "default"
    timings = answer["timings"]
    assert timings["generation_ms"] > 0 and timings["total_ms"] >= timings["generation_ms"]


@pytest.mark.parametrize(("fmt", "rate"), [("flac", 24_000), ("ogg", 48_000), ("mp3", 16_000)])
def test_output_formats_and_rates(adapter, fmt, rate):
    answer = _job(adapter, {"text": "Format check.", "params": SHORT,
                   "output": {"format": fmt, "sample_rate": rate}})
    assert answer["status"] == "ok", answer.get("error")
    assert answer["audio"]["format"] == fmt
    samples, decoded_rate = _decode(answer["audio"])
    assert decoded_rate == rate and len(samples) > 0


def test_repeat_voice_hits_both_caches(adapter, voice_store, tmp_path):
    # A voice never seen before (the latent disk cache outlives test runs).
    stored = voice_store.upload(_voice_wav(tmp_path / "billy.wav", pitch_hz=120 + random.random() * 80))
    served_before = voice_store.requests_served
    first = _job(adapter, {"text": "First time.", "voice_url": stored.url, "params": SHORT})
    second = _job(adapter, {"text": "Second time.", "voice_url": stored.url, "params": SHORT})
    assert first["status"] == second["status"] == "ok"
    assert first["cache"] == {"voice": "miss", "latents": "miss"}
    assert second["cache"] == {"voice": "hit", "latents": "hit"}
    assert voice_store.requests_served - served_before == 1  # downloaded once


def test_voice_checksum_is_verified(adapter, voice_store, tmp_path):
    stored = voice_store.upload(_voice_wav(tmp_path / "checked.wav", pitch_hz=210))
    wrong = "0" * 64
    answer = _job(adapter, {"text": "Checked.", "voice_url": stored.url, "voice_sha256": wrong})
    assert _error(answer)["code"] == "voice_checksum_mismatch"
    right = _job(adapter, {"text": "Checked.", "voice_url": stored.url, "voice_sha256": stored.sha256,
                  "params": SHORT})
    assert right["status"] == "ok"


def test_batch_with_a_bad_section_fails_only_that_section(adapter):
    answer = _job(adapter, {
        "request_id": "batch-1",
        "params": SHORT,
        "sections": [
            {"id": "intro", "text": "Welcome."},
            {"id": "broken", "text": "   "},
            {"id": "outro", "text": "Goodbye.", "language": "de"},
        ],
    })
    assert "error" not in answer
    assert answer["status"] == "partial"
    by_id = {s["id"]: s for s in answer["sections"]}
    assert [s["id"] for s in answer["sections"]] == ["intro", "broken", "outro"]
    assert by_id["broken"]["status"] == "error"
    assert by_id["broken"]["error"]["code"] == "text_empty"
    for good in ("intro", "outro"):
        assert by_id[good]["status"] == "ok"
        samples, rate = _decode(by_id[good]["audio"])
        assert rate == 24_000 and len(samples) > 0


def test_batch_where_every_section_fails_is_an_error(adapter):
    answer = _job(adapter, {"sections": [{"id": "a", "text": ""}, {"id": "b", "text": "x", "lang": "xx"}]})
    assert answer["status"] == "error"
    assert _error(answer)["code"] == "text_empty"
    assert len(answer["sections"]) == 2


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_input"),
        (None, "invalid_input"),
        ({"text": ""}, "text_empty"),
        ({"text": "hi", "language": "tlh"}, "unsupported_language"),
        ({"text": "hi", "voice_url": "file:///etc/passwd"}, "voice_url_forbidden"),
        ({"text": "hi", "voice_base64": "UklGRiQAAABXQVZF"}, "voice_embedded"),
        ({"text": "hi", "stream": True}, "streaming_unavailable"),
        ({"text": "hi", "output": {"delivery": "url"}}, "output_upload_failed"),
    ],
)
def test_bad_requests_get_structured_errors_and_the_worker_serves_on(
    adapter, payload, code, monkeypatch
):
    for name in ("BUCKET_ENDPOINT_URL", "BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    answer = _job(adapter, payload, job_id="bad-job")
    assert answer["status"] == "error"
    assert _error(answer)["code"] == code
    assert answer["version"]["handler_version"] == HANDLER_VERSION
    assert answer["request_id"]
    after = _job(adapter, {"text": "Still here.", "params": SHORT}, job_id="next-job")
    assert after["status"] == "ok"


def test_a_job_that_is_not_a_dict_is_answered(adapter):
    answer = adapter.handle("not a job")  # type: ignore[arg-type]
    assert _error(answer)["code"] == "invalid_input"


def test_url_delivery_through_an_s3_protocol_bucket(tmp_path):
    moto_server = pytest.importorskip("moto.server")
    import boto3
    import httpx

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket="outputs")
        settings = WorkerSettings.from_env({
            "HONORA_XTTS_MODEL": "tiny", "BUCKET_ENDPOINT_URL": endpoint,
            "BUCKET_ACCESS_KEY_ID": "test", "BUCKET_SECRET_ACCESS_KEY": "test",
            "BUCKET_NAME": "outputs",
        })
        voices = VoiceCache(root=tmp_path / "voices")
        adapter = build_adapter(settings, voices=voices, warm_up=False)
        answer = _job(adapter, {"text": "Deliver by URL.", "params": SHORT, "request_id": "url-1",
                       "output": {"delivery": "url"}})
        assert answer["status"] == "ok", answer.get("error")
        assert answer["audio"]["delivery"] == "url" and "base64" not in answer["audio"]
        body = httpx.get(answer["audio"]["url"], timeout=10).content
        assert len(body) == answer["audio"]["bytes"]
        assert sf.read(io.BytesIO(body))[1] == 24_000
    finally:
        server.stop()
        voices.close()


def test_streaming_handler_yields_chunks_then_the_response(adapter, streaming_worker):
    items = list(adapter.handle_stream(
        {"id": "s-1", "input": {"text": "A streamed sentence.", "stream": True,
                                "request_id": "stream-1", "params": SHORT}}
    ))
    chunks = [i for i in items if i["type"] == "chunk"]
    final = items[-1]
    assert chunks and final["type"] == "final"
    assert [c["seq"] for c in chunks] == list(range(len(chunks)))
    pcm = b"".join(base64.b64decode(c["pcm16_base64"]) for c in chunks)
    streamed_s = len(pcm) / 2 / 24_000
    assert final["response"]["status"] == "ok"
    assert final["response"]["streamed_duration_s"] == pytest.approx(streamed_s, abs=0.01)
    assert final["response"]["version"]["streaming"] is True


def test_streaming_worker_answers_plain_requests_with_one_final_item(adapter, streaming_worker):
    items = list(adapter.handle_stream({"id": "s-2", "input": {"text": "Plain.", "params": SHORT}}))
    assert len(items) == 1 and items[0]["type"] == "final"
    assert items[0]["response"]["audio"]["format"] == "wav"


def test_streaming_worker_fails_with_a_json_error(adapter, streaming_worker):
    items = list(adapter.handle_stream({"id": "s-3", "input": {"text": ""}}))
    assert items[0]["type"] == "final" and items[0]["response"]["error"]["code"] == "text_empty"
    error = json.loads(items[-1]["error"])
    assert error["code"] == "text_empty" and error["version"]["streaming"] is True


def _counters(adapter: RunPodAdapter) -> tuple[int, int]:
    health = _job(adapter, {"action": "health"}, job_id="count-probe")["health"]
    return health["jobs_served"], health["jobs_failed"]


def test_every_job_is_counted_once_and_a_failed_stream_as_failed(adapter, streaming_worker):
    """Regression: a stream that failed after it started was never counted, so a streaming
    worker's health under-reported failures."""
    served, failed = _counters(adapter)  # the probe itself is counted: +1 served
    doomed = list(adapter.handle_stream({"id": "s-4", "input": {
        "text": "Doomed.", "stream": True, "params": SHORT,
        "voice_url": "http://127.0.0.1:9/nothing-listens-here.wav",
    }}))
    assert doomed[-2]["type"] == "final"
    assert json.loads(doomed[-1]["error"])["code"] == "voice_fetch_failed"
    fine = list(adapter.handle_stream({"id": "s-5", "input": {
        "text": "Fine.", "stream": True, "params": SHORT,
    }}))
    assert fine[-1]["type"] == "final" and fine[-1]["response"]["status"] == "ok"
    plain_bad = list(adapter.handle_stream({"id": "s-6", "input": {"text": ""}}))
    assert "error" in plain_bad[-1]
    assert _job(adapter, {"text": ""}, job_id="plain-bad")["status"] == "error"
    assert _counters(adapter) == (served + 1 + 4, failed + 3)
