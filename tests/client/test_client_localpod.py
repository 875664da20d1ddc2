"""The client, engines and CLI against localpod's real worker processes (tiny model).

Random weights never stop generating, so HONORA_SYNTHESIS_PARAMS / params bound the tokens to
keep jobs short.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from client_testing import write_voice

from honora_tts import engine_manager
from honora_tts.client import (
    EndpointClient,
    JobFailed,
    JobTimedOut,
    PayloadTooLarge,
    StaleWorkerError,
)
from honora_tts.client.commands import census_main, health_main, say_main
from honora_tts.engines import XttsLocalEngine, XttsRunpodEngine

pytestmark = pytest.mark.integration

SHORT = {"max_new_tokens": 8}
LONG_TEXT = " ".join(f"This is sentence number {i} of a long paragraph." for i in range(12))


@pytest.fixture
def pod_env(localpod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session localpod in the environment, a voices dir and a local voice store."""
    for name, value in localpod.client_env().items():
        monkeypatch.setenv(name, value)
    voices = tmp_path / "voices"
    write_voice(voices / "AI_Voice_Honora_Billy.wav")
    monkeypatch.setenv("HONORA_VOICES_DIR", str(voices))
    monkeypatch.setenv("HONORA_VOICE_STORE", "local")
    monkeypatch.setenv("HONORA_LOCAL_VOICE_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("HONORA_SYNTHESIS_PARAMS", '{"max_new_tokens": 8}')
    engine_manager.reset_engines()
    yield voices
    engine_manager.reset_engines()


def pod_client(pod, **kwargs) -> EndpointClient:
    return EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url, **kwargs)


def test_the_teams_four_scripts(pod_env, localpod, tmp_path):
    engine = engine_manager.get_engine("xtts-runpod")

    health = engine.health_check()
    assert health["status"] == "healthy", health
    assert health["version"]["handler_version"] >= 2

    assert engine.generate("Hello world.", "", "en", str(tmp_path / "test_tiny.wav")) is True
    assert sf.info(tmp_path / "test_tiny.wav").samplerate == 24_000

    assert engine.generate(
        "Welcome to Honora. This is a test of the voice.", "AI_Voice_Honora_Billy.wav", "en",
        str(tmp_path / "v.wav"),
    ) is True

    results: list[bool] = []
    lock = threading.Lock()

    def speak(i: int) -> None:
        ok = engine.generate(f"Parallel sentence {i}.", "AI_Voice_Honora_Billy.wav", "en",
                             str(tmp_path / f"p{i}.wav"))
        with lock:
            results.append(ok)

    done_before = {w["id"]: w.get("jobs_done", 0) for w in localpod.workers()}
    threads = [threading.Thread(target=speak, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 10
    assert len(list(tmp_path.glob("p*.wav"))) == 10
    served = {w["id"] for w in localpod.workers()
              if w.get("jobs_done", 0) > done_before.get(w["id"], 0)}
    assert len(served) == 2  # both workers served the parallel jobs


def test_synthesis_result_carries_the_workers_facts(pod_env, localpod):
    with pod_client(localpod) as client:
        voice = pod_env / "AI_Voice_Honora_Billy.wav"
        first = client.synthesize("Hello there.", voice, params=SHORT)
        again = client.synthesize("Hello again.", voice, params=SHORT)
    assert first.worker_id and first.job_id and first.version.handler_version >= 2
    assert first.timings.execution_ms is not None and first.timings.stages.generation_ms > 0
    assert first.cache.voice in ("miss", "hit")
    assert again.cache.voice == "hit" or again.worker_id != first.worker_id
    samples, rate = first.samples()
    assert rate == 24_000 and len(samples) > 0


def test_an_oversized_request_is_refused_before_sending(pod_env, localpod):
    before = localpod.counters()
    with pod_client(localpod) as client, pytest.raises(PayloadTooLarge):
        client.run({"text": "x" * 10_400_000})
    after = localpod.counters()
    assert after.get("jobs_submitted", 0) == before.get("jobs_submitted", 0)
    assert after.get("payloads_rejected", 0) == before.get("payloads_rejected", 0)


def test_the_deadline_cancels_a_job_no_worker_took(localpod_factory):
    pod = localpod_factory(workers=1, start_delay_s=120, wait_ready=False)
    with pod_client(pod) as client, pytest.raises(JobTimedOut) as caught:
        client.synthesize("Hello world.", deadline_s=1.0)
    assert caught.value.cancelled
    assert "IN_QUEUE" in str(caught.value)
    job = next(j for j in pod.jobs() if j["id"] == caught.value.job_id)
    assert job["state"] == "CANCELLED"


def test_cli_against_localpod(pod_env, localpod, tmp_path, capsys):
    assert health_main([]) == 0
    assert census_main(["--probes", "4"]) == 0
    assert "1 build(s)" in capsys.readouterr().out
    out = tmp_path / "say.wav"
    assert say_main(["Hi.", "--voice", "AI_Voice_Honora_Billy.wav", "-o", str(out)]) == 0
    assert out.exists()


def test_a_stale_worker_is_named(localpod_factory, tmp_path):
    pod = localpod_factory(workers=0, stale_workers=1)
    with pod_client(pod) as client:
        with pytest.raises(StaleWorkerError) as caught:
            client.synthesize("Hello world.")
        assert "No sections provided" in str(caught.value)
        assert caught.value.worker_id
        health = XttsRunpodEngine(client).health_check()
    assert health["status"] == "unhealthy" and health["error_type"] == "StaleWorkerError"


def test_half_rolled_streaming_endpoint(localpod_factory):
    """One pod (a current streaming worker and a stale one, no replacements) for the census,
    streaming, and a worker killed mid-job: worker start-up is the expensive part."""
    pod = localpod_factory(workers=1, stale_workers=1, streaming=True,
                           restart_dead_workers=False)
    with pod_client(pod) as client:
        census = client.census(8)
        assert len(census.groups) == 2, census.summary()
        assert census.stale and census.half_rolled and not census.ok
        stale = next(g for g in census.groups if g.stale)
        current = next(g for g in census.groups if not g.stale)
        assert current.handler_version >= 2 and stale.handler_version is None
        assert set(stale.worker_ids).isdisjoint(current.worker_ids)

        for worker in pod.workers():
            if worker["kind"] == "stale":
                pod.kill_worker(worker["id"], busy=False)

        stream = client.synthesize_stream("Hello streaming world.", params=SHORT)
        chunks = list(stream)
        assert chunks and stream.time_to_first_audio_ms is not None
        assert stream.result.duration_s == pytest.approx(
            sum(c.duration_s for c in chunks), abs=0.01
        )
        assert stream.result.version.streaming is True

        plain = client.synthesize("Not streamed.", params=SHORT)  # final item unwrapped
        assert plain.audio and plain.version.streaming is True

        failure: list[BaseException] = []

        def long_job() -> None:
            try:
                client.synthesize(LONG_TEXT, deadline_s=120)
            except BaseException as exc:  # noqa: BLE001 - checked below
                failure.append(exc)

        thread = threading.Thread(target=long_job)
        thread.start()
        for _ in range(400):
            if any(w["state"] == "running" for w in pod.workers()):
                break
            time.sleep(0.05)
        pod.kill_worker(busy=True)
        thread.join(timeout=60)
    assert not thread.is_alive(), "the client hung on a job whose worker died"
    assert len(failure) == 1 and isinstance(failure[0], JobFailed), failure
    assert failure[0].code == "worker_died"


def test_opting_in_to_localpod_starts_one_for_the_process(monkeypatch, caplog):
    from honora_tts.localpod import process_pod

    real_pod = process_pod.LocalPod
    asked: list[tuple[int, str]] = []

    def stale_only_pod(workers: int, model: str):
        # The embedded pod's worker count and model are what is checked; a stale worker
        # answers without loading a model.
        asked.append((workers, model))
        return real_pod(workers=0, stale_workers=1)

    monkeypatch.setattr(process_pod, "running_localpod", lambda: None)
    monkeypatch.setattr(process_pod, "LocalPod", stale_only_pod)
    caplog.set_level(logging.WARNING, logger="honora_tts.client")
    try:
        first = EndpointClient.from_env({"HONORA_LOCALPOD_WORKERS": "3"}, endpoint="localpod")
        second = EndpointClient.from_env({}, endpoint="localpod")
        assert first.source == second.source == "embedded"
        assert first.api_base == second.api_base  # one embedded pod per process
        assert asked == [(3, "tiny")]
        assert "NOISE" in caplog.text and "RUNPOD_ENDPOINT_ID" in caplog.text
        with pytest.raises(StaleWorkerError):
            first.health_job()
        first.close()
        second.close()
    finally:
        process_pod.stop_process_localpod()


@pytest.mark.slow
def test_the_local_engine_with_the_real_tiny_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HONORA_SYNTHESIS_PARAMS", '{"max_new_tokens": 8}')
    voice = write_voice(tmp_path / "voices" / "billy.wav")
    engine = XttsLocalEngine(model_source="tiny", voices_directory=voice.parent)
    assert engine.health_check()["status"] == "healthy"
    assert engine.generate("Hello world.", "billy.wav", "en", tmp_path / "a.flac")
    info = sf.info(tmp_path / "a.flac")
    assert info.samplerate == 24_000 and info.frames > 0
    again = engine.synthesize("Hello again.", voice)
    assert again.cache.latents == "hit" and again.version.model_name.startswith("tiny")
