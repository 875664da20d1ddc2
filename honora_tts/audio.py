"""Audio in and out: encoding, decoding, resampling, joining synthesized pieces, measurements.

Samples are float32 mono arrays in [-1, 1]. Encoding and decoding go through soundfile
(libsndfile 1.2, whose wheel writes MP3 and OGG Vorbis as well as WAV and FLAC); resampling is
polyphase (``scipy.signal.resample_poly``).
"""

from __future__ import annotations

import io
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from honora_tts.protocol import MP3_SAMPLE_RATES, AudioFormat

#: soundfile (format, subtype) per output format. WAV and FLAC carry 16-bit PCM.
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
#: Sample rates MPEG audio (layer III, MPEG-1/2/2.5) can carry.
MP3_RATES = MP3_SAMPLE_RATES

CLIPPING_LEVEL = 0.999
SILENCE_DBFS = -50.0
SILENCE_FRAME_S = 0.020
_FLOOR_DBFS = -120.0


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    array = np.asarray(samples)
    if array.ndim == 2:
        array = array.mean(axis=1)
    elif array.ndim != 1:
        raise ValueError(f"expected mono samples (1-D) or frames x channels, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected floating-point samples, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def resample(samples: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Polyphase resampling of mono float samples from ``rate_from`` to ``rate_to`` Hz."""
    if rate_from <= 0 or rate_to <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_from} -> {rate_to}")
    samples = _as_mono_float32(samples)
    if rate_from == rate_to or samples.size == 0:
        return samples.copy()
    # Imported here: scipy.signal takes about 3 s to import on a 2-core CPU (a tenth of a
    # worker's cold start, python -m benchmarks p8), and most workers never resample.
    from scipy.signal import resample_poly

    ratio = Fraction(rate_to, rate_from)
    out = resample_poly(samples, ratio.numerator, ratio.denominator)
    return out.astype(np.float32, copy=False)


def encode(
    samples: np.ndarray,
    sample_rate: int,
    fmt: AudioFormat,
    target_rate: int | None = None,
) -> bytes:
    """Encode mono float samples as ``fmt`` (wav/flac: 16-bit PCM, ogg: Vorbis, mp3: layer III),
    resampled to ``target_rate`` first when it differs from ``sample_rate``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}; choose one of {', '.join(FORMATS)}")
    samples = _as_mono_float32(samples)
    rate = target_rate or sample_rate
    if fmt == "mp3" and rate not in MP3_RATES:
        raise ValueError(
            f"mp3 cannot carry {rate} Hz; choose one of {', '.join(map(str, MP3_RATES))}"
        )
    if rate != sample_rate:
        samples = resample(samples, sample_rate, rate)
    samples = np.clip(samples, -1.0, 1.0)
    container, subtype = FORMATS[fmt]
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer, mode="w", samplerate=rate, channels=1, format=container, subtype=subtype
    ) as handle:
        handle.write(samples)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode any format libsndfile reads into float32 mono samples (channels averaged) and the
    sample rate. Raises ValueError when ``data`` is not decodable audio."""
    if not data:
        raise ValueError("no audio data (0 bytes)")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"not decodable audio ({len(data)} bytes): {exc}") from exc
    return _as_mono_float32(samples), int(rate)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Little-endian signed 16-bit PCM of mono float samples (clipped to [-1, 1])."""
    clipped = np.clip(_as_mono_float32(samples), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Float32 samples from little-endian signed 16-bit PCM."""
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0).astype(np.float32)


def duration_s(samples: np.ndarray, sample_rate: int) -> float:
    """Duration in seconds of ``samples`` at ``sample_rate``."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    return float(np.asarray(samples).shape[0]) / float(sample_rate)


def _fade(length: int) -> np.ndarray:
    # Raised-cosine ramp 0 -> 1: no corner at either end, so no click.
    if length <= 0:
        return np.zeros(0, dtype=np.float32)
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def join(
    pieces: list[np.ndarray],
    sample_rate: int,
    *,
    pause_ms: float = 120.0,
    crossfade_ms: float = 10.0,
) -> np.ndarray:
    """Join sentence pieces: each inner edge gets a ``crossfade_ms`` raised-cosine fade (out at a
    piece's end, in at the next one's start) with ``pause_ms`` of silence between, so no join
    steps from a non-zero sample to another. With ``pause_ms=0`` the faded edges overlap
    (a true crossfade) instead."""
    if pause_ms < 0 or crossfade_ms < 0:
        raise ValueError("pause_ms and crossfade_ms must not be negative")
    arrays = [_as_mono_float32(piece) for piece in pieces]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return np.zeros(0, dtype=np.float32)
    if len(arrays) == 1:
        return arrays[0].copy()
    fade_len = round(sample_rate * crossfade_ms / 1000.0)
    pause_len = round(sample_rate * pause_ms / 1000.0)
    out: list[np.ndarray] = []
    for index, piece in enumerate(arrays):
        piece = piece.copy()
        n = min(fade_len, piece.size // 2)
        if n:
            ramp = _fade(n)
            if index > 0:
                piece[:n] *= ramp
            if index < len(arrays) - 1:
                piece[-n:] *= ramp[::-1]
        if index > 0:
            if pause_len:
                out.append(np.zeros(pause_len, dtype=np.float32))
            elif n and out and out[-1].size >= n:
                # No pause: overlap-add the faded tail and head.
                tail = out[-1]
                tail[-n:] += piece[:n]
                piece = piece[n:]
        out.append(piece)
    return np.concatenate(out).astype(np.float32, copy=False)


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else _FLOOR_DBFS


def measure(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Level facts of mono samples: ``duration_s``, ``peak_dbfs``, ``rms_dbfs`` (full-scale sine
    peak = 0 dBFS, its RMS = -3.01 dBFS; silence = -120), ``clipping_ratio`` (share of samples
    with |x| >= 0.999), ``silence_ratio`` (share of 20 ms frames whose RMS is below -50 dBFS)
    and ``dc_offset`` (mean)."""
    x = _as_mono_float32(samples).astype(np.float64)
    facts: dict[str, float] = {"duration_s": duration_s(x, sample_rate)}
    if x.size == 0:
        facts.update(peak_dbfs=_FLOOR_DBFS, rms_dbfs=_FLOOR_DBFS, clipping_ratio=0.0,
                     silence_ratio=1.0, dc_offset=0.0)
        return facts
    frame = max(1, round(sample_rate * SILENCE_FRAME_S))
    frames = [x[i:i + frame] for i in range(0, x.size, frame)]
    frame_rms = np.array([math.sqrt(float(np.mean(f * f))) for f in frames])
    silent = float(np.mean(frame_rms < 10.0 ** (SILENCE_DBFS / 20.0)))
    facts.update(
        peak_dbfs=_dbfs(float(np.max(np.abs(x)))),
        rms_dbfs=_dbfs(math.sqrt(float(np.mean(x * x)))),
        clipping_ratio=float(np.mean(np.abs(x) >= CLIPPING_LEVEL)),
        silence_ratio=silent,
        dc_offset=float(np.mean(x)),
    )
    return facts


def probe_file(path: Path) -> tuple[float, int]:
    """``(duration_s, sample_rate)`` of an audio file; ValueError when it is not audio."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a readable audio file: {exc}") from exc
    if info.samplerate <= 0 or info.frames < 0:
        raise ValueError(f"{path} reports no usable audio stream")
    return float(info.frames) / float(info.samplerate), int(info.samplerate)
