"""Every speech measure of one clip, each naming the backend and model that produced it:
signal (levels, silence, clipping, NaN), predicted quality (DNSMOS), a transcript with WER/CER
and the recogniser's text check, completeness (speech span, trailing audio) and voice
similarity to a reference (resemblyzer, via :mod:`honora_tts.qa.audio_metrics`)."""

from __future__ import annotations

import hashlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from honora_tts import audio
from honora_tts.qa import audio_metrics
from honora_tts.qa.speech.asr import AsrBackend, TextMatch, Transcript, asr_backend
from honora_tts.qa.speech.completeness import Completeness, measure_completeness, speech_time
from honora_tts.qa.speech.intelligibility import ErrorRates, error_rates
from honora_tts.qa.speech.predicted_quality import PredictedQuality, predict_quality
from honora_tts.qa.speech.repetition import Repeat, excess_repeat

#: Every backend reads 16 kHz: the clip is resampled once, its levels measured at its own rate.
RATE = 16_000
SIGNAL_BACKEND = ("honora_tts.qa.audio_metrics: levels, silence, clipping (numpy), loudness "
                  "(pyloudnorm, ITU-R BS.1770)")
VOICE_BACKEND = "resemblyzer"
VOICE_MODEL = "resemblyzer VoiceEncoder (pretrained.pt in its wheel), cosine of d-vectors"


@dataclass(frozen=True)
class SpeechMeasures:
    """What one clip measures. ``transcript``, ``error_rates``, ``text_match`` and ``repeat``
    (the transcript's longest back-to-back repeat beyond the text's own) are None when no
    recogniser covers the language; ``speaker_similarity`` is NaN without a reference."""

    text: str
    language: str
    finite: bool
    signal: audio_metrics.ClipMetrics
    quality: PredictedQuality
    completeness: Completeness
    transcript: Transcript | None
    error_rates: ErrorRates | None
    text_match: TextMatch | None
    speaker_similarity: float
    repeat: Repeat | None = None
    weak_recogniser: bool = False
    backends: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.transcript is not None:
            data["transcript"] = self.transcript.to_dict()
        return data


def measure_speech(samples: np.ndarray, sample_rate: int, text: str, language: str, *,
                   reference: tuple[np.ndarray, int] | None = None,
                   asr: AsrBackend | None = None,
                   quality: PredictedQuality | None = None) -> SpeechMeasures:
    """Measure one clip against the text it should say (and the voice it should have).
    ``quality``: the clip's DNSMOS scores when already known (the calibration measures each
    clip with several recognisers)."""
    x = np.asarray(samples, dtype=np.float32)
    finite = bool(np.isfinite(x).all())
    if not finite:
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    signal = audio_metrics.measure(x, sample_rate)
    x = audio.resample(x, sample_rate, RATE)
    asr = asr or asr_backend()
    # DNSMOS and the voice embedding run beside the recogniser (each releases the GIL in its
    # runtime): one clip's measures take about the longest of them, not their sum.
    quality_job = None if quality is not None else _POOL.submit(predict_quality, x, RATE)
    voice_job = None
    if reference is not None and speech_time(x, RATE) >= 0.1:
        voice_job = _POOL.submit(_similarity, x, reference)
    transcript = rates = match = repeat = None
    if asr.covers(language) and x.size:
        transcript = asr.transcribe(x, RATE, language)
        rates = error_rates(text, transcript.text, language, backend=asr.name, model=asr.model)
        match = asr.match_text(x, RATE, text, language, transcript)
        repeat = excess_repeat(text, transcript.text, language)
    completeness = measure_completeness(
        x, RATE, text, language,
        last_word_end_s=transcript.last_word_end_s if transcript else math.nan)
    if quality_job is not None:
        quality = quality_job.result()
    assert quality is not None
    similarity = voice_job.result() if voice_job is not None else math.nan
    backends = {"signal": SIGNAL_BACKEND,
                "quality": f"{quality.backend}: {quality.model}",
                "asr": f"{asr.name}: {asr.model}",
                "voice": f"{VOICE_BACKEND}: {VOICE_MODEL}"}
    return SpeechMeasures(text=text, language=language, finite=finite, signal=signal,
                          quality=quality, completeness=completeness, transcript=transcript,
                          error_rates=rates, text_match=match, speaker_similarity=similarity,
                          repeat=repeat, weak_recogniser=bool(asr.weak), backends=backends)


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="speech-measures")


def _similarity(x: np.ndarray, reference: tuple[np.ndarray, int]) -> float:
    encoder = audio_metrics.SpeakerEncoder.shared()
    return audio_metrics.cosine(encoder.embed(x, RATE), _reference_embedding(reference))


_REFERENCES: dict[str, np.ndarray] = {}
_REFERENCES_LOCK = threading.Lock()
_MAX_REFERENCES = 64


def _reference_embedding(reference: tuple[np.ndarray, int]) -> np.ndarray:
    """The reference voice's embedding, computed once per distinct voice (keyed by content):
    a batch of clips shares a few references."""
    samples, rate = reference
    key = hashlib.sha1(np.ascontiguousarray(samples, dtype=np.float32).tobytes()
                       + str(rate).encode()).hexdigest()
    with _REFERENCES_LOCK:
        cached = _REFERENCES.get(key)
    if cached is not None:
        return cached
    embedding = audio_metrics.SpeakerEncoder.shared().embed(samples, rate)
    with _REFERENCES_LOCK:
        if len(_REFERENCES) >= _MAX_REFERENCES:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = embedding
    return embedding
