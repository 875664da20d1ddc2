"""EndpointClient against a scripted endpoint: results, voices, guards, batches, census,
streaming, configuration and redaction."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading

import httpx
import numpy as np
import pytest
import soundfile as sf
from client_testing import (
    API_KEY,
    ENDPOINT_ID,
    FakeRunPod,
    honora_worker,
    stale_worker,
    version_dict,
)

from honora_tts import audio
from honora_tts.client import (
    ConfigurationError,
    EndpointClient,
    InvalidRequest,
    JobFailed,
    PayloadTooLarge,
    StaleWorkerError,
)
from honora_tts.client._configuration import settings_from_env


def test_synthesize_returns_audio_with_provenance_and_timings(client, tmp_path):
    result = client.synthesize("Hello world.", request_id="req-a")

    samples, rate = result.samples()
    assert rate == 24_000 and len(samples) == 12_000
    assert result.request_id == "req-a" and result.job_id == "job-1"
    assert result.worker_id == "worker-1"
    assert result.version.handler_version >= 2
    assert result.timings.delay_ms == 3 and result.timings.execution_ms == 40
    assert result.timings.stages.generation_ms == 30.0
    assert result.timings.client_ms > 0 and result.timings.polls >= 1
    assert result.cache.latents == "hit"
    out = result.save(tmp_path / "deep" / "hello.wav")
    assert out.read_bytes() == result.audio
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_a_failed_job_raises_job_failed_with_the_workers_code(client):
    with pytest.raises(JobFailed) as caught:
        client.synthesize("FAIL please")
    assert caught.value.code == "synthesis_failed"
    assert caught.value.job_id == "job-1"


def test_a_stale_worker_raises_stale_worker_error():
    fake = FakeRunPod(stale_worker)
    with (
        EndpointClient(ENDPOINT_ID, API_KEY, "https://api.runpod.test/v2",
                       transport=fake.transport(), sleep=lambda s: None) as client,
        pytest.raises(StaleWorkerError) as caught,
    ):
        client.synthesize("Hello world.")
    assert "No sections provided" in str(caught.value)


def test_a_voice_file_is_uploaded_once_for_ten_threads(fake, client, voice_store, voices_dir):
    voice = voices_dir / "AI_Voice_Honora_Billy.wav"
    errors: list[BaseException] = []

    def speak() -> None:
        try:
            client.synthesize("Welcome to Honora.", voice)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=speak) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert voice_store.uploads == 1
    assert len(fake.jobs) == 10
    urls = {i["voice_url"] for i in fake.job_inputs}
    shas = {i["voice_sha256"] for i in fake.job_inputs}
    assert len(urls) == 1 and len(shas) == 1
    assert all(len(r.content) < 4_000 for r in fake.requests if r.method == "POST")


@pytest.mark.parametrize(
    "voice",
    [b"RIFF....WAVEfmt ", bytearray(b"RIFF"), "data:audio/wav;base64,UklGRg==",
     base64.b64encode(b"x" * 3_000).decode()],
    ids=["bytes", "bytearray", "data-uri", "base64-text"],
)
def test_embedded_voice_audio_is_refused_before_sending(fake, client, voice):
    with pytest.raises(InvalidRequest):
        client.synthesize("Hello world.", voice)
    assert fake.requests == []


def test_a_missing_voice_file_is_refused_before_sending(fake, client, tmp_path):
    with pytest.raises(InvalidRequest, match="does not exist"):
        client.synthesize("Hello world.", tmp_path / "nope.wav")
    assert fake.requests == []


def test_a_voice_url_is_sent_as_is(fake, client):
    client.synthesize("Hello world.", "https://voices.test/billy.wav", voice_sha256="b" * 64)
    assert fake.job_inputs[0]["voice_url"] == "https://voices.test/billy.wav"
    assert fake.job_inputs[0]["voice_sha256"] == "b" * 64


def test_a_request_the_worker_would_refuse_is_refused_before_sending(fake, client):
    with pytest.raises(InvalidRequest) as caught:
        client.synthesize("Hello world.", language="xx")
    assert caught.value.code == "unsupported_language"
    with pytest.raises(InvalidRequest) as caught:
        client.synthesize("   ")
    assert caught.value.code == "text_empty"
    assert fake.requests == []


def test_oversized_payloads_are_refused_before_sending(fake, client):
    with pytest.raises(PayloadTooLarge) as caught:
        client.run({"text": "x" * 10_000_001})
    assert caught.value.limit == 10_000_000
    client_runsync_input = {"text": "x" * 20_000_001}
    with pytest.raises(PayloadTooLarge):
        client.runsync(client_runsync_input)
    assert fake.requests == []


def test_runsync_accepts_what_run_refuses_below_its_own_limit(fake, client):
    status = client.runsync({"action": "health"}, wait_ms=120_000)
    assert status.status == "COMPLETED"
    sent = next(r for r in fake.requests if r.url.path.endswith("/runsync"))
    assert sent.url.params["wait"] == "120000"


def test_raw_operations(fake, client):
    queued = client.run({"action": "health"}, request_id="req-raw")
    assert queued.status == "IN_QUEUE"
    final = client.wait(queued.id, request_id="req-raw")
    assert final.status == "COMPLETED"
    assert final.output["request_id"] == "req-raw"
    assert client.health().workers == {"idle": 1, "running": 0}
    assert client.purge_queue()["status"] == "completed"
    assert client.cancel(queued.id).status == "COMPLETED"


def test_the_api_key_never_shows_in_logs_errors_or_reprs(fake, make_client, caplog):
    client = make_client()

    def echo_key(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad request from {request.headers['authorization']}")

    leaky = EndpointClient(ENDPOINT_ID, API_KEY, "https://api.runpod.test/v2",
                           transport=httpx.MockTransport(echo_key))
    caplog.set_level(logging.DEBUG)
    fake.fail("status", 503)
    client.synthesize("Hello world.")
    with pytest.raises(Exception) as caught:
        leaky.run({"text": "hi"})
    logging.getLogger("honora_tts.client").warning("key in a log line: %s", API_KEY)

    assert "Bearer ***" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(client), repr(leaky), caplog.text):
        assert API_KEY not in text
    assert "***" in caplog.text
    leaky.close()


def test_batch_runs_each_section_and_keeps_order(fake, client, tmp_path):
    batch = client.synthesize_batch(
        [{"id": "intro", "text": "Hello."}, "Second.", {"id": "bad", "text": "FAIL now"}],
        concurrency=3,
    )
    assert [o.id for o in batch] == ["intro", "1", "bad"]
    assert [o.ok for o in batch] == [True, True, False]
    assert isinstance(batch.outcomes[2].error, JobFailed)
    assert len(fake.jobs) == 3
    paths = batch.save(tmp_path)
    assert sorted(p.name for p in paths) == ["1.wav", "intro.wav"]


def test_batch_mode_jobs_carry_several_sections(fake, client):
    batch = client.synthesize_batch(
        [{"id": f"s{i}", "text": "FAIL" if i == 2 else f"Section {i}."} for i in range(5)],
        sections_per_job=2,
    )
    assert len(fake.jobs) == 3
    # The jobs are submitted in parallel: their order in the fake's table is not theirs.
    grouped = sorted([section["id"] for section in i["sections"]] for i in fake.job_inputs)
    assert grouped == [["s0", "s1"], ["s2", "s3"], ["s4"]]
    assert [o.ok for o in batch] == [True, True, False, True, True]
    assert batch.outcomes[2].error.code == "synthesis_failed"
    assert batch.outcomes[0].result.section_id == "s0"


def test_census_groups_builds_and_marks_the_stale_one(fake, client):
    fake.add_worker("worker-old", stale_worker)
    fake.add_worker("worker-3", honora_worker(version_dict(git_sha="c" * 40, worker_id="w3")))

    census = client.census(6)

    assert len(census.groups) == 3
    assert census.stale and census.half_rolled and not census.ok
    stale = [g for g in census.groups if g.stale]
    assert stale[0].worker_ids == ["worker-old"] and stale[0].probes == 2
    assert census.endpoint_health.workers["idle"] == 3
    report = census.to_dict()
    assert report["stale"] is True and len(report["groups"]) == 3
    assert "STALE" in census.summary()


def test_census_of_one_build_is_ok(fake, client):
    census = client.census(3)
    assert census.ok
    assert census.groups[0].probes == 3


def _chunk(seq: int, samples: np.ndarray) -> dict:
    return {"type": "chunk", "request_id": "req-s", "seq": seq, "sample_rate": 24_000,
            "pcm16_base64": base64.b64encode(audio.to_pcm16(samples)).decode()}


def test_streaming_yields_chunks_then_the_whole_result(fake, client):
    pieces = [np.full(2_400, 0.1 * (i + 1), dtype=np.float32) for i in range(3)]
    final = {"type": "final", "request_id": "req-s", "response": {
        "request_id": "req-s", "status": "ok", "version": version_dict(streaming=True),
        "timings": {"first_chunk_ms": 12.0}, "cache": {"voice": "default", "latents": "hit"},
    }}
    fake.stream_script = [_chunk(i, p) for i, p in enumerate(pieces)] + [final]

    stream = client.synthesize_stream("Hello world.", request_id="req-s")
    chunks = list(stream)

    assert [c.seq for c in chunks] == [0, 1, 2]
    assert np.allclose(chunks[1].samples, 0.2, atol=1e-3)
    assert stream.time_to_first_audio_ms is not None
    assert stream.result.duration_s == pytest.approx(0.3)
    decoded, rate = sf.read(io.BytesIO(stream.result.audio))
    assert rate == 24_000 and len(decoded) == 7_200
    assert fake.job_inputs[0]["stream"] is True


def test_leaving_a_stream_early_cancels_the_job(fake, client):
    fake.stream_script = [_chunk(i, np.zeros(240, dtype=np.float32)) for i in range(5)]
    stream = client.synthesize_stream("Hello world.")
    for _chunk_item in stream:
        break
    stream.close()
    assert fake.calls["POST cancel"] == 1


def test_settings_from_env_needs_the_key_with_an_endpoint():
    with pytest.raises(ConfigurationError, match="RUNPOD_API_KEY"):
        settings_from_env({"RUNPOD_ENDPOINT_ID": "abc"})
    settings = settings_from_env({"RUNPOD_ENDPOINT_ID": "abc", "RUNPOD_API_KEY": "k" * 10})
    assert settings.api_base == "https://api.runpod.ai/v2"
    assert settings.source == "environment"
    with pytest.raises(ConfigurationError, match="RUNPOD_API_BASE"):
        settings_from_env({"RUNPOD_ENDPOINT_ID": "abc", "RUNPOD_API_KEY": "k" * 10,
                           "RUNPOD_API_BASE": "ftp://x"})


def test_opting_in_to_localpod_uses_a_running_one(monkeypatch, caplog):
    from honora_tts.localpod import discovery

    monkeypatch.setattr(discovery, "find_running", lambda *a, **k: {
        "base_url": "http://127.0.0.1:9/v2", "endpoint_id": "localpod", "api_key": "lp-key-123",
    })
    caplog.set_level(logging.WARNING)
    client = EndpointClient.from_env({"RUNPOD_ENDPOINT_ID": "ignored"}, endpoint="localpod")
    try:
        assert client.source == "localpod"
        assert client.api_base == "http://127.0.0.1:9/v2"
        assert "using the running localpod" in caplog.text and "noise" in caplog.text
    finally:
        client.close()


def test_an_endpoint_argument_overrides_the_environment():
    client = EndpointClient.from_env(
        {"RUNPOD_ENDPOINT_ID": "from-env", "RUNPOD_API_KEY": "k" * 10}, endpoint="from-arg",
        api_base="http://127.0.0.1:9/v2/",
    )
    with client:
        assert (client.endpoint_id, client.api_base) == ("from-arg", "http://127.0.0.1:9/v2")
        assert client.source == "arguments"
    localpod_env = {"RUNPOD_ENDPOINT_ID": "localpod", "RUNPOD_API_KEY": "k" * 10,
                    "RUNPOD_API_BASE": "http://127.0.0.1:8/v2"}
    with EndpointClient.from_env(localpod_env) as client:  # an id like any other
        assert client.api_base == "http://127.0.0.1:8/v2" and client.source == "environment"


def test_request_ids_are_unique_per_call(fake, client):
    client.synthesize("One.")
    client.synthesize("Two.")
    ids = [i["request_id"] for i in fake.job_inputs]
    assert len(set(ids)) == 2 and all(ids)


def test_result_to_dict_is_json_ready(client):
    result = client.synthesize("Hello world.")
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["bytes"] == len(result.audio)
    assert payload["timings"]["stages"]["generation_ms"] == 30.0
