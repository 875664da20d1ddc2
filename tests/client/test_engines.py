"""The team's engine API: engine_manager, generate -> bool, health_check -> dict."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from client_testing import FakeRunPod, stale_worker

from honora_tts import engine_manager
from honora_tts.client import ConfigurationError, InvalidRequest, JobFailed
from honora_tts.engines import (
    XttsLocalEngine,
    XttsRunpodEngine,
    output_format,
    resolve_voice_file,
)
from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.settings import ClientSettings


@pytest.fixture
def engine(client, voices_dir) -> XttsRunpodEngine:
    return XttsRunpodEngine(client)


def test_get_engine_returns_one_shared_engine_per_name():
    engine_manager.reset_engines()
    seen: list[object] = []
    threads = [
        threading.Thread(target=lambda: seen.append(engine_manager.get_engine("xtts-runpod")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len({id(e) for e in seen}) == 1
        assert isinstance(seen[0], XttsRunpodEngine)
        assert isinstance(engine_manager.get_engine("xtts-local"), XttsLocalEngine)
        with pytest.raises(ValueError, match="xtts-local, xtts-runpod"):
            engine_manager.get_engine("xtts-cloud")
    finally:
        engine_manager.reset_engines()


def test_generate_default_voice_writes_the_file(engine, fake, tmp_path):
    out = tmp_path / "test_tiny.wav"
    assert engine.generate("Hello world.", "", "en", str(out)) is True
    data, rate = sf.read(out)
    assert rate == 24_000 and len(data) > 0
    assert "voice_url" not in fake.job_inputs[0]


def test_generate_with_a_voice_file_from_the_voices_dir(engine, fake, voice_store, tmp_path):
    out = tmp_path / "v.wav"
    assert engine.generate("Welcome to Honora.", "AI_Voice_Honora_Billy.wav", "en", out)
    assert voice_store.uploads == 1
    assert fake.job_inputs[0]["voice_url"].startswith("https://voices.test/")


def test_generate_returns_false_and_logs_why(engine, fake, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="honora_tts.engines")
    assert engine.generate("Hi.", "nobody.wav", "en", tmp_path / "a.wav") is False
    assert "nobody.wav" in caplog.text and "HONORA_VOICES_DIR" in caplog.text
    assert engine.generate("FAIL here", "", "en", tmp_path / "b.wav") is False
    assert "synthesis_failed" in caplog.text
    assert engine.generate("Hi.", "", "en", tmp_path / "c.aiff") is False
    assert "audio format" in caplog.text
    assert engine.generate("Hi.", "", "xx", tmp_path / "d.wav") is False
    assert "unsupported_language" in caplog.text
    assert not any(tmp_path.glob("*.wav"))
    assert len(fake.jobs) == 1  # only the synthesis failure reached the endpoint


def test_ten_parallel_generates_all_succeed(engine, fake, tmp_path, voice_store):
    results: list[bool] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        ok = engine.generate(f"Sentence {i}.", "AI_Voice_Honora_Billy.wav", "en",
                             tmp_path / f"p{i}.wav")
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 10
    assert len(fake.jobs) == 10 and voice_store.uploads == 1


def test_health_check_reports_status_and_version(engine):
    health = engine.health_check()
    assert health["status"] == "healthy"
    assert health["version"]["handler_version"] >= 2
    assert health["worker_id"] == "worker-1"


def test_health_check_of_a_stale_worker_is_unhealthy_and_says_why(make_client, sleeps):
    fake = FakeRunPod(stale_worker)
    from client_testing import API_BASE, API_KEY, ENDPOINT_ID

    from honora_tts.client import EndpointClient

    with EndpointClient(ENDPOINT_ID, API_KEY, API_BASE, transport=fake.transport(),
                        sleep=sleeps) as client:
        health = XttsRunpodEngine(client).health_check()
    assert health["status"] == "unhealthy"
    assert health["error_type"] == "StaleWorkerError"
    assert "No sections provided" in health["error"]


def test_health_check_without_configuration_is_unhealthy(monkeypatch):
    engine = XttsRunpodEngine(settings=ClientSettings.from_env({"RUNPOD_ENDPOINT_ID": "abc"}))
    health = engine.health_check()
    assert health == {
        "status": "unhealthy", "error": health["error"], "error_type": "ConfigurationError",
        "version": None,
    }
    assert "RUNPOD_API_KEY" in health["error"]


def test_misconfigured_voice_store_makes_generate_false_and_sends_nothing(
    make_client, fake, voices_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("HONORA_VOICE_STORE", "s3")
    monkeypatch.delenv("HONORA_S3_BUCKET", raising=False)
    caplog.set_level(logging.ERROR, logger="honora_tts.engines")
    client = make_client(voice_store=None)  # the store comes from the environment
    engine = XttsRunpodEngine(client)
    assert engine.generate("Hi.", "AI_Voice_Honora_Billy.wav", "en", tmp_path / "a.wav") is False
    assert "ConfigurationError" in caplog.text and "HONORA_S3_BUCKET" in caplog.text
    with pytest.raises(ConfigurationError, match="HONORA_S3_BUCKET"):
        client.synthesize("Hi.", voices_dir / "AI_Voice_Honora_Billy.wav")
    assert not fake.jobs and not (tmp_path / "a.wav").exists()


@pytest.fixture
def localpod_cannot_start(monkeypatch):
    """No endpoint configured, no localpod running, and the embedded one fails to start."""
    from honora_tts import localpod
    from honora_tts.localpod import process_pod

    def refuse(self, **_):
        raise localpod.LocalPodError("cannot listen on 127.0.0.1:8000: address in use")

    monkeypatch.setattr(process_pod, "running_localpod", lambda: None)
    monkeypatch.setattr(localpod.LocalPod, "start", refuse)
    monkeypatch.setattr(process_pod, "_pod", None)
    for name in ("RUNPOD_ENDPOINT_ID", "RUNPOD_API_KEY", "RUNPOD_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def test_embedded_localpod_failing_to_start_is_a_typed_error_everywhere(
    localpod_cannot_start, voices_dir, tmp_path, capsys, caplog
):
    from honora_tts.client import EndpointClient, EndpointUnavailable
    from honora_tts.client.commands import health_main

    with pytest.raises(EndpointUnavailable, match="address in use"):
        EndpointClient.from_env(endpoint="localpod")
    caplog.set_level(logging.WARNING, logger="honora_tts.engines")
    health = XttsRunpodEngine(settings=ClientSettings.from_env({})).health_check()
    assert health["status"] == "unhealthy" and health["error_type"] == "EndpointUnavailable"
    assert health["version"] is None and "honora-tts localpod" in health["error"]
    assert "FALLING BACK TO LOCALPOD" in caplog.text  # the engine's fallback is announced
    assert XttsRunpodEngine(settings=ClientSettings.from_env({})).generate("Hi.", "", "en", tmp_path / "a.wav") is False
    assert health_main(["--endpoint", "localpod"]) == 1
    err = capsys.readouterr().err
    assert "EndpointUnavailable" in err and "Traceback" not in err


def test_without_an_endpoint_the_client_names_what_to_set(monkeypatch, capsys):
    from honora_tts.client import ConfigurationError, EndpointClient, EndpointNotConfigured
    from honora_tts.client.commands import health_main

    for name in ("RUNPOD_ENDPOINT_ID", "RUNPOD_API_KEY", "RUNPOD_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EndpointNotConfigured) as caught:
        EndpointClient.from_env()
    assert isinstance(caught.value, ConfigurationError)
    for hint in ("RUNPOD_ENDPOINT_ID", "RUNPOD_API_KEY", "endpoint='localpod'",
                 "honora-tts[localpod]"):
        assert hint in str(caught.value)
    assert health_main([]) == 2  # a configuration error, and no localpod was started
    err = capsys.readouterr().err
    assert "EndpointNotConfigured" in err and "RUNPOD_ENDPOINT_ID" in err


def test_output_format_and_voice_resolution(voices_dir, tmp_path):
    assert output_format("x.WAV") == "wav" and output_format("x") == "wav"
    assert output_format("x.mp3") == "mp3"
    with pytest.raises(ValueError):
        output_format("x.aiff")
    assert resolve_voice_file("", voices_dir) is None
    billy = resolve_voice_file("AI_Voice_Honora_Billy.wav", voices_dir)
    assert billy == voices_dir / "AI_Voice_Honora_Billy.wav"
    assert resolve_voice_file(str(billy.resolve()), tmp_path) == billy.resolve()
    with pytest.raises(FileNotFoundError):
        resolve_voice_file("missing.wav", voices_dir)


# ------------------------------------------------------------------------- xtts-local


@dataclass
class _Latents:
    latents: object
    cache: str
    elapsed_ms: float


@dataclass
class _Synthesis:
    samples: np.ndarray
    pieces: int
    generation_ms: float


class FakeModel:
    """Stands in for honora_tts.model.XttsModel: records calls, returns a sine."""

    sample_rate = 24_000

    def __init__(self, default_voice: Path, fail: WorkerError | None = None) -> None:
        self._default = default_voice
        self.fail = fail
        self.latent_calls: list[tuple[Path, str, dict]] = []
        self.seen: set[str] = set()

    def default_voice(self):
        return self._default, hashlib.sha256(self._default.read_bytes()).hexdigest()

    def latents(self, path, sha, **kwargs):
        self.latent_calls.append((path, sha, kwargs))
        cache = "hit" if sha in self.seen else "miss"
        self.seen.add(sha)
        return _Latents(latents=("lat", sha), cache=cache, elapsed_ms=1.0)

    def synthesize(self, text, language, latents, sampling, *, cancel=None):
        if self.fail:
            raise self.fail
        assert sampling.temperature == 0.75
        t = np.arange(12_000) / 24_000
        return _Synthesis((0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 1, 5.0)

    def stats(self):
        return {"memory_hits": len(self.seen)}


def test_local_engine_generates_with_the_same_interface(voices_dir, tmp_path):
    model = FakeModel(voices_dir / "AI_Voice_Honora_Billy.wav")
    engine = XttsLocalEngine(model)
    assert engine.generate("Hello world.", "", "en", tmp_path / "a.wav")
    assert engine.generate("Hi.", "AI_Voice_Honora_Billy.wav", "en", tmp_path / "b.flac")
    data, rate = sf.read(tmp_path / "b.flac")
    assert rate == 24_000 and len(data) == 12_000
    result = engine.synthesize("Again.", voices_dir / "AI_Voice_Honora_Billy.wav",
                               params={"gpt_cond_len": 3})
    assert result.cache.latents == "hit" and result.cache.voice == "hit"
    assert model.latent_calls[-1][2] == {"gpt_cond_len": 3, "max_ref_length": 30}
    assert engine.health_check()["status"] == "healthy"


def test_local_engine_raises_typed_errors(voices_dir):
    failing = FakeModel(voices_dir / "AI_Voice_Honora_Billy.wav",
                        fail=WorkerError(ErrorCode.SYNTHESIS_FAILED, "nan in logits"))
    engine = XttsLocalEngine(failing)
    with pytest.raises(JobFailed) as caught:
        engine.synthesize("Hello.")
    assert caught.value.code == "synthesis_failed"
    with pytest.raises(InvalidRequest) as refused:
        engine.synthesize("Hello.", language="xx")
    assert refused.value.code == "unsupported_language"


def test_local_engine_reports_a_model_that_cannot_load():
    def broken(source):
        raise WorkerError(ErrorCode.MODEL_NOT_READY, "no checkpoint")

    health = XttsLocalEngine(loader=broken).health_check()
    assert health["status"] == "unhealthy" and "no checkpoint" in health["error"]


def test_engine_params_come_from_the_settings(client, fake, voices_dir, tmp_path, caplog):
    settings = ClientSettings.from_env(
        {"HONORA_SYNTHESIS_PARAMS": '{"max_new_tokens": 8, "temperature": 0.6}'})
    engine = XttsRunpodEngine(client, settings=settings, voices_directory=voices_dir)
    assert engine.generate("Hi.", "", "en", tmp_path / "a.wav")
    assert fake.job_inputs[-1]["params"] == {"max_new_tokens": 8, "temperature": 0.6}
    engine.synthesize("Hi.", params={"temperature": 0.9})
    assert fake.job_inputs[-1]["params"] == {"max_new_tokens": 8, "temperature": 0.9}

    out_of_bounds = ClientSettings.from_env({"HONORA_SYNTHESIS_PARAMS": '{"temperature": 9}'})
    engine = XttsRunpodEngine(client, settings=out_of_bounds, voices_directory=voices_dir)
    caplog.set_level(logging.ERROR, logger="honora_tts.engines")
    assert engine.generate("Hi.", "", "en", tmp_path / "b.wav") is False
    assert "HONORA_SYNTHESIS_PARAMS" in caplog.text
    assert len(fake.jobs) == 2
