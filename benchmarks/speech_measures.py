"""P9: the offline speech measures of one 5 s clip (DNSMOS, pocketsphinx transcript and
alignment, resemblyzer similarity, levels), end to end as the speech verdict runs them, and
each part alone. Target: one clip in at most 1.5 s on 2 cores, so that a verification run
stays quick. Models are loaded (and warmed) before timing; their load time is its own
figure."""

from __future__ import annotations

import numpy as np

from benchmarks.measures import Stopwatch, summarize, time_calls
from benchmarks.options import BenchOptions
from benchmarks.report import BenchResult

TARGET_S = 1.5
CLIP_S = 5.0
TEXT = ("Please call Stella and ask her to bring these things with her from the store, "
        "and six thick slabs of blue cheese.")


def _clip() -> tuple[np.ndarray, int, np.ndarray]:
    from honora_tts.qa.speech import espeak

    samples, rate = espeak.speak(TEXT, "en-us+m1")
    needed = int(CLIP_S * rate)
    samples = np.pad(samples, (0, max(0, needed - samples.size)))[:needed]
    reference, _ = espeak.speak("Good morning, and welcome to the station.", "en-us+m1")
    return samples, rate, reference


def run(options: BenchOptions, result: BenchResult) -> None:
    from honora_tts.qa.audio_metrics import SpeakerEncoder
    from honora_tts.qa.speech.asr import DEFAULT_ALIGN_BEAM, asr_backend
    from honora_tts.qa.speech.predicted_quality import DnsmosPredictor
    from honora_tts.qa.speech.speech_verdict import check_clip
    from honora_tts.qa.speech.thresholds import load_thresholds

    repeats = options.repeats_or(10, 3)
    samples, rate, reference = _clip()
    thresholds = load_thresholds()
    trust = thresholds.text_trust_for("pocketsphinx", "en")
    beam = trust.align_beam if trust and trust.align_beam else DEFAULT_ALIGN_BEAM
    watch = Stopwatch()
    dnsmos = DnsmosPredictor.shared()
    asr = asr_backend(align_beam=beam)
    encoder = SpeakerEncoder.shared()
    check_clip(samples, rate, TEXT, "en", reference=(reference, rate), thresholds=thresholds)
    result.add("load_ms", "models loaded and warmed (DNSMOS, pocketsphinx, resemblyzer)",
               watch.ms(), "ms")

    whole = time_calls(lambda: check_clip(samples, rate, TEXT, "en",
                                          reference=(reference, rate),
                                          thresholds=thresholds), repeats)
    summary = summarize(s / 1000 for s in whole)
    result.add_summary("clip_s", f"all measures + verdict of one {CLIP_S:.0f} s clip", summary,
                       "s", target=f"<= {TARGET_S} s", met=summary.p50 <= TARGET_S)
    transcript = asr.transcribe(samples, rate, "en")
    parts = {
        "dnsmos_ms": ("DNSMOS P.835 + P.808", lambda: dnsmos.predict(samples, rate)),
        "asr_ms": ("pocketsphinx transcript", lambda: asr.transcribe(samples, rate, "en")),
        "align_ms": ("pocketsphinx forced alignment",
                     lambda: asr.match_text(samples, rate, TEXT, "en", transcript)),
        "voice_ms": ("resemblyzer similarity",
                     lambda: encoder.similarity(samples, rate, reference, rate)),
    }
    for key, (label, call) in parts.items():
        result.add_summary(key, label, summarize(time_calls(call, repeats)), "ms")
    result.data["samples_ms"] = whole
    result.notes.append(f"clip: espeak-ng en-us+m1, padded to {CLIP_S} s at {rate} Hz; "
                        f"{repeats} repeats; check_clip = what check-audio and the gate run")
