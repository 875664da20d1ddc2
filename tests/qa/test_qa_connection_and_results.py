"""Choosing the endpoint from notebook parameters; writing results; the synthetic voice."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from honora_tts.client import ConfigurationError, EndpointClient
from honora_tts.qa import artifacts, connection
from honora_tts.qa.reference_voice import synthetic_voice_samples, write_synthetic_voice


def test_endpoint_id_uses_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "rk-environment-key")
    monkeypatch.delenv("RUNPOD_API_BASE", raising=False)
    client = connection.connect("abc123")
    assert client.endpoint_id == "abc123" and client.api_base == "https://api.runpod.ai/v2"
    facts = connection.describe(client)
    assert facts == {"endpoint_id": "abc123", "api_base": "https://api.runpod.ai/v2",
                     "source": "parameters", "mode": "queue"}
    assert "rk-environment-key" not in json.dumps(facts) + repr(client)


def test_parameters_override_the_environment(monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "from-env")
    client = connection.connect("ep", api_base="http://127.0.0.1:9/v2/", api_key="from-param")
    assert client.api_base == "http://127.0.0.1:9/v2"


def test_missing_key_is_explained(monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="RUNPOD_API_KEY"):
        connection.connect("abc123")
    with pytest.raises(ConfigurationError, match="localpod"):
        connection.connect("  ")


def test_localpod_ignores_runpod_settings(monkeypatch):
    seen = {}

    def from_env(env=None, **options):
        seen.update(env=env, options=options)
        return EndpointClient("lp", "lp-key", "http://127.0.0.1:9/v2")

    monkeypatch.setattr(EndpointClient, "from_env", staticmethod(from_env))
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "real-endpoint")
    monkeypatch.setenv("RUNPOD_API_KEY", "real-key")
    client = connection.connect("localpod", min_handler_version=2)
    assert client.endpoint_id == "lp" and client.source != "parameters"
    assert seen["options"] == {"endpoint": "localpod", "api_key": None, "api_base": None,
                               "min_handler_version": 2}
    client.close()


def test_json_ready_handles_what_pandas_and_numpy_produce(tmp_path):
    from honora_tts.qa.verification import Status

    data = {"nan": math.nan, "inf": -math.inf, "np": np.float32(1.5), "int": np.int64(3),
            "path": Path("/x"), "status": Status.PASS, "tuple": (1, 2), "set": {4}}
    path = artifacts.write_json(data, tmp_path / "deep" / "r.json")
    assert json.loads(path.read_text()) == {"nan": None, "inf": None, "np": 1.5, "int": 3,
                                            "path": "/x", "status": "PASS", "tuple": [1, 2],
                                            "set": [4]}


def test_synthetic_voice_is_a_reusable_voice_file(tmp_path):
    from honora_tts.voices.audio_check import check_voice_audio

    samples = synthetic_voice_samples(seconds=2.0, seed=3)
    assert samples.dtype == np.float32 and samples.size == 48_000
    assert 0.45 < float(np.max(np.abs(samples))) <= 0.5
    path = write_synthetic_voice(tmp_path / "v.wav", seconds=2.0)
    facts = check_voice_audio(path.read_bytes(), source="v.wav", min_duration_s=1,
                              max_duration_s=60).facts
    assert facts.duration_s == pytest.approx(2.0) and facts.sample_rate == 24_000
    first = path.read_bytes()
    assert write_synthetic_voice(path).read_bytes() == first  # reused, not rewritten
    with pytest.raises(ValueError):
        synthetic_voice_samples(seconds=0)
