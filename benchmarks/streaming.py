"""P4 streaming: time to first audio of a 10 s utterance divided by the time of the whole
(non-streamed) synthesis, on the tiny model and the full-size architecture (random weights,
generation bounded to the tokens of 10 s), CPU.

Per repeat, in alternating order: ``XttsModel.synthesize`` (whole) and ``XttsModel.stream``
with honora's incremental vocoder; once, plain coqui's ``inference_stream`` on the same
checkpoint (:mod:`benchmarks.coqui_baseline`; it re-runs the vocoder over every latent so
far for each chunk). On the full-size model both streams are timed to their first chunk only
(coqui's whole stream took 139 s for 10 s of audio on this machine, honora's 71 s). The first
chunk's time is split into GPT (prefix and the first ``stream_chunk_size`` tokens) and vocoder,
by timing ``IncrementalVocoder.render``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from benchmarks import coqui_baseline
from benchmarks.checkpoints import empty_caches, resolve_checkpoint
from benchmarks.measures import Stopwatch, paired_ratios, ratio, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt

if TYPE_CHECKING:
    from honora_tts.protocol import SamplingParams

TEXT = ("Streaming lets a listener hear the first words while the rest of the sentence is "
        "still being generated, which matters most for long answers.")
UTTERANCE_S = 10.0
TARGET_RATIO = 0.25
SEED = 5


@contextlib.contextmanager
def _timed_vocoder(into: list[float]) -> Iterator[None]:
    """Record the wall time of every ``IncrementalVocoder.render`` call."""
    from honora_tts.model import IncrementalVocoder

    original = IncrementalVocoder.render

    def render(self: Any, final: bool = False) -> Any:
        watch = Stopwatch()
        try:
            return original(self, final)
        finally:
            into.append(watch.ms())

    IncrementalVocoder.render = render  # type: ignore[method-assign]
    try:
        yield
    finally:
        IncrementalVocoder.render = original  # type: ignore[method-assign]


def _stream(model: Any, latents: Any, params: SamplingParams,
            first_chunk_only: bool) -> dict[str, Any]:
    renders: list[float] = []
    watch = Stopwatch()
    first = first_render = None
    samples = 0
    chunks = 0
    with _timed_vocoder(renders):
        stream = model.stream(TEXT, "en", latents, params)
        for chunk in stream:
            if first is None and chunk.size:
                first = watch.ms()
                first_render = renders[-1] if renders else None
            samples += chunk.size
            chunks += 1
            if first is not None and first_chunk_only:
                stream.close()
                break
    done = not first_chunk_only
    return {"ttfa_ms": first, "total_ms": watch.ms() if done else None,
            "audio_s": samples / model.sample_rate, "chunks": chunks,
            "first_vocoder_ms": first_render, "vocoder_ms": sum(renders) if done else None}


def _whole(model: Any, latents: Any, params: SamplingParams) -> dict[str, Any]:
    watch = Stopwatch()
    synthesis = model.synthesize(TEXT, "en", latents, params)
    return {"total_ms": watch.ms(), "audio_s": synthesis.samples.size / model.sample_rate}


def _measure(model_name: str, tokens: int, repeats: int, *,
             streams_to_the_end: bool) -> dict[str, Any]:
    """Whole and honora-streamed ``repeats`` times, plain coqui streamed once; the streams to
    their first chunk only unless ``streams_to_the_end`` (what the first audio / whole figure
    needs; on the full-size model on a CPU the rest takes minutes)."""
    from honora_tts.model import forget_loaded_models, load_model
    from honora_tts.protocol import SamplingParams

    directory, label = resolve_checkpoint(model_name)
    forget_loaded_models()
    model = load_model(str(directory), device="cpu")
    voice, sha = model.default_voice()
    latents = model.latents(voice, sha).latents
    params = SamplingParams(max_new_tokens=tokens, seed=SEED)
    model.synthesize("Warm up.", "en", latents, SamplingParams(max_new_tokens=8, seed=SEED))
    plain = coqui_baseline.load(directory, "cpu")
    conditioning = coqui_baseline.latents(plain, voice)
    coqui_baseline.whole(plain, "Warm up.", conditioning, 8, SEED)
    steps = {
        "whole": lambda: _whole(model, latents, params),
        "incremental": lambda: _stream(model, latents, params, not streams_to_the_end),
        "coqui": lambda: coqui_baseline.stream(plain, TEXT, conditioning, tokens, SEED,
                                               first_chunk_only=not streams_to_the_end),
    }
    rows: dict[str, list[dict[str, Any]]] = {step: [] for step in steps}
    for index in range(repeats):
        order = list(steps) if index == 0 else ["incremental", "whole"]
        if index % 2:
            order.reverse()
        for step in order:
            rows[step].append(steps[step]())
    steps.clear()  # drops the plain coqui model
    chunk_tokens = params.stream_chunk_size
    forget_loaded_models()
    return {"label": label, "tokens": tokens, "chunk_tokens": chunk_tokens, "rows": rows}


def _report(result: BenchResult, tag: str, measured: dict[str, Any]) -> None:
    rows = measured["rows"]
    whole = summarize(r["total_ms"] for r in rows["whole"])
    incremental = rows["incremental"]
    ttfa = summarize(r["ttfa_ms"] for r in incremental)
    share = paired_ratios([r["ttfa_ms"] for r in incremental],
                          [r["total_ms"] for r in rows["whole"]])
    audio_s = summarize(r["audio_s"] for r in rows["whole"]).p50
    result.add_summary(f"{tag}_whole_ms", f"{tag}: whole synthesis ({audio_s:.1f} s audio)",
                       whole, note="")
    result.add(f"{tag}_rtf", f"{tag}: real-time factor (whole)", whole.p50 / 1000 / audio_s)
    result.add_summary(f"{tag}_ttfa_ms", f"{tag}: time to first audio (honora)", ttfa)
    result.add_summary(f"{tag}_ttfa_over_whole", f"{tag}: first audio / whole", share, "x",
                       target=f"<= {TARGET_RATIO}", met=share.p50 <= TARGET_RATIO)
    first_vocoder = summarize(r["first_vocoder_ms"] for r in incremental).p50
    result.add(f"{tag}_first_chunk_split", f"{tag}: first chunk = GPT + vocoder",
               ttfa.p50, "ms",
               spread=f"GPT {fmt(ttfa.p50 - first_vocoder)}, vocoder {fmt(first_vocoder)} ms "
               f"({measured['chunk_tokens']} tokens)")
    coqui = rows["coqui"]
    coqui_ttfa = summarize(r["ttfa_ms"] for r in coqui)
    result.add_summary(f"{tag}_coqui_ttfa_ms", f"{tag}: time to first audio (coqui stream)",
                       coqui_ttfa)
    honora_total = summarize(r["total_ms"] for r in incremental)
    if not honora_total.n:
        result.notes.append(f"{tag}: streams timed to their first chunk only")
        return
    coqui_total = summarize(r["total_ms"] for r in coqui)
    result.add(f"{tag}_stream_total_ms", f"{tag}: whole stream, honora vs coqui",
               honora_total.p50, "ms", spread=f"coqui {fmt(coqui_total.p50)} ms = "
               f"{fmt(ratio(coqui_total.p50, honora_total.p50))}x")
    vocoder_total = summarize(r["vocoder_ms"] for r in incremental).p50
    result.add(f"{tag}_vocoder_share", f"{tag}: vocoder share of honora's stream",
               ratio(vocoder_total, honora_total.p50), "x")


def run(options: BenchOptions, result: BenchResult) -> None:
    quiet_library_logs()
    from honora_tts.model import TOKENS_PER_SECOND

    seconds = 2.0 if options.quick else UTTERANCE_S
    tokens = round(seconds * TOKENS_PER_SECOND)
    repeats = options.repeats_or(2, 1)
    models = [("tiny", "tiny")]
    if options.full_size and not options.quick:
        models.append(("full", options.model or "full"))
    os.environ.setdefault("HONORA_DEVICE", "cpu")
    resolved = {tag: resolve_checkpoint(name) for tag, name in models}  # before empty caches
    measured = {}
    with empty_caches():
        for tag, _ in models:
            directory = str(resolved[tag][0])
            measured[tag] = _measure(directory, tokens, repeats if tag == "tiny" else 1,
                                     streams_to_the_end=tag == "tiny")
            measured[tag]["label"] = resolved[tag][1]
    result.data.update(text=TEXT, utterance_s=seconds, tokens=tokens, measured=measured)
    for tag, data in measured.items():
        _report(result, tag, data)
    if len(models) == 1:
        result.skipped("full", "full-size model", "skipped: `--full-size` adds it")
    if options.quick:
        result.notes.append(f"quick: a {seconds:g} s utterance instead of {UTTERANCE_S:g} s")
    result.notes.append(
        f"{tokens} tokens per utterance, {measured['tiny']['chunk_tokens']} per chunk; CPU; "
        + "; ".join(f"{tag} = {d['label']}" for tag, d in measured.items())
    )
