"""P6 GPU inference: honora's model layer on the full-size XTTS architecture, fp32 and fp16,
whole utterances and streaming: time to first audio, real-time factor at batch 1, and
throughput with 4 and 16 requests at once (threads sharing one model, as a worker with
``HONORA_WORKER_CONCURRENCY`` > 1 does); next to plain coqui-tts (``inference`` and
``inference_stream``, fp32) on the same machine and checkpoint.

Run it on a GPU machine::

    python -m benchmarks p6 --device cuda --fp16 both            # full-size, random weights
    python -m benchmarks p6 --device cuda --fp16 both --model /path/to/XTTS-v2

On a CPU (``--device cpu``, the default) it runs the tiny model with short utterances: the
code path is the same, the GPU targets stay open. Random weights seldom emit the stop token
(the full-size checkpoint never does), so every utterance is bounded to the tokens of
:data:`UTTERANCE_S` seconds.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import coqui_baseline
from benchmarks.checkpoints import empty_caches, resolve_checkpoint
from benchmarks.measures import Stopwatch, ratio, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, Verdict, fmt

TEXT = ("Streaming lets a listener hear the first words while the rest of the sentence is "
        "still being generated, which matters most for long answers.")
UTTERANCE_S = 10.0
CPU_UTTERANCE_S = 1.0
TARGET_TTFA_MS = 150.0
TARGET_RTF = 0.05
TARGET_VS_COQUI = 2.0
SEED = 9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _honora_whole(model: Any, latents: Any, params: dict[str, Any], device: str) -> dict:
    _sync(device)
    watch = Stopwatch()
    out = model.synthesize(TEXT, "en", latents, params)
    return {"total_ms": watch.ms(), "audio_s": out.samples.size / model.sample_rate}


def _honora_stream(model: Any, latents: Any, params: dict[str, Any], device: str) -> dict:
    _sync(device)
    watch, first, samples = Stopwatch(), None, 0
    for chunk in model.stream(TEXT, "en", latents, params):
        if first is None and chunk.size:
            first = watch.ms()
        samples += chunk.size
    return {"ttfa_ms": first, "total_ms": watch.ms(), "audio_s": samples / model.sample_rate}


def _concurrent(model: Any, latents: Any, params: dict[str, Any], parallel: int) -> dict:
    def one(index: int) -> float:
        out = model.synthesize(TEXT, "en", latents, {**params, "seed": SEED + index})
        return out.samples.size / model.sample_rate

    watch = Stopwatch()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        audio_s = sum(pool.map(one, range(parallel)))
    wall_s = watch.ms() / 1000
    return {"wall_s": wall_s, "audio_s": audio_s, "requests_per_s": parallel / wall_s,
            "aggregate_rtf": wall_s / audio_s}


def _precision(directory: Path, device: str, fp16: bool, tokens: int, repeats: int,
               concurrency: tuple[int, ...], coqui: dict[str, Any]) -> dict[str, Any]:
    """honora at one precision, interleaved with plain coqui (``coqui`` holds its model and
    conditioning, loaded at the first call with honora's default voice; its rows are appended
    there)."""
    from honora_tts.model import forget_loaded_models, load_model

    forget_loaded_models()
    model = load_model(str(directory), device=device, fp16=fp16)
    voice, sha = model.default_voice()
    latents = model.latents(voice, sha).latents
    params = {"max_new_tokens": tokens, "seed": SEED}
    model.synthesize("Warm up.", "en", latents, {"max_new_tokens": 8, "seed": SEED})
    if "model" not in coqui:
        coqui["model"] = coqui_baseline.load(directory, device)
        coqui["conditioning"] = coqui_baseline.latents(coqui["model"], voice)
        coqui_baseline.whole(coqui["model"], "Warm up.", coqui["conditioning"], 8, SEED)
    plain, conditioning = coqui["model"], coqui["conditioning"]
    steps = {
        "whole": lambda: _honora_whole(model, latents, params, device),
        "stream": lambda: _honora_stream(model, latents, params, device),
        "coqui_whole": lambda: coqui_baseline.whole(plain, TEXT, conditioning, tokens, SEED),
        "coqui_stream": lambda: coqui_baseline.stream(plain, TEXT, conditioning, tokens, SEED),
    }
    rows: dict[str, list[dict[str, Any]]] = {step: [] for step in steps}
    for index in range(repeats):
        order = list(steps) if index % 2 == 0 else list(reversed(steps))
        for step in order:
            rows[step].append(steps[step]())
    for step in ("coqui_whole", "coqui_stream"):
        coqui.setdefault(step, []).extend(rows[step])
    rows["concurrent"] = {n: _concurrent(model, latents, params, n) for n in concurrency}
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
    seconds = UTTERANCE_S if gpu else CPU_UTTERANCE_S
    tokens = round(seconds * TOKENS_PER_SECOND)
    repeats = options.repeats_or(5 if gpu else 2, 1)
    concurrency = (4, 16) if not options.quick else (2,)
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
                            "was lent); run `python -m benchmarks p6 --device cuda --fp16 both` "
                            "on one")
    result.notes.append(f"model {label}, {tokens} tokens per utterance ({seconds:g} s), "
                        f"{device}")
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
        for parallel, load in rows["concurrent"].items():
            result.add(f"{precision}_throughput_{parallel}",
                       f"honora {precision}: {parallel} at once", load["requests_per_s"],
                       "req/s", spread=f"aggregate RTF {fmt(load['aggregate_rtf'])}")
    coqui = measured["coqui"]
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
