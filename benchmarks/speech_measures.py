"""P10: the offline speech measures of one 5 s clip of neural speech (Piper), end to end as the
speech verdict runs them with the default install's judges (DNSMOS, the Whisper tiny.en
transcript with word times, resemblyzer similarity, levels, the verdict), and each part
alone; also the same clip with the pocketsphinx fallback (transcript and forced alignment).
Target: one clip in at most 1.5 s on 2 cores. Models are loaded (and warmed) once per process
before timing; their load time is its own figure."""

from __future__ import annotations

import numpy as np

from benchmarks.machine import load_average
from benchmarks.measures import Stopwatch, summarize, time_calls
from benchmarks.options import BenchOptions
from benchmarks.report import BenchResult

TARGET_S = 1.5
CLIP_S = 5.0
TEXT = "Please call Stella and ask her to bring these things with her from the store."


def _clip() -> tuple[np.ndarray, int, np.ndarray]:
    from honora_tts.qa.speech import degradations, piper_voice

    samples, rate = piper_voice.speak(TEXT)
    samples = degradations.padded_to(samples, int(CLIP_S * rate))
    reference, _ = piper_voice.speak("Good morning, and welcome to the station.")
    return samples, rate, reference


def run(options: BenchOptions, result: BenchResult) -> None:
    from honora_tts.qa.audio_metrics import SpeakerEncoder
    from honora_tts.qa.speech.asr import POCKETSPHINX, asr_backend
    from honora_tts.qa.speech.predicted_quality import DnsmosPredictor
    from honora_tts.qa.speech.speech_verdict import check_clip
    from honora_tts.qa.speech.thresholds import load_thresholds

    repeats = options.repeats_or(10, 3)
    samples, rate, reference = _clip()
    thresholds = load_thresholds()
    watch = Stopwatch()
    dnsmos = DnsmosPredictor.shared()
    asr = asr_backend()
    encoder = SpeakerEncoder.shared()
    verdict = check_clip(samples, rate, TEXT, "en", reference=(reference, rate),
                         thresholds=thresholds)
    result.add("load_ms", f"models loaded and warmed (DNSMOS, {asr.name}, resemblyzer)",
               watch.ms(), "ms")
    load_before = load_average()
    whole = time_calls(lambda: check_clip(samples, rate, TEXT, "en",
                                          reference=(reference, rate),
                                          thresholds=thresholds), repeats)
    summary = summarize(s / 1000 for s in whole)
    result.add_summary("clip_s", f"all measures + verdict of one {CLIP_S:.0f} s clip "
                       f"({asr.name})", summary, "s", target=f"<= {TARGET_S} s",
                       met=summary.p50 <= TARGET_S)
    fallback = asr_backend(POCKETSPHINX)
    check_clip(samples, rate, TEXT, "en", thresholds=thresholds, asr_model=POCKETSPHINX)
    result.add_summary("clip_pocketsphinx_s", "the same with the pocketsphinx fallback",
                       summarize(s / 1000 for s in time_calls(
                           lambda: check_clip(samples, rate, TEXT, "en",
                                              reference=(reference, rate),
                                              thresholds=thresholds,
                                              asr_model=POCKETSPHINX), repeats)), "s")
    transcript = fallback.transcribe(samples, rate, "en")
    parts = {
        "dnsmos_ms": ("DNSMOS P.835 + P.808", lambda: dnsmos.predict(samples, rate)),
        "asr_ms": (f"{asr.name} transcript (word times)",
                   lambda: asr.transcribe(samples, rate, "en")),
        "pocketsphinx_ms": ("pocketsphinx transcript",
                            lambda: fallback.transcribe(samples, rate, "en")),
        "align_ms": ("pocketsphinx forced alignment",
                     lambda: fallback.match_text(samples, rate, TEXT, "en", transcript)),
        "voice_ms": ("resemblyzer similarity",
                     lambda: encoder.similarity(samples, rate, reference, rate)),
    }
    for key, (label, call) in parts.items():
        result.add_summary(key, label, summarize(time_calls(call, repeats)), "ms")
    result.data["samples_ms"] = whole
    result.data["verdict"] = verdict.line()
    result.notes.append(f"clip: Piper joe-medium, padded to {CLIP_S} s at {rate} Hz; "
                        f"{repeats} repeats; check_clip = what check-audio and the gate run; "
                        f"verdict {verdict.line()}; load average before/after "
                        f"{load_before} / {load_average()}")
