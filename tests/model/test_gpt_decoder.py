"""The GPT decoder on the tiny XTTS: a row decodes the same codes in a batch as alone (padded to
CUDA's row buckets or not), and alone the same as coqui's own ``generate`` path; its step has no
host synchronisation (traced whole by ``torch._dynamo``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from honora_tts.model.gpt_decoder import (
    DecodeRequest,
    DecodeRequestError,
    GptDecoder,
    PrefixCache,
    decode_alone,
)
from honora_tts.protocol import SamplingParams

TEXTS = (
    "hello world, this is a test.",
    "the quick brown fox jumps over the lazy dog while the band plays a slow song",
    "one two",
)
GREEDY = SamplingParams(do_sample=False)
TOKENS = 24


@pytest.fixture(scope="module", params=[False, True], ids=["rows-as-many", "rows-padded"])
def decoder(model, request):
    """The CPU's decoder, and CUDA's layout (rows padded to powers of two, stop codes read every
    8 steps) run on the CPU."""
    padded = request.param
    return GptDecoder(model.coqui_model.gpt, model.device, pad_rows=padded,
                      sync_every=8 if padded else None)


def _tokens(model, text):
    return model.coqui_model.tokenizer.encode(text, lang="en")


def _requests(model, voices, sampling, seeds=(None, None, None), max_new=TOKENS):
    return [
        DecodeRequest(voices[i % 2].gpt_cond_latent, _tokens(model, text), max_new,
                      dataclasses.replace(sampling, seed=seed), prefix_key=voices[i % 2].key)
        for i, (text, seed) in enumerate(zip(TEXTS, seeds, strict=True))
    ]


def _run_staggered(decoder, requests, join_after=3):
    """First request alone for ``join_after`` steps, then the others join; rows leave as they
    finish. Returns each row's codes and stream latents."""
    rows = [decoder.row(r) for r in requests]
    results = {}
    batch = decoder.prefill(rows[:1])
    decoder.sync(batch)
    for _ in range(join_after):
        decoder.step(batch)
    joining = decoder.prefill(rows[1:])
    decoder.sync(joining)
    batch = decoder.merge(batch, joining)
    widths = set()
    while True:
        if decoder.needs_sync(batch) or any(row.done for row in batch.rows):
            decoder.sync(batch)
        for index, row in enumerate(batch.rows):
            if row.done and batch.unsynced == 0:
                results[id(row)] = decoder.result(batch, index)
        batch = decoder.select(batch, [i for i, row in enumerate(batch.rows)
                                       if id(row) not in results])
        if not len(batch):
            break
        widths.add(len(batch))
        decoder.step(batch)
    assert len(widths) > 1  # rows really did share steps, and some left before others
    return [results[id(row)] for row in rows]


def test_greedy_alone_matches_coquis_generate(model, voices, decoder):
    gpt = model.coqui_model.gpt
    for request in _requests(model, voices, GREEDY)[:2]:
        with torch.inference_mode():
            theirs = gpt.generate(
                cond_latents=request.gpt_cond_latent,
                text_inputs=torch.IntTensor(list(request.text_tokens))[None],
                do_sample=False, top_p=0.85, top_k=50, temperature=0.75,
                num_return_sequences=1, num_beams=1, length_penalty=1.0,
                repetition_penalty=5.0, output_attentions=False, max_new_tokens=TOKENS,
            )
        assert decode_alone(decoder, request).codes == theirs[0].tolist()


def test_greedy_audio_is_coquis_inference(model, voices):
    """The deployed path (the model's synthesis: decoding latents, the vocoder in its lane)
    gives coqui's ``inference`` audio for the same text and greedy codes, to float rounding."""
    latents = voices[0]
    ours = model.synthesize(TEXTS[0], "en", latents,
                            SamplingParams(do_sample=False, max_new_tokens=TOKENS)).samples
    with torch.inference_mode():
        theirs = model.coqui_model.inference(
            TEXTS[0], "en", latents.gpt_cond_latent, latents.speaker_embedding,
            do_sample=False, repetition_penalty=5.0, max_new_tokens=TOKENS,
        )["wav"]
    theirs = np.asarray(theirs, dtype=np.float32).reshape(-1)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_decoding_latents_are_coquis_forward_latents(model, voices, decoder):
    """What lets the whole-utterance path skip coqui's second GPT pass: the latents of the
    decoding steps equal the teacher-forced forward pass's, to float rounding."""
    request = _requests(model, voices, GREEDY)[1]
    result = decode_alone(decoder, request)
    tokens = torch.IntTensor(list(request.text_tokens))[None]
    codes = torch.tensor([result.codes])
    with torch.inference_mode():
        forward = model.coqui_model.gpt(
            tokens, torch.tensor([tokens.shape[-1]]), codes,
            torch.tensor([codes.shape[-1] * model.coqui_model.gpt.code_stride_len]),
            cond_latents=voices[1].gpt_cond_latent, return_attentions=False, return_latent=True,
        )[0]
    assert forward.shape == result.latents.shape
    torch.testing.assert_close(result.latents, forward, atol=1e-4, rtol=1e-4)


def test_greedy_batched_gives_the_same_codes_as_alone(model, voices, decoder):
    alone = [decode_alone(decoder, r) for r in _requests(model, voices, GREEDY)]
    batched = _run_staggered(decoder, _requests(model, voices, GREEDY))
    for one, many in zip(alone, batched, strict=True):
        assert many.codes == one.codes
        assert many.latents.shape == one.latents.shape == (TOKENS, decoder.model_dim)
        torch.testing.assert_close(many.latents, one.latents, atol=1e-4, rtol=1e-4)


def test_sampling_with_a_seed_gives_the_same_codes_batched_as_alone(model, voices, decoder):
    sampling = SamplingParams(temperature=0.9, top_p=0.8, top_k=40, repetition_penalty=2.0)
    seeds = (11, 12, 13)
    alone = [decode_alone(decoder, r) for r in _requests(model, voices, sampling, seeds)]
    batched = _run_staggered(decoder, _requests(model, voices, sampling, seeds))
    assert [b.codes for b in batched] == [a.codes for a in alone]
    again = decode_alone(decoder, _requests(model, voices, sampling, (99, 12, 13))[0])
    assert again.codes != alone[0].codes  # the seed matters


def test_rows_with_different_sampling_parameters_share_a_batch(model, voices, decoder):
    mixed = [GREEDY, SamplingParams(top_k=5, top_p=1.0, temperature=0.5),
             SamplingParams(top_k=0, top_p=0.5, repetition_penalty=1.0)]
    requests = [DecodeRequest(voices[0].gpt_cond_latent, _tokens(model, t), TOKENS,
                              dataclasses.replace(s, seed=5), prefix_key=voices[0].key)
                for t, s in zip(TEXTS, mixed, strict=True)]
    alone = [decode_alone(decoder, r).codes for r in requests]
    assert [r.codes for r in _run_staggered(decoder, requests)] == alone


def test_rows_leave_at_their_own_length(model, voices, decoder):
    requests = _requests(model, voices, GREEDY)
    for request, length in zip(requests, (5, 17, 9), strict=True):
        request.max_new_tokens = length
    results = _run_staggered(decoder, requests, join_after=1)
    assert [len(r.codes) for r in results] == [5, 17, 9]
    assert all(not r.stopped for r in results)  # random weights: bounded, not stopped


def test_stream_latents_come_in_chunks(model, voices, decoder):
    chunks = []
    request = _requests(model, voices, GREEDY)[0]
    request.stream_chunk_size = 10
    request.on_latents = lambda latents, codes, final: chunks.append((len(codes), final))
    decode_alone(decoder, request)
    assert chunks == [(10, False), (10, False), (4, True)]


@pytest.mark.parametrize("change, message", [
    ({"text_tokens": []}, "text_tokens is empty"),
    ({"max_new_tokens": 0}, "max_new_tokens must lie"),
    ({"sampling": SamplingParams(temperature=0.0)}, "temperature must be a positive"),
    ({"sampling": SamplingParams(top_p=1.5)}, r"top_p must lie in \[0, 1\]"),
    ({"gpt_cond_latent": torch.zeros(1, 32, 7)}, "gpt_cond_latent has shape"),
])
def test_malformed_requests_are_refused_with_the_field(model, voices, decoder, change, message):
    request = _requests(model, voices, GREEDY)[0]
    for name, value in change.items():
        setattr(request, name, value)
    with pytest.raises(DecodeRequestError, match=message):
        decoder.check(request)


def test_a_voice_prefix_is_computed_once_and_gives_the_codes_a_fresh_one_gives(model, voices):
    """Rows of a voice seen before reuse its prefix keys and values; the codes are those of a
    decoder that keeps no prefix, batched or alone, and a voice of another prefix length (a
    longer conditioning sequence) shares the batch."""
    cached = GptDecoder(model.coqui_model.gpt, model.device)
    fresh = GptDecoder(model.coqui_model.gpt, model.device, prefix_voices=0)
    longer = torch.cat([voices[1].gpt_cond_latent, voices[0].gpt_cond_latent[:, :5]], dim=1)
    requests = [
        DecodeRequest(latent, _tokens(model, text), TOKENS, GREEDY, prefix_key=key)
        for latent, key, text in ((voices[0].gpt_cond_latent, voices[0].key, TEXTS[0]),
                                  (voices[0].gpt_cond_latent, voices[0].key, TEXTS[1]),
                                  (longer, "longer", TEXTS[2]))
    ]
    expected = [decode_alone(fresh, r).codes for r in requests]
    assert fresh.prefixes.hits == 0 and len(fresh.prefixes) == 0

    assert [decode_alone(cached, r).codes for r in requests] == expected
    assert (cached.prefixes.misses, cached.prefixes.hits) == (2, 1)
    assert [r.codes for r in _run_staggered(cached, requests)] == expected
    assert (cached.prefixes.misses, cached.prefixes.hits) == (2, 4)


def test_the_prefix_cache_keeps_the_latest_voices_by_their_latent_key(model, voices):
    cache = PrefixCache(voices=2)
    for key in ("a", "b"):
        cache.put(key, [])
    assert cache.get("a") == []  # "a" is now the most recent
    cache.put("c", [])
    assert cache.get("b") is None and cache.get("a") == [] and len(cache) == 2
    # The latents carry their key from the latent cache: nothing is hashed on the way down.
    assert voices[0].key and voices[1].key and voices[0].key != voices[1].key
    assert len(voices[0].key) == 64


def test_the_step_has_no_host_sync_and_keeps_its_shapes(model, voices):
    """What capturing the step as a CUDA graph needs, checked on the CPU: ``torch._dynamo``
    traces the whole step as one graph (``fullgraph``: an ``.item()``, a ``.tolist()`` or a
    branch on a tensor's value would break it), and two steps leave every buffer its shape."""
    import torch._dynamo

    decoder = GptDecoder(model.coqui_model.gpt, model.device, pad_rows=True)
    rows = [decoder.row(r) for r in _requests(model, voices, SamplingParams(), (1, 2, 3))]
    batch = decoder.prefill(rows)
    assert batch.capacity == 4  # three rows, one padding row
    shapes = {name: tuple(getattr(batch, name).shape)
              for name in ("filled", "tokens", "seen", "draws", "codes", "latents")}
    tensors = ("filled", "write", "tokens", "positions", "seen", "codes", "latents", "stop_at")

    def step(*state):
        for name, value in zip(tensors, state, strict=True):
            setattr(batch, name, value)
        decoder.step(batch)
        return tuple(getattr(batch, name) for name in tensors)

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(step)(*(getattr(batch, name) for name in tensors))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert {name: tuple(getattr(batch, name).shape) for name in shapes} == shapes
    torch._dynamo.reset()
