"""Audio in and out: the output formats, encoding (whole files and streams), decoding,
resampling, joining synthesized pieces, measurements.

Samples are float32 mono arrays in [-1, 1]. Whole files go through soundfile (libsndfile 1.2,
whose wheel writes MP3, Ogg Vorbis and Ogg Opus as well as WAV and FLAC), or through FFmpeg's
encoders (PyAV) where libsndfile has none (AAC); streams (:class:`StreamEncoder`) go through
FFmpeg's encoders into containers that need no seeking back, or are raw PCM (``pcm``; ``wav``: a
header of unknown length, then PCM, as OpenAI's speech API streams it). Decoding goes through
soundfile; resampling is polyphase (``scipy.signal.resample_poly``).

:data:`OUTPUT_FORMATS` is the one table of output formats: the protocol's choices, the
encoders, the client's file suffixes, the delivery's and the HTTP mode's content types and the
listening test's players all read it, so a new format is one row here (and its name in
:data:`AudioFormat`). numpy, soundfile and scipy are imported where they are used: the light
client reads the table through the protocol without them.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

#: The output formats' names (the protocol's ``output.format``): honora's (``ogg`` is Vorbis)
#: and OpenAI's speech formats (``opus`` in Ogg, ``aac`` in ADTS, ``pcm``: raw 16-bit
#: little-endian mono); one per row of :data:`OUTPUT_FORMATS`.
AudioFormat = Literal["wav", "flac", "ogg", "mp3", "opus", "aac", "pcm"]
#: The rates an MPEG-1/2/2.5 layer III stream can carry (FFmpeg's AAC encoder takes the same).
MP3_SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
#: The rates an Opus encoder takes.
OPUS_SAMPLE_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)


@dataclass(frozen=True)
class OutputFormat:
    """One output format: the file ``suffix``, the ``media_type`` served with it (OpenAI's
    speech API's), how it is written (``soundfile``: libsndfile's (format, subtype) for whole
    files; ``ffmpeg``: FFmpeg's (muxer, encoder) for streams, and for whole files libsndfile
    cannot write; neither: raw 16-bit PCM, ``wav`` adds its header), and the ``sample_rates``
    it can carry (None: any rate the protocol allows)."""

    name: AudioFormat
    suffix: str
    media_type: str
    soundfile: tuple[str, str] | None = None
    ffmpeg: tuple[str, str] | None = None
    sample_rates: tuple[int, ...] | None = None

    @property
    def streams(self) -> bool:
        """Whether the format can be sent while it is being synthesized."""
        return self.ffmpeg is not None or self.soundfile is None or self.soundfile[0] == "WAV"

    def rate_problem(self, rate: int) -> str | None:
        """Why this format cannot carry ``rate`` Hz (None when it can)."""
        if self.sample_rates is None or rate in self.sample_rates:
            return None
        return (f"{self.name} cannot carry {rate} Hz; choose one of "
                f"{', '.join(map(str, self.sample_rates))}")


#: Every output format, one row each. WAV and FLAC carry 16-bit PCM.
OUTPUT_FORMATS: dict[AudioFormat, OutputFormat] = {row.name: row for row in (
    OutputFormat("wav", ".wav", "audio/wav", soundfile=("WAV", "PCM_16")),
    OutputFormat("flac", ".flac", "audio/flac", soundfile=("FLAC", "PCM_16"),
                 ffmpeg=("flac", "flac")),
    OutputFormat("ogg", ".ogg", "audio/ogg", soundfile=("OGG", "VORBIS")),
    OutputFormat("mp3", ".mp3", "audio/mpeg", soundfile=("MP3", "MPEG_LAYER_III"),
                 ffmpeg=("mp3", "libmp3lame"), sample_rates=MP3_SAMPLE_RATES),
    OutputFormat("opus", ".opus", "audio/opus", soundfile=("OGG", "OPUS"),
                 ffmpeg=("ogg", "libopus"), sample_rates=OPUS_SAMPLE_RATES),
    OutputFormat("aac", ".aac", "audio/aac", ffmpeg=("adts", "aac"),
                 sample_rates=MP3_SAMPLE_RATES),
    OutputFormat("pcm", ".pcm", "audio/pcm"),
)}
#: An Ogg page every 20 ms of audio, so that a streamed Opus chunk leaves at once (FFmpeg's
#: default holds a page for a second).
_OGG_PAGE_US = "20000"
_PYAV_EXTRA = "pip install 'honora-tts[worker]' (PyAV)"


def format_for_suffix(suffix: str) -> OutputFormat | None:
    """The output format whose files end in ``suffix`` (``.flac``, any case), or None."""
    suffix = suffix.lower()
    return next((row for row in OUTPUT_FORMATS.values() if row.suffix == suffix), None)


def output_format(fmt: str, rate: int) -> OutputFormat:
    """The table's row for ``fmt``; ValueError for an unknown format or a rate it cannot
    carry."""
    row = OUTPUT_FORMATS.get(fmt)  # type: ignore[call-overload]
    if row is None:
        raise ValueError(f"unknown audio format {fmt!r}; choose one of "
                         f"{', '.join(OUTPUT_FORMATS)}")
    problem = row.rate_problem(rate)
    if problem:
        raise ValueError(problem)
    return row


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
    """Encode mono float samples as ``fmt`` (see :data:`OUTPUT_FORMATS`: wav/flac 16-bit PCM,
    ogg Vorbis, mp3 layer III, opus in Ogg, aac in ADTS, pcm raw 16-bit), resampled to
    ``target_rate`` first when it differs from ``sample_rate``."""
    import numpy as np
    import soundfile as sf

    samples = _as_mono_float32(samples)
    rate = target_rate or sample_rate
    row = output_format(fmt, rate)
    if rate != sample_rate:
        samples = resample(samples, sample_rate, rate)
    samples = np.clip(samples, -1.0, 1.0)
    if row.soundfile is None:
        encoder = StreamEncoder(fmt, rate)
        return encoder.encode(samples) + encoder.finish()
    container, subtype = row.soundfile
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer, mode="w", samplerate=rate, channels=1, format=container, subtype=subtype
    ) as handle:
        handle.write(samples)
    return buffer.getvalue()


def wav_stream_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "unknown" (0xFFFFFFFF), for a stream whose
    length is not known when it starts; libsndfile and FFmpeg read such files to their end."""
    unknown = 0xFFFFFFFF
    fmt_chunk = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + struct.pack("<I", 16)
            + fmt_chunk + b"data" + struct.pack("<I", unknown))


class _Sink(io.RawIOBase):
    """A write-only, unseekable file for FFmpeg's muxers: what they write is taken as it comes,
    so nothing can be rewritten after it has been sent."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class StreamEncoder:
    """``fmt`` written as its samples arrive: :meth:`encode` takes mono float chunks at
    ``sample_rate`` and returns the bytes ready so far (possibly none), :meth:`finish` the rest.
    The bytes joined are one valid file (or raw PCM). ValueError for a format that cannot
    stream (Ogg Vorbis: libsndfile holds its pages to the end) or a rate it cannot carry."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        spec = output_format(fmt, sample_rate)
        if not spec.streams:
            streaming = ", ".join(name for name, s in OUTPUT_FORMATS.items() if s.streams)
            raise ValueError(f"{fmt} cannot be streamed; stream one of {streaming}")
        self.format = fmt
        self.sample_rate = sample_rate
        self.media_type = spec.media_type
        self._head = wav_stream_header(sample_rate) if fmt == "wav" else b""
        self._container: Any = None
        self._finished = False
        if spec.ffmpeg is not None:
            self._open_ffmpeg(*spec.ffmpeg)

    def _open_ffmpeg(self, muxer: str, codec: str) -> None:
        try:
            import av
        except ImportError as exc:
            raise ValueError(f"{self.format} needs FFmpeg's encoders: {_PYAV_EXTRA}") from exc
        self._sink = _Sink()
        options = {"page_duration": _OGG_PAGE_US} if muxer == "ogg" else {}
        self._container = av.open(self._sink, mode="w", format=muxer, options=options)
        self._stream = self._container.add_stream(codec, rate=self.sample_rate, layout="mono")
        self._resampler = av.AudioResampler(
            format=self._stream.codec_context.format.name, layout="mono", rate=self.sample_rate
        )
        self._frame_class = av.AudioFrame
        self._pts = 0

    def encode(self, samples: np.ndarray) -> bytes:
        """The encoded bytes that ``samples`` completed (the first call: the header too)."""
        if self._finished:
            raise ValueError("this stream is finished")
        import numpy as np

        pcm = np.clip(_as_mono_float32(samples), -1.0, 1.0)
        head, self._head = self._head, b""
        if self._container is None:
            return head + to_pcm16(pcm)
        if pcm.size:
            frame = self._frame_class.from_ndarray(pcm.reshape(1, -1), format="flt",
                                                   layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._pts
            self._pts += pcm.size
            self._mux(self._resampler.resample(frame))
        return head + self._sink.take()

    def finish(self) -> bytes:
        """The rest: the encoder's last frames and the container's trailer."""
        if self._finished:
            return b""
        self._finished = True
        head, self._head = self._head, b""
        if self._container is None:
            return head
        self._mux(self._resampler.resample(None))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return head + self._sink.take()

    def close(self) -> None:
        """Drop an unfinished stream (the client went away)."""
        if not self._finished and self._container is not None:
            self._finished = True
            self._container.close()

    def _mux(self, frames: list[Any]) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)


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
