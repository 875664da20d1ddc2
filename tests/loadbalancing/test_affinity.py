"""Voice affinity through localpod's load balancer, with honora's own client and engine
(``HONORA_ENDPOINT_MODE=load_balancing``): one voice's requests stay on one worker, which
computes its latents once; when that worker is gone the client falls back and loses nothing.

Runs last among the load-balancing tests (it kills a worker); the module's fixture waits for
the replacement first, so later modules see three ready workers again."""

from __future__ import annotations

import pytest
from lb_testing import TINY, voice_wav, worker_health

from honora_tts.client import EndpointClient
from honora_tts.engines import XttsRunpodEngine
from honora_tts.settings import ClientSettings
from honora_tts.voices import LocalVoiceStore


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with LocalVoiceStore(root=tmp_path_factory.mktemp("store")) as local:
        yield local


def _client(lb, store, affinity: str = "soft") -> EndpointClient:
    env = {**lb.client_env(), "HONORA_WORKER_AFFINITY": affinity}
    return EndpointClient.from_env(env, voice_store=store)


def _computed(lb) -> dict[str, int]:
    return {worker: facts["latent_cache"]["latents_computed"]
            for worker, facts in worker_health(lb).items()}


def test_twenty_requests_of_one_voice_over_three_workers_compute_its_latents_once(
        lb, store, tmp_path):
    voice = voice_wav(tmp_path / "one-voice.wav")
    before = _computed(lb)
    assert len(before) == 3
    with _client(lb, store) as client:
        assert client.mode == "load_balancing"
        results = [client.synthesize("Same voice again.", voice=voice, params=TINY)
                   for _ in range(20)]
        [worker] = {r.worker_id for r in results}
        assert [r.cache.latents for r in results] == ["miss"] + ["hit"] * 19
        assert client.jobs.affinity.pinned == 19  # type: ignore[attr-defined]
        # Health probes are not pinned: a census still reaches every worker.
        census = client.census(probes=9)
    after = _computed(lb)
    grew = {w: after[w] - before.get(w, 0) for w in after}
    assert grew == {w: (1 if w == worker else 0) for w in after}, grew
    assert len({p.worker_id for p in census.probes}) >= 2


def test_killing_the_voices_worker_falls_back_and_loses_no_request(lb, store, tmp_path):
    voice = voice_wav(tmp_path / "fallback.wav")
    with _client(lb, store) as soft, _client(lb, store, affinity="strict") as strict:
        pinned = strict.synthesize("Before.", voice=voice, params=TINY).worker_id
        # Both clients last heard this voice from the same worker.
        [(key, worker)] = strict.jobs.affinity.workers().items()  # type: ignore[attr-defined]
        soft.jobs.affinity.answered(key, worker)  # type: ignore[attr-defined]
        assert soft.synthesize("Before.", voice=voice, params=TINY).worker_id == pinned
        gone_before = lb.counters().get("affinity_worker_gone", 0)
        assert lb.kill_worker(pinned) == pinned
        # soft: the balancer itself sends it elsewhere; strict: 404 affinity_worker_gone,
        # and the client sends it once more unpinned.
        after = [soft.synthesize("After.", voice=voice, params=TINY) for _ in range(3)]
        after += [strict.synthesize("After.", voice=voice, params=TINY) for _ in range(3)]
        assert all(r.duration_s > 0 and r.worker_id != pinned for r in after)
        assert len({r.worker_id for r in after[:3]}) == 1, "re-pinned to the new worker"
        assert strict.jobs.affinity.unpinned_after_gone == 1  # type: ignore[attr-defined]
    counters = lb.counters()
    assert counters["affinity_worker_gone"] == gone_before + 1
    assert counters["workers_replaced"] >= 1
    lb.wait_ready(3, timeout_s=300)


def test_the_engine_and_a_stream_work_against_the_load_balancer_unchanged(
        lb, store, tmp_path, monkeypatch):
    monkeypatch.setenv("HONORA_VOICE_STORE", "local")
    monkeypatch.setenv("HONORA_LOCAL_VOICE_STORE_DIR", str(tmp_path / "engine-store"))
    voices = tmp_path / "voices"
    voices.mkdir()
    voice_wav(voices / "billy.wav")
    settings = ClientSettings.from_env({**lb.client_env(), "HONORA_VOICES_DIR": str(voices),
                                        "HONORA_SYNTHESIS_PARAMS": '{"max_new_tokens": 8}'})
    engine = XttsRunpodEngine(settings=settings)
    try:
        assert engine.health_check()["status"] == "healthy"
        out = tmp_path / "billy.wav"
        assert engine.generate("Hello from the engine.", "billy.wav", "en", str(out)) is True
        assert out.stat().st_size > 1000
    finally:
        engine.close()
    with _client(lb, store) as client:
        stream = client.synthesize_stream("A streamed line.", voice=voices / "billy.wav",
                                          params={"max_new_tokens": 16, "stream_chunk_size": 4})
        chunks = list(stream)
        assert [c.seq for c in chunks] == list(range(len(chunks))) and len(chunks) >= 2
        assert stream.result is not None and stream.result.duration_s > 0
        assert stream.time_to_first_audio_ms is not None
