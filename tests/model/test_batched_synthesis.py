"""``XttsModel.synthesize`` / ``stream`` with batching enabled, on the tiny XTTS: concurrent
requests give the audio each gives alone (same seed), a bad voice fails only its request, a
stream keeps its chunks and cancels its row when closed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from honora_tts import model as honora_model
from honora_tts.files import file_sha256
from honora_tts.protocol import SYNTHESIS_DEFAULTS, ErrorCode, WorkerError

TEXTS = (
    "hello world, this is a test.",
    "the quick brown fox jumps over the lazy dog. how are you today?",
    "one two three four five",
    "she sells sea shells",
)


@pytest.fixture
def batched(model, request):
    from honora_tts.model.batched_synthesis import BatchedSynthesis

    latents_from, vocoder_thread = getattr(request, "param", ("decode", None))
    model.batching = BatchedSynthesis(model, max_batch=4, latents_from=latents_from,
                                      vocoder_thread=vocoder_thread)
    yield model
    model.batching.close()
    model.batching = None


def _params(index, **extra):
    return {**SYNTHESIS_DEFAULTS, "max_new_tokens": 16, "seed": 40 + index, **extra}


def _speak(model, voices, index):
    return model.synthesize(TEXTS[index], "en", voices[index % 2], _params(index)).samples


@pytest.mark.parametrize("batched", [("decode", None), ("forward", None)], indirect=True)
def test_concurrent_requests_give_the_audio_they_give_alone(batched, voices):
    alone = [_speak(batched, voices, i) for i in range(4)]
    assert batched.batching.scheduler.stats.max_rows == 1
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: _speak(batched, voices, i), range(4)))
    assert batched.batching.scheduler.stats.max_rows >= 2
    for one, many in zip(alone, together, strict=True):
        if batched.batching.latents_from == "forward":  # the audio is a function of the codes
            np.testing.assert_array_equal(many, one)
        else:  # the decoding latents: equal to float rounding across batch shapes
            np.testing.assert_allclose(many, one, atol=1e-4)
    assert not np.array_equal(alone[0][: alone[2].size], alone[2][: alone[0].size])
    # the second text has two sentences but fits one piece; a long text is split in pieces
    long_text = " ".join([TEXTS[1]] * 6)
    result = batched.synthesize(long_text, "en", voices[0], _params(0, max_new_tokens=6))
    assert result.pieces >= 2 and result.samples.size > 0


def test_a_bad_voice_fails_only_its_request(batched, voices, tmp_path):
    silent = tmp_path / "silent.wav"
    from honora_tts import audio

    silent.write_bytes(audio.encode(np.zeros(48_000, dtype=np.float32), honora_model.SAMPLE_RATE, "wav"))
    alone = [_speak(batched, voices, i) for i in (0, 2)]

    def job(index):
        if index == 1:
            latents = batched.latents(silent, file_sha256(silent)).latents
            return batched.synthesize(TEXTS[1], "en", latents, _params(1)).samples
        return _speak(batched, voices, index)

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(job, i) for i in range(3)]
        with pytest.raises(WorkerError) as caught:
            futures[1].result()
        assert caught.value.code == ErrorCode.VOICE_NOT_AUDIO
        np.testing.assert_allclose(futures[0].result(), alone[0], atol=1e-4)
        np.testing.assert_allclose(futures[2].result(), alone[1], atol=1e-4)


def test_invalid_parameters_are_refused_before_decoding(batched, voices):
    with pytest.raises(WorkerError) as caught:
        batched.synthesize(TEXTS[0], "en", voices[0], {"temprature": 0.5})
    assert caught.value.code == ErrorCode.INVALID_INPUT
    assert batched.batching.scheduler.stats.submitted == 0


@pytest.mark.parametrize("batched", [("decode", True), ("decode", False)], indirect=True,
                         ids=["vocoder-thread", "vocoder-between-steps"])
def test_streams_batched_keep_their_chunks_and_audio(batched, voices):
    def stream(index):
        params = _params(index, max_new_tokens=30, stream_chunk_size=8)
        return [c for c in batched.stream(TEXTS[index], "en", voices[index % 2], params)]

    alone = [stream(i) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(stream, range(3)))
    assert batched.batching.scheduler.stats.max_rows >= 2
    for one, many in zip(alone, together, strict=True):
        assert len(one) >= 2  # the first chunk came before the row finished
        assert [c.size for c in many] == [c.size for c in one]
        np.testing.assert_allclose(np.concatenate(many), np.concatenate(one), atol=1e-4)


def test_closing_a_stream_cancels_its_row(batched, voices):
    params = _params(0, max_new_tokens=200, stream_chunk_size=4)
    chunks = batched.stream(TEXTS[0], "en", voices[0], params)
    first = next(chunks)
    assert first.size > 0
    chunks.close()
    scheduler = batched.batching.scheduler
    from honora_tts.model.batch_scheduler import wait_idle

    assert wait_idle(scheduler, timeout=60)
    assert scheduler.stats.cancelled == 1 and scheduler.stats.completed == 0


@pytest.mark.parametrize("batched", [("decode", True), ("decode", False)], indirect=True,
                         ids=["vocoder-thread", "vocoder-between-steps"])
def test_the_vocoder_runs_in_its_lane(batched, voices, monkeypatch):
    from honora_tts.model.vocoder import IncrementalVocoder

    lane = batched.batching.vocoder_lane
    threads = set()
    render = IncrementalVocoder.render

    def recording(self, final=False):
        threads.add(threading.current_thread().name)
        return render(self, final)

    monkeypatch.setattr(IncrementalVocoder, "render", recording)
    list(batched.stream(TEXTS[0], "en", voices[0], _params(0, stream_chunk_size=4)))
    batched.synthesize(TEXTS[1], "en", voices[1], _params(1))
    vocode_thread = batched.batching.vocoder_lane.submit(
        lambda: threading.current_thread().name).result(timeout=60)
    if lane.threaded:
        assert threads == {vocode_thread} and vocode_thread.startswith("honora-vocoder")
    else:
        assert threads == {batched.batching.scheduler.name} == {vocode_thread}


def test_a_failing_vocoder_fails_only_its_stream(batched, voices, monkeypatch):
    from honora_tts.model.vocoder import IncrementalVocoder

    render = IncrementalVocoder.render

    def failing(self, final=False):
        if self.length_scale != 1.0:  # only the stream asked for another speed
            raise RuntimeError("vocoder broke")
        return render(self, final)

    monkeypatch.setattr(IncrementalVocoder, "render", failing)

    def stream(index, **extra):
        params = _params(index, max_new_tokens=24, stream_chunk_size=6, **extra)
        return np.concatenate(list(batched.stream(TEXTS[index], "en", voices[0], params)))

    alone = stream(0)
    with ThreadPoolExecutor(2) as pool:
        good = pool.submit(stream, 0)
        bad = pool.submit(stream, 1, speed=0.8)
        with pytest.raises(WorkerError, match="RuntimeError: vocoder broke") as caught:
            bad.result(timeout=120)
        assert caught.value.code == ErrorCode.SYNTHESIS_FAILED
        np.testing.assert_allclose(good.result(timeout=120), alone, atol=1e-4)
    from honora_tts.model.batch_scheduler import wait_idle

    assert wait_idle(batched.batching.scheduler, timeout=60)


def test_the_lane_runs_beside_the_decoding_only_where_a_core_is_free(monkeypatch):
    import torch

    from honora_tts.model import vocoder_lane

    assert vocoder_lane.lane_pays("cuda:0")
    monkeypatch.setattr(vocoder_lane, "usable_cores", lambda: torch.get_num_threads() + 1)
    assert vocoder_lane.lane_pays("cpu")
    monkeypatch.setattr(vocoder_lane, "usable_cores", lambda: torch.get_num_threads())
    assert not vocoder_lane.lane_pays("cpu")


def test_a_small_first_chunk_comes_first_and_the_audio_stays_the_same(batched, voices):
    """``stream_first_chunk_size``: a sentence's first chunk after fewer codes (early audio),
    then ``stream_chunk_size`` codes each, with the same audio; the serial path (until it goes)
    cuts its chunks the same way."""
    params = _params(0, max_new_tokens=40, stream_chunk_size=20)
    small_first = {**params, "stream_first_chunk_size": 12}
    default = list(batched.stream(TEXTS[0], "en", voices[0], params))
    small = list(batched.stream(TEXTS[0], "en", voices[0], small_first))
    # 12 codes make 52 frames, less the 36 the vocoder holds back: 16 frames of 256 samples
    assert small[0].size == 16 * 256 < default[0].size
    np.testing.assert_allclose(np.concatenate(small), np.concatenate(default), atol=1e-4)
    lane, batched.batching = batched.batching, None
    try:
        alone = list(batched.stream(TEXTS[0], "en", voices[0], small_first))
    finally:
        batched.batching = lane
    assert [c.size for c in alone] == [c.size for c in small]
