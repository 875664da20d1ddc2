"""Audio in and out: the output formats, encoding, decoding, resampling, joining synthesized
pieces, measurements.

Samples are float32 mono arrays in [-1, 1]. Encoding and decoding go through soundfile
(libsndfile 1.2, whose wheel writes MP3 and OGG Vorbis as well as WAV and FLAC); resampling is
polyphase (``scipy.signal.resample_poly``).

:data:`OUTPUT_FORMATS` is the one table of output formats: the protocol's choices, the
encoder, the client's file suffixes, the delivery's content types and the listening test's
players all read it, so a new format is one row here (and its name in :data:`AudioFormat`).
numpy, soundfile and scipy are imported where they are used: the light client reads the table
through the protocol without them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

#: The output formats' names (the protocol's ``output.format``); one per row of
#: :data:`OUTPUT_FORMATS`.
AudioFormat = Literal["wav", "flac", "ogg", "mp3"]
#: The rates an MPEG-1/2/2.5 layer III stream can carry.
MP3_SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)


@dataclass(frozen=True)
class OutputFormat:
    """One output format: what soundfile writes (``container``, ``subtype``), the file
    ``suffix``, the ``media_type`` served with it, and the ``sample_rates`` it can carry
    (None: any rate the protocol allows)."""

    name: AudioFormat
    container: str
    subtype: str
    suffix: str
    media_type: str
    sample_rates: tuple[int, ...] | None = None

    def rate_problem(self, rate: int) -> str | None:
        """Why this format cannot carry ``rate`` Hz (None when it can)."""
        if self.sample_rates is None or rate in self.sample_rates:
            return None
        return (f"{self.name} cannot carry {rate} Hz; choose one of "
                f"{', '.join(map(str, self.sample_rates))}")


#: Every output format, one row each. WAV and FLAC carry 16-bit PCM.
OUTPUT_FORMATS: dict[AudioFormat, OutputFormat] = {row.name: row for row in (
    OutputFormat("wav", "WAV", "PCM_16", ".wav", "audio/wav"),
    OutputFormat("flac", "FLAC", "PCM_16", ".flac", "audio/flac"),
    OutputFormat("ogg", "OGG", "VORBIS", ".ogg", "audio/ogg"),
    OutputFormat("mp3", "MP3", "MPEG_LAYER_III", ".mp3", "audio/mpeg", MP3_SAMPLE_RATES),
)}


def format_for_suffix(suffix: str) -> OutputFormat | None:
    """The output format whose files end in ``suffix`` (``.flac``, any case), or None."""
    suffix = suffix.lower()
    return next((row for row in OUTPUT_FORMATS.values() if row.suffix == suffix), None)


CLIPPING_LEVEL = 0.999
SILENCE_DBFS = -50.0
SILENCE_FRAME_S = 0.020
_FLOOR_DBFS = -120.0


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    import numpy as np

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
    return out.astype("float32", copy=False)


def encode(
    samples: np.ndarray,
    sample_rate: int,
    fmt: AudioFormat,
    target_rate: int | None = None,
) -> bytes:
    """Encode mono float samples as ``fmt`` (wav/flac: 16-bit PCM, ogg: Vorbis, mp3: layer III),
    resampled to ``target_rate`` first when it differs from ``sample_rate``."""
    import numpy as np
    import soundfile as sf

    row = OUTPUT_FORMATS.get(fmt)
    if row is None:
        raise ValueError(f"unknown audio format {fmt!r}; choose one of "
                         f"{', '.join(OUTPUT_FORMATS)}")
    samples = _as_mono_float32(samples)
    rate = target_rate or sample_rate
    problem = row.rate_problem(rate)
    if problem:
        raise ValueError(problem)
    if rate != sample_rate:
        samples = resample(samples, sample_rate, rate)
    samples = np.clip(samples, -1.0, 1.0)
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer, mode="w", samplerate=rate, channels=1, format=row.container, subtype=row.subtype
    ) as handle:
        handle.write(samples)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode any format libsndfile reads into float32 mono samples (channels averaged) and the
    sample rate. Raises ValueError when ``data`` is not decodable audio."""
    import soundfile as sf

    if not data:
        raise ValueError("no audio data (0 bytes)")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"not decodable audio ({len(data)} bytes): {exc}") from exc
    return _as_mono_float32(samples), int(rate)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Little-endian signed 16-bit PCM of mono float samples (clipped to [-1, 1])."""
    import numpy as np

    clipped = np.clip(_as_mono_float32(samples), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Float32 samples from little-endian signed 16-bit PCM."""
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    import numpy as np

    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0).astype(np.float32)


def duration_s(samples: np.ndarray, sample_rate: int) -> float:
    """Duration in seconds of ``samples`` at ``sample_rate``."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    import numpy as np

    return float(np.asarray(samples).shape[0]) / float(sample_rate)


def _fade(length: int) -> np.ndarray:
    # Raised-cosine ramp 0 -> 1: no corner at either end, so no click.
    import numpy as np

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
    import numpy as np

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
    import numpy as np

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
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a readable audio file: {exc}") from exc
    if info.samplerate <= 0 or info.frames < 0:
        raise ValueError(f"{path} reports no usable audio stream")
    return float(info.frames) / float(info.samplerate), int(info.samplerate)
