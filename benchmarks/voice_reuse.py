"""P2 voice reuse: the worker (its RunPod adapter and synthesis service), in process, on the tiny
model (``--full-size``: the full-size XTTS architecture with random weights), generation bounded
to a fixed token count, on CPU.

- *first*: a request with a voice this worker has never seen: download from a local voice store
  (real HTTP), check, speaker latents, generation, encoding;
- *repeat*: the same voice again (voice file and latents from the caches);
- *pure*: ``XttsModel.synthesize`` alone with the same latents and parameters (seeded: the same
  tokens, the same work).

Two ratios of repeat to pure generation: *in the request* (the repeat request's wall time over
its own generation time as the handler timed it: the same ``XttsModel.synthesize`` call, so no
load drift between the two; the target is judged on this one), and *paired* (repeat and a
separate pure run alternate, each pair sharing the machine's load at that moment; it checks that
generation inside the handler costs what it costs outside). Done for 6 s references and for
30 s references.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from benchmarks.checkpoints import empty_caches, resolve_checkpoint
from benchmarks.measures import Stopwatch, paired_ratios, summarize
from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt
from benchmarks.voice_files import write_voice

TEXT = "The quick brown fox jumps over the lazy dog."
TARGET_REPEAT_RATIO = 1.05
SEED = 11


def _handle(worker: Any, model: Any, url: str, sha: str, params: dict[str, Any]) -> dict:
    cache = worker.service.voices
    downloads, computed = cache.stats()["downloads"], model.stats()["latents_computed"]
    job = {"id": uuid.uuid4().hex, "input": {
        "text": TEXT, "language": "en", "voice_url": url, "voice_sha256": sha, "params": params,
    }}
    watch = Stopwatch()
    answer = worker.handle(job)
    wall = watch.ms()
    if answer.get("status") != "ok":
        raise RuntimeError(f"the handler answered {answer.get('status')}: {answer.get('error')}")
    return {
        "wall_ms": wall,
        **{k: answer["timings"].get(k) for k in ("voice_fetch_ms", "latents_ms",
                                                 "generation_ms", "encode_ms")},
        "voice_cache": answer["cache"]["voice"],
        "latents_cache": answer["cache"]["latents"],
        "downloads": cache.stats()["downloads"] - downloads,
        "latents_computed": model.stats()["latents_computed"] - computed,
        "audio_s": answer["audio"]["duration_s"],
    }


def _pure(model: Any, path: Path, sha: str, params: dict[str, Any]) -> dict:
    from honora_tts.protocol import SynthesisParams

    latents = model.latents(path, sha).latents
    watch = Stopwatch()
    synthesis = model.synthesize(TEXT, "en", latents,
                                 SynthesisParams(**params).to_sampling_params())
    return {"wall_ms": watch.ms(), "audio_s": synthesis.samples.size / model.sample_rate}


def _measure_voice(worker: Any, model: Any, store: Any, path: Path, pairs: int,
                   params: dict[str, Any]) -> dict[str, Any]:
    stored = store.upload(path)
    first = _handle(worker, model, stored.url, stored.sha256, params)
    local = worker.service.voices.fetch(stored.url, expected_sha256=stored.sha256).path
    repeats, pures = [], []
    for index in range(pairs):
        steps = ("repeat", "pure") if index % 2 == 0 else ("pure", "repeat")
        for step in steps:
            if step == "repeat":
                repeats.append(_handle(worker, model, stored.url, stored.sha256, params))
            else:
                pures.append(_pure(model, local, stored.sha256, params))
    return {"first": first, "repeat": repeats, "pure": pures,
            "voice_bytes": path.stat().st_size}


def run(options: BenchOptions, result: BenchResult) -> None:
    quiet_library_logs()
    model_name = options.model or ("full" if options.full_size and not options.quick
                                   else "tiny")
    tokens = 8 if options.quick else 16
    voice_counts = {6.0: 1, 30.0: 1} if options.quick else {6.0: 2, 30.0: 2}
    pairs = options.repeats_or(2, 1)
    directory, label = resolve_checkpoint(model_name)
    params = {"max_new_tokens": tokens, "seed": SEED}
    measured: dict[float, list[dict[str, Any]]] = {}
    with empty_caches() as scratch:
        from honora_tts.model import forget_loaded_models, load_model
        from honora_tts.voices import LocalVoiceStore, VoiceCache
        from honora_tts.worker import build_adapter

        forget_loaded_models()  # a model loaded earlier would bring its warm latent cache
        watch = Stopwatch()
        model = load_model(str(directory), device=os.environ.get("HONORA_DEVICE") or "cpu")
        load_ms = watch.ms()
        voices = VoiceCache(root=scratch / "voices", allow_private=True)
        worker = build_adapter(loader=lambda: model, voices=voices)  # warms up
        warm = model.latents(*model.default_voice()).latents
        _pure(model, *model.default_voice(), params)  # first inference pays one-off allocations
        del warm
        with LocalVoiceStore(scratch / "store") as store:
            for seconds, count in voice_counts.items():
                measured[seconds] = [
                    _measure_voice(worker, model, store,
                                   write_voice(scratch / f"voice-{seconds:g}s-{i}.wav", seconds,
                                               variant=200 + i + int(seconds)),
                                   pairs, params)
                    for i in range(count)
                ]

    result.data.update(model=label, model_load_ms=load_ms, max_new_tokens=tokens,
                       text=TEXT, voices=measured)
    if model_name == "tiny":
        result.skipped("full_size", "full-size model",
                       "skipped: ran the tiny model (`--full-size` runs the full-size one)")
    result.notes.append(f"model {label}, {tokens} tokens per request, CPU, seed {SEED}")
    for seconds, rows in measured.items():
        tag = f"{seconds:g}s"
        firsts = [r["first"] for r in rows]
        repeats = [x for r in rows for x in r["repeat"]]
        pures = [x for r in rows for x in r["pure"]]
        pair_ratio = paired_ratios(
            [x["wall_ms"] for r in rows for x in r["repeat"]],
            [x["wall_ms"] for r in rows for x in r["pure"]],
        )
        first_s, repeat_s, pure_s = (summarize(x["wall_ms"] for x in group)
                                     for group in (firsts, repeats, pures))
        result.add_summary(f"first_ms_{tag}", f"{seconds:g} s voice: first request", first_s,
                           note="")
        result.add_summary(f"repeat_ms_{tag}", f"{seconds:g} s voice: same voice again",
                           repeat_s)
        result.add_summary(f"pure_ms_{tag}", f"{seconds:g} s voice: pure generation", pure_s)
        in_request = summarize(x["wall_ms"] / x["generation_ms"] for x in repeats)
        result.add_summary(f"repeat_over_pure_{tag}",
                           f"{seconds:g} s voice: repeat / pure, in the request", in_request,
                           "x", target=f"<= {TARGET_REPEAT_RATIO}",
                           met=in_request.p50 <= TARGET_REPEAT_RATIO)
        result.add_summary(f"repeat_over_pure_paired_{tag}",
                           f"{seconds:g} s voice: repeat / pure, paired runs", pair_ratio, "x")
        downloads = sum(x["downloads"] for x in repeats)
        recomputed = sum(x["latents_computed"] for x in repeats)
        result.add(f"repeat_downloads_{tag}", f"{seconds:g} s voice: downloads on repeats",
                   downloads, spread=f"latents computed on repeats: {recomputed}",
                   target="0", met=downloads == 0 and recomputed == 0)
        stages = {stage: summarize(x[stage] for x in firsts).p50
                  for stage in ("voice_fetch_ms", "latents_ms", "generation_ms", "encode_ms")}
        result.add(f"first_over_pure_{tag}", f"{seconds:g} s voice: first / pure",
                   first_s.p50 / pure_s.p50 if pure_s.p50 else None, "x",
                   spread=", ".join(f"{k.removesuffix('_ms')} {fmt(v)}" for k, v in
                                    stages.items()) + " ms")
