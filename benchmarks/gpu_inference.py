"""P6 inference: honora's one decode path (every synthesis rows of the batch scheduler; a lone
request a batch of one) next to plain coqui-tts (``Xtts.inference`` and ``inference_stream``,
fp32) on the same machine and checkpoint: whole utterances and streaming, time to first audio,
real-time factor at batch 1, the batch of one's cost against coqui's ``inference`` (paired, in
wall and CPU time, with where the time goes: GPT decoding against coqui's ``generate``, the
vocoder), and throughput with several requests at once (threads sharing one model: they decode
in one batch, as a worker with ``HONORA_CONCURRENCY`` > 1 does).

Run it on a GPU machine (``benchmarks/gpu_check.sh`` runs it with P9)::

    python -m benchmarks p6 --device cuda --fp16 both            # full-size, random weights
    python -m benchmarks p6 --device cuda --fp16 both --model /path/to/XTTS-v2

On a CPU (``--device cpu``, the default) it runs the tiny model on :data:`CPU_UTTERANCE_S`
seconds: the code path is the same, the GPU targets stay open. Random weights seldom emit the
stop token (the full-size checkpoint never does), so every utterance is bounded to the tokens
of its length.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import coqui_baseline
from benchmarks.checkpoints import empty_caches, resolve_checkpoint
from benchmarks.measures import Stopwatch, paired_ratios, ratio, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, Verdict, fmt

TEXT = ("Streaming lets a listener hear the first words while the rest of the sentence is "
        "still being generated, which matters most for long answers.")
UTTERANCE_S = 5.0
CPU_UTTERANCE_S = 3.0
QUICK_UTTERANCE_S = 1.0
TARGET_TTFA_MS = 150.0
TARGET_RTF = 0.05
TARGET_VS_COQUI = 2.0
#: The batch of one against coqui's ``inference`` (honora / coqui, wall time): at most this.
TARGET_BATCH_OF_ONE = 1.0
SEED = 9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _cpu_s() -> float:
    return time.process_time()


def _honora_whole(model: Any, latents: Any, sampling: Any, device: str) -> dict:
    _sync(device)
    watch, cpu = Stopwatch(), _cpu_s()
    out = model.synthesize(TEXT, "en", latents, sampling)
    _sync(device)
    return {"total_ms": watch.ms(), "cpu_ms": (_cpu_s() - cpu) * 1000,
            "audio_s": out.samples.size / model.sample_rate}


def _honora_stream(model: Any, latents: Any, sampling: Any, device: str) -> dict:
    _sync(device)
    watch, first, samples = Stopwatch(), None, 0
    for chunk in model.stream(TEXT, "en", latents, sampling):
        if first is None and chunk.size:
            first = watch.ms()
        samples += chunk.size
    return {"ttfa_ms": first, "total_ms": watch.ms(), "audio_s": samples / model.sample_rate}


def _coqui_whole(plain: Any, conditioning: Any, tokens: int) -> dict:
    cpu = _cpu_s()
    row = coqui_baseline.whole(plain, TEXT, conditioning, tokens, SEED)
    return {**row, "cpu_ms": (_cpu_s() - cpu) * 1000}


def _split(model: Any, plain: Any, latents: Any, conditioning: Any, sampling: Any,
           tokens: int, device: str) -> dict[str, float]:
    """Where a batch of one's time goes, against coqui's: the GPT decoding alone (honora's
    scheduler vs coqui's ``generate``) and the vocoder alone (the same HiFi-GAN)."""
    import torch

    from honora_tts.model import IncrementalVocoder
    from honora_tts.model.gpt_decoder import DecodeRequest

    utterance = model.prepare(TEXT, "en", latents, sampling)
    decoding = model.decoding
    _sync(device)
    watch = Stopwatch()
    result = decoding.scheduler.decode(DecodeRequest(
        latents.gpt_cond_latent, utterance.pieces[0], utterance.max_new_tokens, sampling,
        prefix_key=latents.key))
    _sync(device)
    decode_ms = watch.ms()
    watch = Stopwatch()
    with decoding.model_context():
        vocoder = IncrementalVocoder(model.coqui_model.hifigan_decoder,
                                     latents.speaker_embedding.to(device))
        vocoder.push(list(result.latents))
        vocoder.render(final=True)
    _sync(device)
    vocoder_ms = watch.ms()
    gpt = plain.gpt
    text = torch.IntTensor(utterance.pieces[0])[None].to(device)
    watch = Stopwatch()
    with torch.inference_mode():
        gpt.generate(cond_latents=conditioning[0], text_inputs=text, max_new_tokens=tokens,
                     num_return_sequences=1, num_beams=1, output_attentions=False,
                     **coqui_baseline.SAMPLING)
    _sync(device)
    return {"honora_decode_ms": decode_ms, "honora_vocoder_ms": vocoder_ms,
            "coqui_generate_ms": watch.ms()}


def _concurrent(model: Any, latents: Any, sampling: Any, parallel: int) -> dict:
    from dataclasses import replace

    model.set_max_batch(parallel)

    def one(index: int) -> float:
        out = model.synthesize(TEXT, "en", latents, replace(sampling, seed=SEED + index))
        return out.samples.size / model.sample_rate

    watch = Stopwatch()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        audio_s = sum(pool.map(one, range(parallel)))
    wall_s = watch.ms() / 1000
    model.set_max_batch(1)
    return {"wall_s": wall_s, "audio_s": audio_s, "requests_per_s": parallel / wall_s,
            "aggregate_rtf": wall_s / audio_s}


def _precision(directory: Path, device: str, fp16: bool, tokens: int, repeats: int,
               concurrency: tuple[int, ...], coqui: dict[str, Any]) -> dict[str, Any]:
    """honora at one precision, interleaved with plain coqui (``coqui`` holds its model and
    conditioning, loaded at the first call with honora's default voice; its rows are appended
    there)."""
    from honora_tts.model import forget_loaded_models, load_model
    from honora_tts.protocol import SamplingParams

    forget_loaded_models()
    model = load_model(str(directory), device=device, fp16=fp16)
    model.set_max_batch(1)
    voice, sha = model.default_voice()
    latents = model.latents(voice, sha).latents
    sampling = SamplingParams(max_new_tokens=tokens, seed=SEED)
    model.synthesize("Warm up.", "en", latents, SamplingParams(max_new_tokens=8, seed=SEED))
    if "model" not in coqui:
        coqui["model"] = coqui_baseline.load(directory, device)
        coqui["conditioning"] = coqui_baseline.latents(coqui["model"], voice)
        coqui_baseline.whole(coqui["model"], "Warm up.", coqui["conditioning"], 8, SEED)
    plain, conditioning = coqui["model"], coqui["conditioning"]
    steps = {
        "whole": lambda: _honora_whole(model, latents, sampling, device),
        "coqui_whole": lambda: _coqui_whole(plain, conditioning, tokens),
        "stream": lambda: _honora_stream(model, latents, sampling, device),
        "coqui_stream": lambda: coqui_baseline.stream(plain, TEXT, conditioning, tokens, SEED),
    }
    rows: dict[str, Any] = {step: [] for step in steps}
    for index in range(repeats):
        order = list(steps) if index % 2 == 0 else ["coqui_whole", "whole", "coqui_stream",
                                                    "stream"]
        for step in order:
            rows[step].append(steps[step]())
    rows["split"] = [_split(model, plain, latents, conditioning, sampling, tokens, device)
                     for _ in range(max(1, repeats // 2))]
    for step in ("coqui_whole", "coqui_stream"):
        coqui.setdefault(step, []).extend(rows[step])
    rows["concurrent"] = {n: _concurrent(model, latents, sampling, n) for n in concurrency}
    forget_loaded_models()
    return rows


def _verdict(ok: bool, gpu: bool) -> Verdict:
    return ok if gpu else "open"


def run(options: BenchOptions, result: BenchResult) -> None:
    quiet_library_logs()
    from honora_tts.model import TOKENS_PER_SECOND

    device = options.device
    gpu = device.startswith("cuda")
    model_name = options.model or ("full" if gpu else "tiny")
    seconds = UTTERANCE_S if gpu else (QUICK_UTTERANCE_S if options.quick else CPU_UTTERANCE_S)
    tokens = round(seconds * TOKENS_PER_SECOND)
    repeats = options.repeats_or(5, 1)
    concurrency = (4, 16) if gpu else ((2,) if options.quick else (4,))
    precisions = {"off": [False], "on": [True], "both": [False, True]}[options.fp16]
    if not gpu and True in precisions:
        result.skipped("fp16", "fp16", "skipped: fp16 needs CUDA (this run is on a CPU)")
        precisions = [False]
    os.environ["HONORA_DEVICE"] = device
    directory, label = resolve_checkpoint(model_name)
    measured: dict[str, Any] = {}
    with empty_caches():
        coqui: dict[str, Any] = {}
        for half in precisions:
            measured["fp16" if half else "fp32"] = _precision(
                directory, device, half, tokens, repeats, concurrency, coqui)
        measured["coqui"] = {"whole": coqui["coqui_whole"], "stream": coqui["coqui_stream"]}
        coqui.clear()  # drops the plain coqui model
    result.data.update(model=label, device=device, tokens=tokens, utterance_s=seconds,
                       measured=measured, text=TEXT)
    if not gpu:
        result.notes.append("GPU figures still open: this run is on a CPU (no GPU machine "
                            "was lent); run benchmarks/gpu_check.sh on one")
    result.notes.append(f"model {label}, {tokens} tokens per utterance ({seconds:g} s), "
                        f"{device}; honora and coqui interleaved, {repeats} repeats")
    _figures(result, measured, gpu)


def _figures(result: BenchResult, measured: dict[str, Any], gpu: bool) -> None:
    coqui = measured["coqui"]
    best_ttfa = best_rtf = float("inf")
    for precision in [p for p in ("fp32", "fp16") if p in measured]:
        rows = measured[precision]
        ttfa = summarize(r["ttfa_ms"] for r in rows["stream"])
        rtf = summarize(r["total_ms"] / 1000 / r["audio_s"] for r in rows["whole"])
        best_ttfa, best_rtf = min(best_ttfa, ttfa.p50), min(best_rtf, rtf.p50)
        result.add_summary(f"{precision}_ttfa_ms", f"honora {precision}: time to first audio",
                           ttfa, target=f"<= {TARGET_TTFA_MS:g} ms",
                           met=_verdict(ttfa.p50 <= TARGET_TTFA_MS, gpu))
        result.add_summary(f"{precision}_rtf", f"honora {precision}: RTF, batch 1", rtf, "",
                           target=f"<= {TARGET_RTF}", met=_verdict(rtf.p50 <= TARGET_RTF, gpu))
        stream_rtf = summarize(r["total_ms"] / 1000 / r["audio_s"] for r in rows["stream"])
        result.add_summary(f"{precision}_stream_rtf", f"honora {precision}: RTF, streamed",
                           stream_rtf, "")
        if precision == "fp32":
            _batch_of_one(result, rows, gpu)
        for parallel, load in rows["concurrent"].items():
            result.add(f"{precision}_throughput_{parallel}",
                       f"honora {precision}: {parallel} at once (one batch)",
                       load["requests_per_s"], "req/s",
                       spread=f"aggregate RTF {fmt(load['aggregate_rtf'])}")
    coqui_ttfa = summarize(r["ttfa_ms"] for r in coqui["stream"])
    coqui_rtf = summarize(r["total_ms"] / 1000 / r["audio_s"] for r in coqui["whole"])
    coqui_stream_rtf = summarize(r["total_ms"] / 1000 / r["audio_s"] for r in coqui["stream"])
    result.add_summary("coqui_ttfa_ms", "plain coqui fp32: time to first audio", coqui_ttfa)
    result.add_summary("coqui_rtf", "plain coqui fp32: RTF, batch 1", coqui_rtf, "")
    result.add_summary("coqui_stream_rtf", "plain coqui fp32: RTF, streamed", coqui_stream_rtf,
                       "")
    for key, label_text, theirs, ours in (
        ("vs_coqui_ttfa", "coqui / honora: time to first audio", coqui_ttfa.p50, best_ttfa),
        ("vs_coqui_rtf", "coqui / honora: RTF", coqui_rtf.p50, best_rtf),
    ):
        value = ratio(theirs, ours)
        result.add(key, label_text, value, "x", target=f">= {TARGET_VS_COQUI:g}x",
                   met=_verdict(value >= TARGET_VS_COQUI, gpu))
    result.notes.append("published anchors: coqui < 200 ms first chunk; Baseten ~200 ms on a "
                        "T4; Auralis RTF ~0.02 aggregate (REFERENCE.md)")


def _batch_of_one(result: BenchResult, rows: dict[str, Any], gpu: bool) -> None:
    """The batch of one against coqui's ``inference``, paired repeat by repeat, and where the
    time goes."""
    coqui_rows = rows["coqui_whole"]
    wall = paired_ratios([r["total_ms"] for r in rows["whole"]],
                         [r["total_ms"] for r in coqui_rows])
    cpu = paired_ratios([r["cpu_ms"] for r in rows["whole"]], [r["cpu_ms"] for r in coqui_rows])
    result.add_summary("batch_of_one_vs_coqui", "honora batch of one / coqui inference (wall, "
                       "paired)", wall, "x", target=f"<= {TARGET_BATCH_OF_ONE:g}x",
                       met=wall.p50 <= TARGET_BATCH_OF_ONE,
                       note=f"CPU time ratio p50 {fmt(cpu.p50)}")
    split = rows["split"]
    decode = summarize(r["honora_decode_ms"] for r in split)
    generate = summarize(r["coqui_generate_ms"] for r in split)
    vocoder = summarize(r["honora_vocoder_ms"] for r in split)
    result.add("batch_of_one_split", "batch of one: GPT decoding / coqui generate",
               ratio(decode.p50, generate.p50), "x",
               spread=f"decoding {fmt(decode.p50)} ms, coqui generate {fmt(generate.p50)} ms, "
                      f"vocoder {fmt(vocoder.p50)} ms (the same HiFi-GAN both ways)")
