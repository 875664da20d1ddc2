"""``XttsModel.synthesize`` / ``stream`` through the one decode path, on the tiny XTTS, with a
batch of four rows: concurrent requests give the audio each gives alone (same seed), a bad voice
fails only its request, a stream keeps its chunks and cancels its row when closed, a
cancellation token takes a request out between two steps."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from honora_tts import model as honora_model
from honora_tts.cancellation import CancelToken, SynthesisCancelled
from honora_tts.files import file_sha256
from honora_tts.model.batch_scheduler import wait_idle
from honora_tts.protocol import ErrorCode, SamplingParams, WorkerError

TEXTS = (
    "hello world, this is a test.",
    "the quick brown fox jumps over the lazy dog. how are you today?",
    "one two three four five",
    "she sells sea shells",
)


@pytest.fixture
def batched(model, request):
    """The model with a batch of four rows and, where the test asks, its vocoder on a thread of
    its own or between the decoding steps (a fresh decode path each time: its counters start
    at zero)."""
    from honora_tts.model.speech_decoding import SpeechDecoding

    vocoder_thread = getattr(request, "param", None)
    deployed = model.decoding
    model.decoding = SpeechDecoding(model.coqui_model, model.device, max_batch=4,
                                    vocoder_thread=vocoder_thread)
    yield model
    model.decoding.close()
    model.decoding = deployed


def _params(index, **extra):
    return SamplingParams(**{"max_new_tokens": 16, "seed": 40 + index, **extra})


def _speak(model, voices, index):
    return model.synthesize(TEXTS[index], "en", voices[index % 2], _params(index)).samples


def test_concurrent_requests_give_the_audio_they_give_alone(batched, voices):
    alone = [_speak(batched, voices, i) for i in range(4)]
    assert batched.decoding_stats()["max_rows"] == 1
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: _speak(batched, voices, i), range(4)))
    assert batched.decoding_stats()["max_rows"] >= 2
    for one, many in zip(alone, together, strict=True):
        # the decoding latents: equal to float rounding across batch shapes
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
        batched.synthesize(TEXTS[0], "en", voices[0], SamplingParams(top_p=1.5))
    assert caught.value.code == ErrorCode.INVALID_INPUT and "top_p" in caught.value.message
    assert batched.decoding_stats()["submitted"] == 0


@pytest.mark.parametrize("batched", [True, False], indirect=True,
                         ids=["vocoder-thread", "vocoder-between-steps"])
def test_streams_batched_keep_their_chunks_and_audio(batched, voices):
    def stream(index):
        params = _params(index, max_new_tokens=30, stream_chunk_size=8)
        return [c for c in batched.stream(TEXTS[index], "en", voices[index % 2], params)]

    alone = [stream(i) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(stream, range(3)))
    assert batched.decoding_stats()["max_rows"] >= 2
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
    scheduler = batched.decoding.scheduler
    assert wait_idle(scheduler, timeout=60)
    assert scheduler.stats.cancelled == 1 and scheduler.stats.completed == 0


@pytest.mark.parametrize("batched", [True, False], indirect=True,
                         ids=["vocoder-thread", "vocoder-between-steps"])
def test_the_vocoder_runs_in_its_lane(batched, voices, monkeypatch):
    from honora_tts.model.vocoder import IncrementalVocoder

    lane = batched.decoding.vocoder_lane
    threads = set()
    render = IncrementalVocoder.render

    def recording(self, final=False):
        threads.add(threading.current_thread().name)
        return render(self, final)

    monkeypatch.setattr(IncrementalVocoder, "render", recording)
    list(batched.stream(TEXTS[0], "en", voices[0], _params(0, stream_chunk_size=4)))
    batched.synthesize(TEXTS[1], "en", voices[1], _params(1))
    vocode_thread = lane.submit(lambda: threading.current_thread().name).result(timeout=60)
    if lane.threaded:
        assert threads == {vocode_thread} and vocode_thread.startswith("honora-vocoder")
    else:
        assert threads == {batched.decoding.scheduler.name} == {vocode_thread}


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
    assert wait_idle(batched.decoding.scheduler, timeout=60)


def test_the_lane_runs_beside_the_decoding_only_where_a_core_is_free(monkeypatch):
    import torch

    from honora_tts.model import vocoder_lane

    assert vocoder_lane.lane_pays("cuda:0")
    monkeypatch.setattr(vocoder_lane, "usable_cores", lambda: torch.get_num_threads() + 1)
    assert vocoder_lane.lane_pays("cpu")
    monkeypatch.setattr(vocoder_lane, "usable_cores", lambda: torch.get_num_threads())
    assert not vocoder_lane.lane_pays("cpu")


@pytest.mark.parametrize("how", ["whole", "stream"])
def test_a_cancelled_request_leaves_the_batch_between_steps(batched, voices, how):
    """Its token set while it decodes (as RunPod's stop or a disconnect sets it from another
    thread), the request raises ``cancelled`` within a few steps of 200 and its batch mate
    gives the audio it gives alone."""
    alone = _speak(batched, voices, 1)
    token = CancelToken()
    long = _params(0, max_new_tokens=200, stream_chunk_size=4)
    decoding = batched.decoding

    def doomed():
        if how == "whole":
            return batched.synthesize(TEXTS[0], "en", voices[0], long, cancel=token)
        return list(batched.stream(TEXTS[0], "en", voices[0], long, cancel=token))

    with ThreadPoolExecutor(2) as pool:
        future = pool.submit(doomed)
        mate = pool.submit(_speak, batched, voices, 1)
        stats = decoding.scheduler.stats
        deadline = time.monotonic() + 120
        while stats.submitted < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        joined = stats.steps
        while stats.steps < joined + 5 and time.monotonic() < deadline:  # both rows decoding
            time.sleep(0.005)
        token.cancel("the caller went away")
        with pytest.raises(SynthesisCancelled, match="the caller went away") as caught:
            future.result(timeout=120)
        np.testing.assert_allclose(mate.result(timeout=120), alone, atol=1e-4)
    assert caught.value.code == ErrorCode.CANCELLED
    stats = batched.decoding_stats()
    assert stats["cancelled"] == 1, stats
    assert stats["row_steps"] < 200  # the cancelled row did not run to its bound


def test_a_request_cancelled_while_it_waits_for_a_row_never_starts(batched, voices):
    batched.set_max_batch(1)
    token = CancelToken()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batched.synthesize, TEXTS[0], "en", voices[0],
                            _params(0, max_new_tokens=60))
        deadline = time.monotonic() + 60
        while batched.decoding_stats()["prefills"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        waiting = pool.submit(batched.synthesize, TEXTS[1], "en", voices[1], _params(1),
                              cancel=token)
        while batched.decoding_stats()["submitted"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        token.cancel()
        with pytest.raises(SynthesisCancelled):
            waiting.result(timeout=5)  # at once, while the first still decodes
        assert not first.done()
        first.result(timeout=120)
    stats = batched.decoding_stats()
    assert stats["prefills"] == 1 and stats["completed"] == 1 and stats["cancelled"] == 1


def test_a_small_first_chunk_comes_first_and_the_audio_stays_the_same(batched, voices):
    """``stream_first_chunk_size``: a sentence's first chunk after fewer codes (early audio),
    then ``stream_chunk_size`` codes each, with the same audio."""
    even = _params(0, max_new_tokens=40, stream_chunk_size=20, stream_first_chunk_size=20)
    small_first = _params(0, max_new_tokens=40, stream_chunk_size=20, stream_first_chunk_size=12)
    default = list(batched.stream(TEXTS[0], "en", voices[0], even))
    small = list(batched.stream(TEXTS[0], "en", voices[0], small_first))
    # 12 codes make 52 frames, less the 36 the vocoder holds back: 16 frames of 256 samples
    assert small[0].size == 16 * 256 < default[0].size
    np.testing.assert_allclose(np.concatenate(small), np.concatenate(default), atol=1e-4)


def test_the_first_chunk_is_never_larger_than_the_chunks_after_it(batched, voices):
    larger_first = _params(0, max_new_tokens=40, stream_chunk_size=8, stream_first_chunk_size=30)
    even = _params(0, max_new_tokens=40, stream_chunk_size=8, stream_first_chunk_size=8)
    sizes = [c.size for c in batched.stream(TEXTS[0], "en", voices[0], larger_first)]
    assert sizes == [c.size for c in batched.stream(TEXTS[0], "en", voices[0], even)]
