"""P9 batching: 1, 4 and 8 requests arriving at once in one worker, decoded in one batch
against the serialized worker (one request after another, each a batch of one, as a worker with
``HONORA_CONCURRENCY=1`` runs its queue): throughput, p50/p95 latency from arrival to the last
sample, and time to first audio. Both ways are the one decode path
(:mod:`honora_tts.model.speech_decoding`), the scheduler's batch sized 1 or the level; every
request is streamed.

The tiny model by default, every request decoding the same number of GPT codes; ``--full-size``
(or ``--model full``) the full-size XTTS-v2 architecture with random weights (its checkpoint
never emits the stop code): on a CPU :data:`CPU_UTTERANCE_S` seconds, about how long XTTS takes
to say :data:`TEXT` (77 characters at about 15 a second), so that the prompt (its text tokens)
and the decoding (its codes) are in the proportion of a real sentence. Each concurrency level
runs both ways back to back (alternating which goes first); the 1-minute load average is
recorded per level.

The batched way runs its vocoder in the vocoder lane (:mod:`honora_tts.model.vocoder_lane`): with
one torch thread on a machine of more cores, on a thread of its own beside the decoding. So on
a CPU the batched worker uses a second core for vocoding, which the serialized worker (one
request at a time, one torch thread) does not: read the CPU-time figures for the work done.

Wall time on a shared machine says as much about the neighbours as about the code, so every
figure also comes in *CPU time*: the benchmark process's CPU seconds (``time.process_time``,
all threads) from arrival to the event. The serialized worker runs on one torch thread, so its
CPU time is its wall time on an otherwise idle core; the batched one's CPU time adds its
vocoder lane's, so it is the work done, not a latency.

Targets on a 2-core CPU: batched throughput at 4 at least 2x the serialized worker's, with p50
latency at 4 no worse than 1.5x a lone request's (a batch of one).
On a GPU (``--device cuda``; ``--fp16 on`` for half precision; the full-size model): aggregate
RTF <= 0.02 and time to first audio p50 <= 300 ms at 16 concurrent (``--quick`` off adds 16 on
CUDA).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from benchmarks.checkpoints import empty_caches, resolve_checkpoint
from benchmarks.machine import load_average
from benchmarks.measures import Stopwatch, ratio, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt

if TYPE_CHECKING:
    from honora_tts.protocol import SamplingParams

#: From the tiny tokenizer's training corpus, so that its words are whole tokens (61 with the
#: spaces), closer to what the release's tokenizer makes of a sentence than unseen words.
TEXT = "The quick brown fox jumps over the lazy dog while the band plays a slow song."
#: How long XTTS takes to say TEXT (77 characters at about 15 a second).
CPU_UTTERANCE_S = 5.0
GPU_UTTERANCE_S = 5.0
QUICK_UTTERANCE_S = 1.0
TARGET_THROUGHPUT = 2.0
TARGET_LATENCY = 1.5
TARGET_GPU_RTF = 0.02
TARGET_GPU_TTFA_MS = 300.0
SEED = 21


def _round(model: Any, latents: Any, parallel: int, params: SamplingParams,
           serialized: bool) -> dict[str, Any]:
    """``parallel`` streamed requests arriving together: in threads (batched: they decode
    together; serialized: one after another, as a one-job-at-a-time worker's queue runs them)."""
    watch = Stopwatch()
    cpu_start = time.process_time()
    lock = threading.Lock()

    def cpu_ms() -> float:
        return (time.process_time() - cpu_start) * 1000

    def one(index: int) -> dict[str, Any]:
        request = replace(params, seed=SEED + index)
        first = first_cpu = None
        samples = 0
        for chunk in model.stream(TEXT, "en", latents, request):
            if first is None and chunk.size:
                first, first_cpu = watch.ms(), cpu_ms()
            samples += chunk.size
        return {"latency_ms": watch.ms(), "latency_cpu_ms": cpu_ms(), "ttfa_ms": first,
                "ttfa_cpu_ms": first_cpu, "audio_s": samples / model.sample_rate}

    if serialized:
        def serial(index: int) -> dict[str, Any]:
            with lock:  # whole requests one after another, like a one-job-at-a-time worker
                return one(index)
        run = serial
    else:
        run = one
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        rows = list(pool.map(run, range(parallel)))
    wall_s = watch.ms() / 1000
    cpu_s = cpu_ms() / 1000
    audio_s = sum(r["audio_s"] for r in rows)
    return {"rows": rows, "wall_s": wall_s, "cpu_s": cpu_s, "requests_per_s": parallel / wall_s,
            "requests_per_cpu_s": parallel / cpu_s,
            "aggregate_rtf": wall_s / audio_s if audio_s else None,
            "load_average": load_average()[0]}


def run(options: BenchOptions, result: BenchResult) -> None:
    quiet_library_logs()
    from honora_tts import model as xtts
    from honora_tts.protocol import SamplingParams

    device = options.device
    gpu = device.startswith("cuda")
    model_name = options.model or ("full" if (gpu or options.full_size) and not options.quick
                                   else "tiny")
    seconds = QUICK_UTTERANCE_S if options.quick else (GPU_UTTERANCE_S if gpu else
                                                       CPU_UTTERANCE_S)
    tokens = round(seconds * xtts.TOKENS_PER_SECOND)
    levels = (1, 2) if options.quick else ((1, 4, 8, 16) if gpu else (1, 4, 8))
    fp16 = options.fp16 == "on" and gpu
    if options.fp16 != "off" and not gpu:
        result.skipped("fp16", "fp16", "skipped: fp16 needs CUDA (this run is on a CPU)")
    os.environ["HONORA_DEVICE"] = device
    directory, label = resolve_checkpoint(model_name)
    params = SamplingParams(max_new_tokens=tokens)
    measured: dict[str, Any] = {}
    with empty_caches():
        xtts.forget_loaded_models()
        model = xtts.load_model(str(directory), device=device, fp16=fp16)
        voice, sha = model.default_voice()
        latents = model.latents(voice, sha).latents
        list(model.stream("Warm up.", "en", latents, replace(params, max_new_tokens=4)))
        for index, parallel in enumerate(levels):
            modes = ("serialized", "batched") if index % 2 == 0 else ("batched", "serialized")
            for mode in modes:
                model.set_max_batch(1 if mode == "serialized" else parallel)
                measured.setdefault(mode, {})[parallel] = _round(
                    model, latents, parallel, params, serialized=mode == "serialized")
        stats = model.decoding_stats()
        lane = stats["vocoder_lane"]
        xtts.forget_loaded_models()
    result.data.update(model=label, device=device, fp16=fp16, tokens=tokens,
                       utterance_s=seconds, levels=list(levels), measured=measured,
                       scheduler=stats, text=TEXT, torch_threads=_threads(), vocoder_lane=lane)
    result.notes.append(f"model {label}, {tokens} codes per request ({seconds:g} s of audio), "
                        f"{device}{' fp16' if fp16 else ''}, {_threads()} torch thread(s), batched "
                        f"vocoder lane: {lane}; "
                        "streamed requests arrive together; latency = arrival to last sample; CPU = "
                        "this process's CPU time over the same span")
    _figures(result, measured, levels, gpu)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _figures(result: BenchResult, measured: dict[str, Any], levels: tuple[int, ...],
             gpu: bool) -> None:
    def p50(mode: str, parallel: int, key: str) -> float:
        return summarize(r[key] for r in measured[mode][parallel]["rows"]).p50

    for parallel in levels:
        for mode in ("serialized", "batched"):
            run = measured[mode][parallel]
            rows = run["rows"]
            result.add(f"{mode}_throughput_{parallel}", f"{mode}: {parallel} at once, throughput",
                       run["requests_per_s"], "req/s",
                       spread=f"per CPU s {fmt(run['requests_per_cpu_s'])}; aggregate RTF "
                              f"{fmt(run['aggregate_rtf'])}; load {fmt(run['load_average'])}")
            for key, label in (("latency", "latency"), ("ttfa", "time to first audio")):
                wall = summarize(r[f"{key}_ms"] for r in rows)
                cpu = summarize(r[f"{key}_cpu_ms"] for r in rows)
                result.add_summary(f"{mode}_{key}_{parallel}",
                                   f"{mode}: {parallel} at once, {label}", wall,
                                   note=f"CPU time p50 {fmt(cpu.p50)} ms, p95 {fmt(cpu.p95)}")
                result.add_summary(f"{mode}_{key}_cpu_{parallel}",
                                   f"{mode}: {parallel} at once, {label} (CPU time)", cpu)
    compare = 4 if 4 in levels else levels[-1]
    judged = compare == 4
    for suffix, label, throughput, latency in (
        ("", "wall", "requests_per_s", "latency_ms"),
        ("_cpu", "CPU time", "requests_per_cpu_s", "latency_cpu_ms"),
    ):
        speedup = ratio(measured["batched"][compare][throughput],
                        measured["serialized"][compare][throughput])
        result.add(f"throughput_ratio{suffix}_{compare}",
                   f"batched / serialized throughput at {compare} ({label})", speedup, "x",
                   target=f">= {TARGET_THROUGHPUT:g}x",
                   met=speedup >= TARGET_THROUGHPUT if judged else None)
        lone = p50("serialized", 1, latency)
        slowdown = ratio(p50("batched", compare, latency), lone)
        result.add(f"latency_ratio{suffix}_{compare}",
                   f"batched p50 latency at {compare} / lone request ({label})", slowdown, "x",
                   target=f"<= {TARGET_LATENCY:g}x",
                   met=slowdown <= TARGET_LATENCY if judged else None,
                   spread=f"lone request {fmt(lone)} ms (a batch of one)")
    if 16 in levels:
        run = measured["batched"][16]
        ttfa = p50("batched", 16, "ttfa_ms")
        result.add("gpu_rtf_16", "batched: aggregate RTF at 16", run["aggregate_rtf"], "",
                   target=f"<= {TARGET_GPU_RTF}",
                   met=(run["aggregate_rtf"] or 1e9) <= TARGET_GPU_RTF if gpu else "open")
        result.add("gpu_ttfa_16", "batched: time to first audio p50 at 16", ttfa, "ms",
                   target=f"<= {TARGET_GPU_TTFA_MS:g} ms",
                   met=ttfa <= TARGET_GPU_TTFA_MS if gpu else "open")
    elif not gpu:
        result.notes.append("GPU targets (aggregate RTF <= 0.02 and time to first audio <= "
                            "300 ms at 16 concurrent, H200) still open: no GPU was lent; run "
                            "benchmarks/gpu_check.sh on one")
