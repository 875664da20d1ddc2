"""honora_tts.model on the real coqui-tts classes with the tiny XTTS (random weights).

The tiny checkpoint is built once per module in a temporary HONORA_CACHE_DIR and loaded through
coqui's own ``Xtts.load_checkpoint``. Generation is bounded by ``max_new_tokens`` throughout
(random weights never emit the stop token).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from honora_tts import audio
from honora_tts import model as honora_model
from honora_tts.files import file_sha256
from honora_tts.model import checkpoints
from honora_tts.protocol import ErrorCode, SamplingParams, WorkerError

SAMPLES_PER_TOKEN = 1024 / 22_050 * 24_000  # one GPT code is 1024 samples at 22.05 kHz


def tokens_to_samples(tokens: int) -> float:
    return tokens * SAMPLES_PER_TOKEN


# ------------------------------------------------------------------ before the model is loaded


def test_fp16_is_refused_on_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("HONORA_CACHE_DIR", str(tmp_path))
    honora_model.forget_loaded_models()
    with pytest.raises(honora_model.ModelLoadError, match="fp16 needs a CUDA device") as caught:
        honora_model.load_model("tiny", device="cpu", fp16=True)
    assert caught.value.code == ErrorCode.MODEL_NOT_READY
    assert not (tmp_path / "tiny-xtts-seed0").exists()  # refused before building anything


def test_missing_release_weights_name_the_offline_options(monkeypatch, tmp_path):
    monkeypatch.setenv("TTS_HOME", str(tmp_path / "tts-home"))
    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    honora_model.forget_loaded_models()
    with pytest.raises(honora_model.ModelLoadError) as caught:
        honora_model.load_model("xtts_v2", device="cpu")
    message = caught.value.message
    assert "COQUI_TOS_AGREED=1" in message
    assert "HONORA_XTTS_CHECKPOINT" in message and "HONORA_XTTS_MODEL=tiny" in message


def test_incomplete_checkpoint_directory_is_named(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("HONORA_XTTS_CHECKPOINT", str(tmp_path))
    honora_model.forget_loaded_models()
    with pytest.raises(honora_model.ModelLoadError, match="lacks model.pth, vocab.json"):
        honora_model.load_model(device="cpu")


# ------------------------------------------------------------------ the tiny model


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("honora-cache")
        patch.setenv("HONORA_CACHE_DIR", str(root))
        patch.setenv("HONORA_FP16", "1")  # must be ignored (with a warning) on a CPU
        patch.setenv("HONORA_DEVICE", "cpu")
        patch.delenv("HONORA_XTTS_CHECKPOINT", raising=False)
        patch.delenv("HONORA_LATENT_CACHE_ENTRIES", raising=False)
        yield root


@pytest.fixture(scope="module")
def model(cache):
    import torch

    # One intra-op thread: on a shared 2-core machine OpenMP spin-waiting makes two threads
    # several times slower whenever other test processes compete for the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    honora_model.forget_loaded_models()
    loaded = honora_model.load_model("tiny")
    yield loaded
    honora_model.forget_loaded_models()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def voice(model):
    path, sha = model.default_voice()
    return path, sha, model.latents(path, sha).latents


@pytest.fixture
def other_voice(tmp_path):
    rng = np.random.default_rng(7)
    t = np.arange(3 * honora_model.SAMPLE_RATE) / honora_model.SAMPLE_RATE
    samples = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.3 * rng.standard_normal(t.size))
    samples = samples[: int(1.5 * honora_model.SAMPLE_RATE)]
    path = tmp_path / "other.wav"
    path.write_bytes(audio.encode(samples.astype(np.float32), honora_model.SAMPLE_RATE, "wav"))
    return path, file_sha256(path)


def test_tiny_model_loads_through_coqui_and_is_recorded(model, cache):
    from TTS.tts.models.xtts import Xtts

    from honora_tts.version import version_record

    assert isinstance(model._model, Xtts)
    assert model._model.gpt.layers == 2 and model._model.gpt.model_dim == 256
    assert model.name == "tiny-xtts-seed0 (random weights)"
    assert model.checkpoint_dir == cache / "tiny-xtts-seed0"
    assert model.weights_sha256 == file_sha256(cache / "tiny-xtts-seed0" / "model.pth")
    assert model.device == "cpu" and model.fp16 is False  # HONORA_FP16=1 ignored on CPU
    assert model.sample_rate == honora_model.SAMPLE_RATE == 24_000
    assert {"en", "de", "ru", "ar"} <= set(model.languages)
    assert honora_model.load_model() is model and honora_model.load_model("tiny") is model
    record = version_record()
    assert record.model_name == model.name and record.model_sha256 == model.weights_sha256
    assert model.char_limit("en") == 250 and model.char_limit("ja") == 71
    assert model.char_limit("zh-cn") == 82


def test_tiny_checkpoint_dir_builds_once_and_deterministically(model, cache, caplog, capsys):
    # flock locks belong to open file descriptions, so threads contend as processes do.
    with caplog.at_level(logging.INFO, logger="honora_tts.model.checkpoints"), ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(honora_model.tiny_checkpoint_dir, seed=3) for _ in range(3)]
        results = [future.result() for future in futures]
    assert results == [cache / "tiny-xtts-seed3"] * 3
    assert sum("built " in r.getMessage() for r in caplog.records) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".tiny-xtts-seed3.")]
    built = cache / "tiny-xtts-seed3"
    seed3 = file_sha256(built / "model.pth")
    assert seed3 != model.weights_sha256
    metadata = json.loads((built / honora_model.METADATA_FILE).read_text())
    assert metadata["random_weights"] is True and metadata["seed"] == 3

    # A checkpoint of an older recipe is rebuilt; the same seed gives byte-identical weights.
    (built / honora_model.METADATA_FILE).write_text(json.dumps({**metadata, "recipe": 0}))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="honora_tts.model.checkpoints"):
        assert honora_model.tiny_model_main(["--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(built)
    assert sum("built " in r.getMessage() for r in caplog.records) == 1
    assert file_sha256(built / "model.pth") == seed3
    assert json.loads((built / honora_model.METADATA_FILE).read_text())["recipe"] == checkpoints.TINY_RECIPE


def test_load_model_returns_the_checkpoint_asked_for(model, cache):
    """Regression: load_model used to return the process's first model whatever was asked."""
    other_dir = honora_model.tiny_checkpoint_dir(seed=3)
    other = honora_model.load_model(str(other_dir))
    assert other is not model
    assert other.checkpoint_dir == other_dir
    assert other.weights_sha256 == file_sha256(other_dir / "model.pth") != model.weights_sha256
    assert honora_model.load_model(str(other_dir)) is other  # kept, not loaded twice
    assert honora_model.load_model("tiny") is model
    from honora_tts.version import version_record

    assert version_record().model_sha256 == model.weights_sha256  # names the one returned last


def test_weights_checksum_is_remembered_by_size_and_mtime(tmp_path):
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"weights" * 1000)
    real = honora_model.weights_checksum(weights)
    assert real == file_sha256(weights)
    record = weights.with_name("model.pth" + checkpoints.CHECKSUM_SUFFIX)
    saved = json.loads(record.read_text())
    record.write_text(json.dumps({**saved, "sha256": "f" * 64}))
    assert honora_model.weights_checksum(weights) == "f" * 64  # not re-read while size+mtime match
    os.utime(weights, ns=(saved["mtime_ns"] + 10**9, saved["mtime_ns"] + 10**9))
    assert honora_model.weights_checksum(weights) == real


def test_default_voice_is_real_audio_in_the_checkpoint(model, voice):
    path, sha, _ = voice
    assert path == model.checkpoint_dir / honora_model.DEFAULT_VOICE_FILE
    assert sha == file_sha256(path)
    duration, rate = audio.probe_file(path)
    assert rate == honora_model.SAMPLE_RATE and duration >= 2.0
    samples, _ = audio.decode(path.read_bytes())
    assert audio.measure(samples, rate)["silence_ratio"] < 0.6


def test_synthesize_returns_bounded_float32_audio(model, voice):
    _, _, latents = voice
    result = model.synthesize("Hello world, this is a test.", "en", latents,
                              SamplingParams(seed=1))
    assert result.samples.dtype == np.float32 and result.samples.ndim == 1
    assert result.pieces == 1 and result.generation_ms > 0
    assert np.isfinite(result.samples).all()
    limit = honora_model.TINY_DEFAULT_MAX_NEW_TOKENS
    assert 0.5 * tokens_to_samples(limit) <= result.samples.size <= tokens_to_samples(limit + 4)


def test_seed_reproduces_and_speed_shortens(model, voice):
    _, _, latents = voice
    params = SamplingParams(max_new_tokens=12, seed=11)
    first = model.synthesize("Same words twice.", "en", latents, params).samples
    again = model.synthesize("Same words twice.", "en", latents, params).samples
    other = model.synthesize("Same words twice.", "en", latents,
                             dataclasses.replace(params, seed=12)).samples
    fast = model.synthesize("Same words twice.", "en", latents,
                            dataclasses.replace(params, speed=2.0)).samples
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)
    assert fast.size / first.size == pytest.approx(0.5, abs=0.08)


def test_long_text_is_split_and_joined_with_a_pause(model, voice):
    _, _, latents = voice
    sentence = "This sentence is long enough that two of them will not fit in one piece " * 2
    text = f"{sentence.strip()}. {sentence.strip()}."
    assert len(text) > model.char_limit("en")
    result = model.synthesize(text, "en", latents, SamplingParams(max_new_tokens=8))
    assert result.pieces == 2
    assert result.samples.size >= 2 * tokens_to_samples(6) + 0.12 * honora_model.SAMPLE_RATE


def test_numbers_that_expand_past_the_token_limit_are_split(model):
    text = " ".join(["9999999999999"] * 4)  # each spells out to about 130 characters
    assert len(text) <= model.char_limit("en")
    limit = model._model.args.gpt_max_text_tokens
    assert len(model._text_tokens(text, "en")) >= limit  # coqui would assert on it
    pieces = model._pieces(text, "en")
    assert len(pieces) > 1 and " ".join(pieces) == text
    assert all(len(model._text_tokens(p, "en")) < limit for p in pieces)


def test_bad_requests_raise_structured_errors(model, voice):
    _, _, latents = voice
    cases = [
        (("", "en", SamplingParams()), ErrorCode.TEXT_EMPTY),
        (("hello", "xx", SamplingParams()), ErrorCode.UNSUPPORTED_LANGUAGE),
        (("hello", "en", SamplingParams(temperature=0.0)), ErrorCode.INVALID_INPUT),
    ]
    for lang, reason in model.unavailable_languages.items():
        cases.append((("hello", lang, SamplingParams()), ErrorCode.UNSUPPORTED_LANGUAGE))
        assert "needs a Python package" in reason
    for (text, language, params), code in cases:
        with pytest.raises(WorkerError) as caught:
            model.synthesize(text, language, latents, params)
        assert caught.value.code == code
        with pytest.raises(WorkerError):  # before the first chunk is asked for
            model.stream(text, language, latents, params)


def test_split_text_respects_limits(model):
    sentences = [f"Sentence number {i} has a handful of words in it." for i in range(40)]
    text = " ".join(sentences)
    pieces = model.split_text(text, "en")
    assert all(len(p) <= 250 for p in pieces) and len(pieces) > 1
    assert " ".join(pieces) == text
    assert all(p.endswith(".") for p in pieces)  # cut between sentences

    giant = " ".join(f"word{i}" for i in range(600))  # no punctuation at all
    pieces = model.split_text(giant, "en")
    assert all(len(p) <= 250 for p in pieces)
    assert " ".join(pieces) == giant

    clauses = ", ".join(["a clause of several words"] * 20) + "."
    pieces = model.split_text(clauses, "en")
    assert all(len(p) <= 250 for p in pieces)
    assert all(p.endswith(",") for p in pieces[:-1])  # cut at clause punctuation first

    unbroken = "x" * 1000
    pieces = model.split_text(unbroken, "en")
    assert [len(p) for p in pieces] == [250, 250, 250, 250]

    japanese = "今日は良い天気ですね。" * 12 + "句読点のない長い文" * 20
    pieces = model.split_text(japanese, "ja")
    assert all(len(p) <= 71 for p in pieces)
    assert "".join(pieces) == japanese

    chinese = "今天天气很好，我们去公园散步吧。" * 15
    pieces = model.split_text(chinese, "zh-cn")
    assert all(len(p) <= 82 for p in pieces)
    assert "".join(pieces) == chinese

    assert model.split_text("First paragraph\n\nSecond  paragraph", "en") == [
        "First paragraph",
        "Second paragraph",
    ]
    assert model.split_text("  \n ", "en") == []


def fresh_wrapper(model: honora_model.XttsModel, sha: str | None = None) -> honora_model.XttsModel:
    """A second XttsModel on the same weights: empty memory cache, same disk cache."""
    return honora_model.XttsModel(
        model._model,
        name=model.name,
        weights_sha256=sha or model.weights_sha256,
        device=model.device,
        checkpoint_dir=model.checkpoint_dir,
    )


def test_latent_cache_memory_disk_and_corruption(model, other_voice):
    path, sha = other_voice
    first = model.latents(path, sha)
    before = model.stats()
    assert first.cache == "miss"
    assert first.latents.gpt_cond_latent.shape == (1, 32, 256)
    assert first.latents.speaker_embedding.shape == (1, 512, 1)

    memory_hit = model.latents(path, sha)
    model.clear_latent_memory()
    disk_hit = model.latents(path, sha)
    after = model.stats()
    assert (memory_hit.cache, disk_hit.cache) == ("hit", "hit")
    assert after["latents_computed"] == before["latents_computed"]  # no recomputation
    assert after["latents_memory_hits"] == before["latents_memory_hits"] + 1
    assert after["latents_disk_hits"] == before["latents_disk_hits"] + 1
    assert after["latents_hits"] == before["latents_hits"] + 2
    assert after["memory_entries"] == 1 and after["disk_entries"] >= 1
    for a, b in [(first.latents.gpt_cond_latent, disk_hit.latents.gpt_cond_latent),
                 (first.latents.speaker_embedding, disk_hit.latents.speaker_embedding)]:
        assert np.array_equal(a.cpu().numpy(), b.cpu().numpy())

    fresh = fresh_wrapper(model)
    assert fresh.latents(path, sha).cache == "hit"
    assert fresh.stats()["latents_disk_hits"] == 1 and fresh.stats()["latents_computed"] == 0

    # Other latent arguments, or other weights, never reuse these latents.
    assert fresh.latents(path, sha, gpt_cond_len=3).cache == "miss"
    assert fresh_wrapper(model, sha="0" * 64).latents(path, sha).cache == "miss"

    key_file = model._latents.path(model.latent_key(sha, 6, 30))
    data = key_file.read_bytes()
    key_file.write_bytes(data[: len(data) // 2])  # truncated
    truncated = fresh_wrapper(model)
    assert truncated.latents(path, sha).cache == "miss"
    assert truncated.stats()["disk_corrupt_replaced"] == 1
    assert truncated.stats()["latents_computed"] == 1
    assert fresh_wrapper(model).latents(path, sha).cache == "hit"  # replaced by a good file

    import torch

    saved = torch.load(key_file, weights_only=True)
    saved["gpt_cond_latent"] = torch.zeros(1, 32, 7)
    torch.save(saved, key_file)
    misshapen = fresh_wrapper(model)
    assert misshapen.latents(path, sha).cache == "miss"
    assert misshapen.stats()["disk_corrupt_replaced"] == 1


def test_reference_voices_that_are_not_usable(model, tmp_path):
    cases = {
        "text.wav": b"RIFF but not really a wave file at all" * 10,
        "short.wav": audio.encode(np.full(2_400, 0.3, np.float32), honora_model.SAMPLE_RATE, "wav"),
        "silent.wav": audio.encode(np.zeros(48_000, np.float32), honora_model.SAMPLE_RATE, "wav"),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WorkerError) as caught:
            model.latents(path, file_sha256(path))
        assert caught.value.code == ErrorCode.VOICE_NOT_AUDIO, name


def test_incremental_vocoder_matches_the_full_decode(model):
    import torch

    decoder = model._model.hifigan_decoder
    torch.manual_seed(0)
    count, step = 20, 7
    latents = torch.randn(count, 256) * 0.5
    speaker = torch.randn(1, 512, 1) * 0.1
    for speed in (1.0, 0.8):
        vocoder = honora_model.IncrementalVocoder(decoder, speaker, speed=speed)
        chunks = []
        with torch.inference_mode():
            for start in range(0, count, step):
                vocoder.push(list(latents[start : start + step]))
                chunks.append(vocoder.render(final=start + step >= count))
            scale = 1.0 / speed
            reference = latents[None]
            if scale != 1.0:
                reference = torch.nn.functional.interpolate(
                    reference.transpose(1, 2), scale_factor=scale, mode="linear"
                ).transpose(1, 2)
            full = decoder(reference, g=speaker).reshape(-1).numpy()
        joined = np.concatenate(chunks)
        assert sum(c.size > 0 for c in chunks) >= 2
        assert joined.shape == full.shape
        assert np.max(np.abs(joined - full)) < 1e-4 * max(1.0, float(np.max(np.abs(full))))
        total_frames = full.size // decoder.output_hop_length
        assert vocoder.vocoded_frames < 2 * total_frames  # linear, not quadratic


def test_stream_yields_early_chunks_of_the_whole_utterance(model, voice):
    _, _, latents = voice
    sentence = "This sentence is long enough that two of them will not fit in one piece " * 2
    text = f"{sentence.strip()}. {sentence.strip()}."
    params = SamplingParams(max_new_tokens=16, stream_chunk_size=6, seed=5)
    chunks = list(model.stream(text, "en", latents, params))
    assert len(chunks) >= 4
    assert all(c.dtype == np.float32 and c.ndim == 1 and c.size for c in chunks)
    total = sum(c.size for c in chunks)
    expected = 2 * tokens_to_samples(16) + 0.12 * honora_model.SAMPLE_RATE
    assert 0.9 * expected <= total <= 1.1 * expected
    assert chunks[0].size < 0.5 * total  # the first chunk does not wait for the piece


def test_interleaved_streams_do_not_disturb_each_other(model, voice):
    """Two requests advanced in turn (as two handler threads would be) give what each gives
    alone: each row has its own draws, whatever else the scheduler decodes."""
    _, _, latents = voice
    requests = [
        ("A short one.", SamplingParams(max_new_tokens=20, stream_chunk_size=6, seed=1)),
        ("A noticeably longer sentence, with more text tokens in its prefix.",
         SamplingParams(max_new_tokens=20, stream_chunk_size=6, seed=2)),
    ]
    alone = [np.concatenate(list(model.stream(t, "en", latents, p))) for t, p in requests]
    streams = [model.stream(t, "en", latents, p) for t, p in requests]
    collected: list[list[np.ndarray]] = [[], []]
    active = [0, 1]
    while active:
        for index in list(active):
            chunk = next(streams[index], None)
            if chunk is None:
                active.remove(index)
            else:
                collected[index].append(chunk)
    assert min(len(c) for c in collected) >= 3
    for together, single in zip(collected, alone, strict=True):
        np.testing.assert_array_equal(np.concatenate(together), single)
