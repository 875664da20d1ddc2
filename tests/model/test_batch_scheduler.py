"""The continuous-batching scheduler on the tiny XTTS: concurrent requests decode together and
each gets the codes it gets alone; failures, cancels and out-of-memory stay with their row."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from honora_tts.cancellation import CancelToken
from honora_tts.model.batch_scheduler import BatchScheduler, DecodeCancelled, DecodeOutOfMemory
from honora_tts.model.gpt_decoder import (
    DecodeRequest,
    DecodeRequestError,
    GptDecoder,
    decode_alone,
)
from honora_tts.protocol import SamplingParams

TEXTS = (
    "hello world, this is a test.",
    "the quick brown fox jumps over the lazy dog",
    "one two three four five",
    "she sells sea shells by the sea shore",
)
SAMPLING = SamplingParams(temperature=0.8, top_p=0.9, top_k=30, repetition_penalty=3.0)
TOKENS = 20


@pytest.fixture(scope="module")
def alone_decoder(model):
    return GptDecoder(model.coqui_model.gpt, model.device)


@pytest.fixture
def scheduler(model):
    scheduler = BatchScheduler(GptDecoder(model.coqui_model.gpt, model.device), max_batch=4)
    yield scheduler
    scheduler.close()


def _request(model, voices, index, *, max_new=TOKENS, label="", **extra):
    tokens = model.coqui_model.tokenizer.encode(TEXTS[index], lang="en")
    return DecodeRequest(voices[index % 2].gpt_cond_latent, tokens, max_new,
                         dataclasses.replace(SAMPLING, seed=100 + index),
                         prefix_key=voices[index % 2].key, label=label, **extra)


def _alone(alone_decoder, model, voices, index, max_new=TOKENS):
    return decode_alone(alone_decoder, _request(model, voices, index, max_new=max_new)).codes


def test_concurrent_requests_decode_together_with_their_own_codes(
        model, voices, scheduler, alone_decoder):
    futures = [scheduler.submit(_request(model, voices, i)) for i in range(4)]
    results = [f.result(timeout=300) for f in futures]
    assert [r.codes for r in results] == [_alone(alone_decoder, model, voices, i)
                                          for i in range(4)]
    stats = scheduler.stats
    assert stats.max_rows >= 2 and stats.completed == 4 and stats.failed == 0
    assert stats.row_steps > stats.steps  # steps carried several rows


def test_a_request_refused_before_joining_leaves_the_others_alone(
        model, voices, scheduler, alone_decoder):
    good = scheduler.submit(_request(model, voices, 0))
    bad = _request(model, voices, 1)
    bad.gpt_cond_latent = torch.zeros(1, 32, 5)
    refused = scheduler.submit(bad)
    other = scheduler.submit(_request(model, voices, 2))
    with pytest.raises(DecodeRequestError, match="gpt_cond_latent has shape"):
        refused.result(timeout=5)
    assert good.result(timeout=300).codes == _alone(alone_decoder, model, voices, 0)
    assert other.result(timeout=300).codes == _alone(alone_decoder, model, voices, 2)


def test_a_row_failing_inside_the_batch_fails_alone(model, voices, scheduler, alone_decoder):
    def poison(phase, rows):
        if phase == "step" and any(r.request.label == "poison" for r in rows) \
                and rows[0].count > 3:
            raise ValueError("poisoned row")

    scheduler.decoder.before_forward = poison
    futures = [scheduler.submit(_request(model, voices, i, label="poison" if i == 1 else ""))
               for i in range(3)]
    with pytest.raises(ValueError, match="poisoned row"):
        futures[1].result(timeout=300)
    for index in (0, 2):
        assert futures[index].result(timeout=300).codes == _alone(alone_decoder, model, voices,
                                                                  index)
    assert scheduler.stats.error_splits >= 1 and scheduler.stats.failed == 1


def test_cancel_removes_one_row(model, voices, scheduler, alone_decoder):
    started = threading.Event()
    chunks = []

    def on_latents(latents, codes, final):
        chunks.append(len(codes))
        started.set()

    futures = [
        scheduler.submit(_request(model, voices, i, max_new=40,
                                  **({"stream_chunk_size": 4, "on_latents": on_latents}
                                     if i == 1 else {})))
        for i in range(3)
    ]
    assert started.wait(timeout=300)
    assert scheduler.cancel(futures[1])
    with pytest.raises(DecodeCancelled):
        futures[1].result(timeout=300)
    for index in (0, 2):
        assert futures[index].result(timeout=300).codes == _alone(alone_decoder, model, voices,
                                                                  index, max_new=40)
    assert sum(chunks) < 40  # the cancelled row stopped decoding
    assert scheduler.stats.cancelled == 1
    assert not scheduler.cancel(futures[0])  # finished: nothing to cancel


@pytest.mark.parametrize("error", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: out of memory"),
])
def test_out_of_memory_splits_the_batch_and_every_job_completes(
        model, voices, scheduler, alone_decoder, error):
    seen = []

    def too_big(phase, rows):
        seen.append((phase, len(rows)))
        if len(rows) > 1 and (phase == "prefill" or rows[0].count > 5):
            raise error

    scheduler.decoder.before_forward = too_big
    futures = [scheduler.submit(_request(model, voices, i)) for i in range(4)]
    results = [f.result(timeout=300) for f in futures]
    assert [r.codes for r in results] == [_alone(alone_decoder, model, voices, i)
                                          for i in range(4)]
    stats = scheduler.stats
    assert stats.oom_splits >= 1 and stats.failed == 0
    assert stats.rows_per_forward == 1
    assert any(size > 1 for _, size in seen)


def test_a_lone_row_out_of_memory_fails_only_that_row(model, voices, scheduler, alone_decoder):
    def only_poison(phase, rows):
        if any(r.request.label == "huge" for r in rows):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    scheduler.decoder.before_forward = only_poison
    futures = [scheduler.submit(_request(model, voices, i, label="huge" if i == 0 else ""))
               for i in range(2)]
    with pytest.raises(DecodeOutOfMemory, match="even alone"):
        futures[0].result(timeout=300)
    assert futures[1].result(timeout=300).codes == _alone(alone_decoder, model, voices, 1)


def test_call_runs_on_the_scheduler_thread(scheduler):
    assert scheduler.call(lambda: threading.current_thread().name).result(timeout=30) == \
        scheduler.name
    with pytest.raises(ZeroDivisionError):
        scheduler.call(lambda: 1 / 0).result(timeout=30)


def test_a_failing_latent_consumer_fails_only_its_row(model, voices, scheduler, alone_decoder):
    def broken(latents, codes, final):
        raise OSError("listener went away")

    futures = [scheduler.submit(_request(model, voices, i, **(
        {"stream_chunk_size": 4, "on_latents": broken} if i == 0 else {}))) for i in range(2)]
    with pytest.raises(OSError, match="listener went away"):
        futures[0].result(timeout=300)
    assert futures[1].result(timeout=300).codes == _alone(alone_decoder, model, voices, 1)


def test_a_cancelled_token_takes_its_row_out_between_steps(model, voices, scheduler,
                                                            alone_decoder):
    """The request's own token (set from another thread, as a stop signal or a client's
    disconnect sets it) works like :meth:`BatchScheduler.cancel`: the row leaves within a step,
    a waiting one never starts."""
    token = CancelToken()
    started = threading.Event()

    def on_latents(latents, codes, final):
        started.set()

    doomed = scheduler.submit(_request(model, voices, 1, max_new=200, cancel=token,
                                       stream_chunk_size=4, on_latents=on_latents))
    other = scheduler.submit(_request(model, voices, 0, max_new=40))
    assert started.wait(timeout=300)
    token.cancel()
    with pytest.raises(DecodeCancelled):
        doomed.result(timeout=300)
    assert other.result(timeout=300).codes == _alone(alone_decoder, model, voices, 0, max_new=40)
    assert scheduler.stats.row_steps < 200 + 40 and scheduler.stats.cancelled == 1

    never = CancelToken()
    never.cancel()
    with pytest.raises(DecodeCancelled, match="before it started"):
        scheduler.decode(_request(model, voices, 2, cancel=never))
    assert scheduler.stats.cancelled == 2
