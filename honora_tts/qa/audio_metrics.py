"""Objective measures of synthesized clips: duration, real-time factor, loudness (LUFS, ITU-R
BS.1770 via pyloudnorm), peak, clipping, silence ratio and speaker similarity to a reference
voice (cosine of resemblyzer d-vectors; its weights ship inside the package, so nothing is
downloaded). The speaker encoder is loaded once, on first use.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from honora_tts import audio

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: pyloudnorm's gating block: shorter clips have no integrated loudness.
LOUDNESS_BLOCK_S = 0.400
SPEAKER_ENCODER_RATE = 16_000
#: Below this much audio left after resemblyzer's silence trimming, embed the untrimmed clip.
MIN_EMBEDDING_S = 0.5


@dataclass(frozen=True)
class ClipMetrics:
    """What one clip measures. ``loudness_lufs`` is NaN for clips shorter than 400 ms or silent;
    ``real_time_factor`` (synthesis seconds per audio second; below 1 is faster than real time)
    and ``speaker_similarity`` (cosine, 1 = same voice) are NaN when not asked for."""

    duration_s: float
    sample_rate: int
    loudness_lufs: float
    peak_dbfs: float
    rms_dbfs: float
    clipping_ratio: float
    silence_ratio: float
    real_time_factor: float = math.nan
    speaker_similarity: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loudness_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS; NaN when the clip is shorter than one 400 ms block or
    silent (pyloudnorm answers -inf there)."""
    import pyloudnorm

    x = np.asarray(samples, dtype=np.float64)
    if x.shape[0] < math.ceil(LOUDNESS_BLOCK_S * sample_rate):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible clipped samples in output" is reported below
        value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
    return value if math.isfinite(value) else math.nan


def real_time_factor(synthesis_s: float | None, duration_s: float) -> float:
    """Seconds of synthesis per second of audio; NaN when either is unknown or zero."""
    if synthesis_s is None or duration_s <= 0 or not math.isfinite(synthesis_s):
        return math.nan
    return float(synthesis_s) / float(duration_s)


class SpeakerEncoder:
    """resemblyzer's ``VoiceEncoder`` on the CPU, loaded once for the whole process."""

    _instance: SpeakerEncoder | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad imports the deprecated pkg_resources
            from resemblyzer import VoiceEncoder, preprocess_wav

        self._preprocess = preprocess_wav
        self._encoder = VoiceEncoder("cpu", verbose=False)
        self._embed_lock = threading.Lock()

    @classmethod
    def shared(cls) -> SpeakerEncoder:
        """The process-wide encoder (built on the first call)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The L2-normalised 256-d voice embedding of a clip."""
        wav = audio.resample(np.asarray(samples, dtype=np.float32), sample_rate,
                             SPEAKER_ENCODER_RATE)
        if wav.size < SPEAKER_ENCODER_RATE * 0.1:
            raise ValueError("the clip is too short for a speaker embedding (under 100 ms)")
        trimmed = self._preprocess(wav)
        if trimmed.size < SPEAKER_ENCODER_RATE * MIN_EMBEDDING_S:
            trimmed = wav
        with self._embed_lock:
            return np.asarray(self._encoder.embed_utterance(trimmed), dtype=np.float32)

    def similarity(self, samples: np.ndarray, sample_rate: int,
                   reference: np.ndarray, reference_rate: int) -> float:
        """Cosine similarity of two clips' voices."""
        return cosine(self.embed(samples, sample_rate), self.embed(reference, reference_rate))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def measure(samples: np.ndarray, sample_rate: int, *, synthesis_s: float | None = None,
            reference: tuple[np.ndarray, int] | None = None,
            encoder: SpeakerEncoder | None = None) -> ClipMetrics:
    """Every measure of one clip. ``reference`` = (samples, rate) of the voice it should match."""
    levels = audio.measure(samples, sample_rate)
    similarity = math.nan
    if reference is not None:
        encoder = encoder or SpeakerEncoder.shared()
        similarity = encoder.similarity(samples, sample_rate, *reference)
    return ClipMetrics(
        duration_s=levels["duration_s"],
        sample_rate=int(sample_rate),
        loudness_lufs=loudness_lufs(samples, sample_rate),
        peak_dbfs=levels["peak_dbfs"],
        rms_dbfs=levels["rms_dbfs"],
        clipping_ratio=levels["clipping_ratio"],
        silence_ratio=levels["silence_ratio"],
        real_time_factor=real_time_factor(synthesis_s, levels["duration_s"]),
        speaker_similarity=similarity,
    )


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Float32 mono samples and rate of an audio file, read with the worker's bounds on
    untrusted audio (:func:`honora_tts.voices.audio_check.read_audio_file`: regular files only,
    a size, rate, channel and duration cap, one capped decode); errors name the file."""
    from honora_tts.voices.audio_check import UnreadableAudio, read_audio_file

    try:
        return read_audio_file(path)
    except UnreadableAudio as exc:
        raise ValueError(f"cannot read audio: {exc}") from exc


def measure_clips(clips: pd.DataFrame, *, progress: bool = True) -> pd.DataFrame:
    """Measure every clip of a table with columns ``path`` and optionally ``synthesis_s``
    (seconds the synthesis took) and ``reference`` (path of the voice to compare with).
    Returns the table with one column per measure added. References are embedded once each."""
    if "path" not in clips.columns:
        raise ValueError(f"clips need a 'path' column; got {list(clips.columns)}")
    from tqdm.auto import tqdm

    references: dict[str, tuple[np.ndarray, int]] = {}
    rows = []
    iterator = clips.to_dict("records")
    for clip in tqdm(iterator, desc="measuring clips", disable=not progress, unit="clip"):
        samples, rate = read_audio(clip["path"])
        reference = None
        ref_path = clip.get("reference")
        if isinstance(ref_path, (str, Path)) and str(ref_path):
            key = str(ref_path)
            if key not in references:
                references[key] = read_audio(key)
            reference = references[key]
        synthesis_s = clip.get("synthesis_s")
        synthesis = float(synthesis_s) if _is_number(synthesis_s) else None
        rows.append(measure(samples, rate, synthesis_s=synthesis, reference=reference).to_dict())
    measured = pd.DataFrame(rows, index=clips.index)
    return pd.concat([clips.drop(columns=[c for c in measured if c in clips]), measured], axis=1)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Measures shown by :func:`plot_clip_metrics`, with their axis labels.
PLOTTED_MEASURES = {
    "duration_s": "duration (s)",
    "real_time_factor": "real-time factor",
    "loudness_lufs": "loudness (LUFS)",
    "peak_dbfs": "peak (dBFS)",
    "silence_ratio": "silence ratio",
    "speaker_similarity": "speaker similarity (cosine)",
}


def plot_clip_metrics(measured: pd.DataFrame, by: str = "condition") -> Figure:
    """One panel per measure: each clip as a dot, grouped by ``by`` (the hidden condition)."""
    import matplotlib.pyplot as plt

    groups = sorted(measured[by].astype(str).unique()) if by in measured else ["all"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (column, label) in zip(axes.flat, PLOTTED_MEASURES.items(), strict=True):
        for position, group in enumerate(groups):
            subset = measured if by not in measured else measured[measured[by].astype(str) == group]
            values = pd.to_numeric(subset.get(column), errors="coerce").dropna()
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else 0.0
            ax.scatter(position + np.zeros(len(values)) + jitter, values, alpha=0.7, s=25)
            if len(values):
                ax.hlines(values.median(), position - 0.25, position + 0.25, color="black")
        if column == "peak_dbfs":
            ax.axhline(0.0, color="red", linestyle=":", linewidth=1, label="full scale")
        if column == "real_time_factor":
            ax.axhline(1.0, color="red", linestyle=":", linewidth=1, label="real time")
        ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Objective measures per clip (line: median)")
    fig.tight_layout()
    return fig
