"""Is a downloaded file a usable reference voice? Decoded with soundfile (libsndfile).

Checks, in order: the header decodes; a WAV holds as many data bytes as its header declares
(libsndfile silently shortens truncated WAVs, so this is checked on the RIFF chunks); the
declared duration is within bounds (a header that claims hours is refused before anything is
decoded); the sample rate is at least :data:`MIN_SAMPLE_RATE`; every frame decodes
and the decoded count matches the header; the decoded duration is long enough; the peak is
above :data:`SILENCE_DBFS`. Any failure is ``voice_not_audio`` with a message that says which.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from honora_tts.protocol import ErrorCode, WorkerError

SILENCE_DBFS = -60.0
MIN_SAMPLE_RATE = 8_000
_BLOCK_FRAMES = 65_536
#: Decoders may estimate the frame count of compressed formats (MP3) a little high.
_FRAME_COUNT_TOLERANCE = 0.01
_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class AudioFacts:
    """What validation learned about a voice file."""

    format: str  # libsndfile's name: WAV, FLAC, OGG, MP3, ...
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    peak_dbfs: float


def check_voice_audio(
    data: bytes, *, source: str, min_duration_s: float, max_duration_s: float
) -> AudioFacts:
    """Validate ``data`` as a reference voice; ``source`` names it in error messages."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise _not_audio(f"{source} is not a recognised audio file ({_reason(exc)})") from None
    if info.format == "WAV":
        _check_wav_complete(data, source)
    if info.frames <= 0 or info.samplerate <= 0:
        raise _not_audio(f"{source} holds no audio frames")
    declared_s = info.frames / info.samplerate
    if declared_s > max_duration_s:
        raise _not_audio(
            f"{source} is too long: {declared_s:.0f} s of audio; the limit is "
            f"{max_duration_s:.0f} s (a few seconds to a minute of speech is ideal)"
        )
    if info.samplerate < MIN_SAMPLE_RATE:
        raise _not_audio(
            f"{source} has a sample rate of {info.samplerate} Hz; at least "
            f"{MIN_SAMPLE_RATE} Hz is needed"
        )

    frames = 0
    peak = 0.0
    try:
        with sf.SoundFile(io.BytesIO(data)) as audio:
            for block in audio.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                frames += len(block)
                if len(block):
                    peak = max(peak, float(np.max(np.abs(block))))
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise _not_audio(f"{source} is truncated or corrupt ({_reason(exc)})") from None
    if frames < info.frames * (1 - _FRAME_COUNT_TOLERANCE):
        raise _not_audio(
            f"{source} is truncated: {frames} of the {info.frames} frames its header "
            "declares could be decoded"
        )
    duration_s = frames / info.samplerate
    if duration_s < min_duration_s:
        raise _not_audio(
            f"{source} is too short: {duration_s:.2f} s of audio; at least "
            f"{min_duration_s:g} s is needed"
        )
    peak_dbfs = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_dbfs < SILENCE_DBFS:
        shown = "-inf" if math.isinf(peak_dbfs) else f"{peak_dbfs:.0f}"
        raise _not_audio(
            f"{source} is silent: its peak is {shown} dBFS (below {SILENCE_DBFS:.0f} dBFS)"
        )
    return AudioFacts(
        format=info.format,
        subtype=info.subtype,
        sample_rate=info.samplerate,
        channels=info.channels,
        frames=frames,
        duration_s=duration_s,
        peak_dbfs=peak_dbfs,
    )


def _check_wav_complete(data: bytes, source: str) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk is shorter than its header says."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return  # RF64, W64 and friends: left to the frame-count check
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset:offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"data":
            available = len(data) - body
            if size not in _WAV_UNKNOWN_SIZES and size > available:
                raise _not_audio(
                    f"{source} is truncated: its WAV header declares {size} bytes of audio "
                    f"but the file holds {available}"
                )
            return
        offset = body + size + (size & 1)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    # libsndfile names the BytesIO object ("Error opening <_io.BytesIO ...>: ..."); keep the why.
    return text.rsplit(": ", 1)[-1] if ": " in text else text or type(exc).__name__


def _not_audio(message: str) -> WorkerError:
    return WorkerError(ErrorCode.VOICE_NOT_AUDIO, message, field="voice_url")
