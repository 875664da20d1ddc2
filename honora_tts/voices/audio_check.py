"""Is a downloaded file a usable reference voice? And the one file the model reads in its place.
The same bounded reading serves every audio file QA reads (:func:`read_audio_file`).

A voice file is untrusted: its header can lie about its length, and a tiny FLAC can hold
minutes of audio at 655 350 Hz on eight channels. So nothing trusts the header for how much is
decoded, and the model never decodes the original:

1. The header is read with soundfile (libsndfile), nothing decoded yet: it must parse; a WAV
   must hold as many data bytes as its header declares (libsndfile silently shortens truncated
   WAVs, so this is checked on the RIFF chunks); the sample rate must lie between
   :data:`MIN_SAMPLE_RATE` and :data:`MAX_SAMPLE_RATE`, the channels be at most
   :data:`MAX_CHANNELS`, and the declared duration at most ``max_duration_s``.
2. The audio is decoded ONCE, by FFmpeg (the decoder the model itself would use), streamed as
   mono float32 at :data:`REFERENCE_RATE` (the rate XTTS loads a reference at), with FFmpeg held
   to the demuxer libsndfile recognised and to local files. Decoding stops at a cap on samples
   actually decoded, not declared: just past the header's duration (plus a tolerance), which
   the previous step bounded by ``max_duration_s``. A file holding more audio than its header
   declares, or less, is refused.
3. The decoded duration must be long enough and the peak above :data:`SILENCE_DBFS`.
4. The first :data:`REFERENCE_MAX_S` seconds (the most a request may ask the latents to use,
   ``max_ref_length``) become :attr:`CheckedVoice.reference_wav`: a mono float WAV at the
   model's rate, which the voice cache stores and hands to the model instead of the original.

Memory stays bounded whatever the file: FFmpeg decodes frame by frame in its own process, this
process holds one block plus the kept reference (at most about 5 MB). Every failure is
``voice_not_audio`` with a message that says which check failed.

:func:`read_audio_file` applies steps 1 and 2 to a file on disk that QA measures (a clip the
speech checks or the release gate judge): only a regular file, at most
:data:`QA_MAX_FILE_BYTES` and :data:`QA_MAX_DURATION_S`, decoded whole at its own rate (at most
:data:`QA_MAX_RATE`); failures are :class:`UnreadableAudio`.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from honora_tts.protocol import MAX_REF_LENGTH_S, ErrorCode, WorkerError

SILENCE_DBFS = -60.0
MIN_SAMPLE_RATE = 8_000
#: Studio recorders stop at 192 kHz; more only multiplies decoding work.
MAX_SAMPLE_RATE = 192_000
#: A reference voice is one speaker: mono or stereo.
MAX_CHANNELS = 2
#: XTTS ``get_conditioning_latents`` loads its reference at 22 050 Hz (``load_sr``).
REFERENCE_RATE = 22_050
REFERENCE_MAX_S = float(MAX_REF_LENGTH_S)
#: Decoded length may differ from the header's by this fraction plus :data:`_LENGTH_SLACK_S`
#: (MP3 headers are estimates; resampling rounds).
_FRAME_COUNT_TOLERANCE = 0.01
_LENGTH_SLACK_S = 0.05
_DECODE_TIMEOUT_S = 120.0
_BLOCK_BYTES = 4 * 65_536
_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
#: libsndfile's format name -> the FFmpeg demuxer that must read it (never FFmpeg's own guess,
#: which could pick a playlist or another container than the one checked).
_DEMUXERS = {
    "WAV": "wav", "WAVEX": "wav", "RF64": "wav", "W64": "w64", "FLAC": "flac", "OGG": "ogg",
    "MP3": "mp3", "AIFF": "aiff", "AU": "au", "CAF": "caf",
}  # fmt: skip
#: What QA reads (:func:`read_audio_file`): a clip file of at most this many bytes and seconds,
#: decoded at its own rate up to :data:`QA_MAX_RATE`.
QA_MAX_FILE_BYTES = 256 * 2**20
QA_MAX_DURATION_S = 900.0
QA_MAX_RATE = 48_000
_FFMPEG_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")


@dataclass(frozen=True)
class AudioFacts:
    """What validation learned about a voice file."""

    format: str  # libsndfile's name: WAV, FLAC, OGG, MP3, ...
    subtype: str
    sample_rate: int
    channels: int
    duration_s: float  # decoded, not declared
    peak_dbfs: float


@dataclass(frozen=True)
class CheckedVoice:
    """A voice that passed every check, and the reference file the model reads in its place:
    mono float32 WAV at :data:`REFERENCE_RATE`, at most :data:`REFERENCE_MAX_S` seconds."""

    facts: AudioFacts
    reference_wav: bytes


def check_voice_audio(
    data: bytes,
    *,
    source: str,
    min_duration_s: float,
    max_duration_s: float,
    ffmpeg: str = "ffmpeg",
) -> CheckedVoice:
    """Validate ``data`` as a reference voice and prepare its reference file (see the module
    docstring); ``source`` names it in error messages, ``ffmpeg`` is the decoder's path."""
    header = _checked_header(data, source, max_duration_s, _not_audio)
    decoded = _decode_mono(
        data, header.demuxer, source=source, ffmpeg=ffmpeg, channels=header.info.channels,
        rate=REFERENCE_RATE, cap_frames=math.ceil(header.most_s * REFERENCE_RATE),
        keep_frames=int(REFERENCE_MAX_S * REFERENCE_RATE), refuse=_not_audio,
    )  # fmt: skip
    duration_s = _checked_length(decoded, header, REFERENCE_RATE, source, _not_audio)
    if duration_s < min_duration_s:
        raise _not_audio(
            f"{source} is too short: {duration_s:.2f} s of audio; at least "
            f"{min_duration_s:g} s is needed"
        )
    if duration_s > max_duration_s:
        raise _not_audio(
            f"{source} is too long: {duration_s:.0f} s of audio; the limit is "
            f"{max_duration_s:.0f} s (a few seconds to a minute of speech is ideal)"
        )
    peak_dbfs = 20 * math.log10(decoded.peak) if decoded.peak > 0 else -math.inf
    if peak_dbfs < SILENCE_DBFS:
        shown = "-inf" if math.isinf(peak_dbfs) else f"{peak_dbfs:.0f}"
        raise _not_audio(
            f"{source} is silent: its peak is {shown} dBFS (below {SILENCE_DBFS:.0f} dBFS)"
        )
    facts = AudioFacts(
        format=header.info.format,
        subtype=header.info.subtype,
        sample_rate=header.info.samplerate,
        channels=header.info.channels,
        duration_s=duration_s,
        peak_dbfs=peak_dbfs,
    )
    return CheckedVoice(facts=facts, reference_wav=_float_wav(decoded.kept, REFERENCE_RATE))


class UnreadableAudio(ValueError):
    """An audio file QA was asked to read is refused: not a regular file, too large, a header
    out of bounds, or audio other than its header declares. The message names the file and the
    limit; pass a real clip (or raise the limit with the function's arguments)."""


def read_audio_file(
    path: str | Path,
    *,
    max_bytes: int = QA_MAX_FILE_BYTES,
    max_duration_s: float = QA_MAX_DURATION_S,
    max_rate: int = QA_MAX_RATE,
    ffmpeg: str = "ffmpeg",
) -> tuple[np.ndarray, int]:
    """An audio file QA measures (``check-audio``, the gate, the speaks check), read with the
    same bounds as a voice: a regular file (not a device, FIFO or a link to one) of at most
    ``max_bytes``, a header within this module's rate and channel bounds declaring at most
    ``max_duration_s``, decoded once by FFmpeg with a cap on samples actually decoded. Returns
    mono float32 samples at the file's rate (at most ``max_rate``; higher rates are resampled)
    and that rate. A file that declares no frames reads as empty audio. Raises
    :class:`UnreadableAudio` naming the file and the check that failed."""
    source = str(path)
    data = _read_regular_file(Path(path), max_bytes, source)
    header = _checked_header(data, source, max_duration_s, UnreadableAudio, allow_empty=True)
    rate = min(header.info.samplerate, max_rate)
    if header.info.frames <= 0:
        return np.zeros(0, dtype=np.float32), rate
    cap = math.ceil(header.most_s * rate)
    decoded = _decode_mono(
        data, header.demuxer, source=source, ffmpeg=ffmpeg, channels=header.info.channels,
        rate=rate, cap_frames=cap, keep_frames=cap + 1, refuse=UnreadableAudio,
    )  # fmt: skip
    _checked_length(decoded, header, rate, source, UnreadableAudio)
    return decoded.kept, rate


def _read_regular_file(path: Path, max_bytes: int, source: str) -> bytes:
    """The bytes of ``path``, refused unless it is a regular file of at most ``max_bytes``
    (checked on the opened file, so a path swapped for a device after a check is caught)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UnreadableAudio(f"cannot open {source}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        facts = os.fstat(handle.fileno())
        if not stat.S_ISREG(facts.st_mode):
            raise UnreadableAudio(
                f"{source} is not a regular file (a device, FIFO, socket or a link to one); "
                "pass an audio file"
            )
        if facts.st_size > max_bytes:
            raise UnreadableAudio(
                f"{source} is {facts.st_size / 2**20:.1f} MiB; at most "
                f"{max_bytes / 2**20:.0f} MiB of audio file is read"
            )
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableAudio(f"{source} grew past {max_bytes / 2**20:.0f} MiB while read")
    return data


@dataclass(frozen=True)
class _Header:
    """A header that passed the bounds: libsndfile's facts, the demuxer FFmpeg must use, the
    declared length and the most audio a decode may hold."""

    info: sf._SoundFileInfo
    demuxer: str
    declared_s: float

    @property
    def most_s(self) -> float:
        return self.declared_s * (1 + _FRAME_COUNT_TOLERANCE) + _LENGTH_SLACK_S


def _checked_header(
    data: bytes,
    source: str,
    max_duration_s: float,
    refuse: Callable[[str], Exception],
    *,
    allow_empty: bool = False,
) -> _Header:
    """Step 1 of the module docstring: the header parses and lies within the bounds."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise refuse(f"{source} is not a recognised audio file ({_reason(exc)})") from None
    demuxer = _DEMUXERS.get(info.format)
    if demuxer is None:
        raise refuse(
            f"{source} is {info.format} audio, which is not accepted; send WAV, FLAC, OGG or MP3"
        )
    if info.format in ("WAV", "WAVEX"):
        _check_wav_complete(data, source, refuse)
    if info.samplerate <= 0 or (info.frames <= 0 and not allow_empty):
        raise refuse(f"{source} holds no audio frames")
    if info.samplerate < MIN_SAMPLE_RATE:
        raise refuse(
            f"{source} has a sample rate of {info.samplerate} Hz; at least "
            f"{MIN_SAMPLE_RATE} Hz is needed"
        )
    if info.samplerate > MAX_SAMPLE_RATE:
        raise refuse(
            f"{source} has a sample rate of {info.samplerate} Hz; at most {MAX_SAMPLE_RATE} Hz "
            "is accepted (resample it, 22 050 to 48 000 Hz is plenty for a voice)"
        )
    if info.channels > MAX_CHANNELS:
        raise refuse(
            f"{source} has {info.channels} channels; at most {MAX_CHANNELS} are accepted "
            "(mix it down to mono)"
        )
    declared_s = max(info.frames, 0) / info.samplerate
    if declared_s > max_duration_s:
        raise refuse(
            f"{source} is too long: {declared_s:.0f} s of audio; the limit is "
            f"{max_duration_s:.0f} s (a few seconds to a minute of speech is ideal)"
        )
    return _Header(info, demuxer, declared_s)


def _checked_length(
    decoded: _Decoded, header: _Header, rate: int, source: str,
    refuse: Callable[[str], Exception],
) -> float:
    """Step 2's comparison: the decoded length against the declared one, in seconds."""
    duration_s = decoded.frames / rate
    if duration_s > header.most_s:
        raise refuse(
            f"{source} holds more audio than its header declares ({header.declared_s:.2f} s): "
            "a malformed or tampered file; export it again"
        )
    if duration_s < header.declared_s * (1 - _FRAME_COUNT_TOLERANCE) - _LENGTH_SLACK_S:
        detail = f"; {decoded.error}" if decoded.error else ""
        raise refuse(
            f"{source} is truncated or corrupt: {duration_s:.2f} s of the "
            f"{header.declared_s:.2f} s its header declares could be decoded{detail}"
        )
    return duration_s


def _float_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono 32-bit float WAV. Written here because libsndfile adds a PEAK chunk holding the
    time of writing, and the same voice must always give the same bytes."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT
    fact = struct.pack("<I", len(samples))
    chunks = (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<I", len(fact)) + fact
        + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@dataclass(frozen=True)
class _Decoded:
    kept: np.ndarray  # the first keep_frames samples, mono float32
    frames: int  # samples decoded in all (at most cap_frames + one block)
    peak: float
    error: str  # FFmpeg's last complaint, if any


def _decode_mono(
    data: bytes,
    demuxer: str,
    *,
    source: str,
    ffmpeg: str,
    channels: int,
    rate: int,
    cap_frames: int,
    keep_frames: int,
    refuse: Callable[[str], Exception],
) -> _Decoded:
    """Decode ``data`` with FFmpeg to mono float32 at ``rate``, reading its output
    block by block and stopping once more than ``cap_frames`` samples came out. Channels are
    averaged, as XTTS's ``load_audio`` does (FFmpeg's own downmix would weigh them 0.707)."""
    mix = "+".join(f"{1 / channels:.10f}*c{i}" for i in range(channels))
    with tempfile.TemporaryDirectory(prefix="honora-voice-") as tmp:
        path = Path(tmp) / "voice"
        path.write_bytes(data)
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
            "-protocol_whitelist", "file", "-f", demuxer, "-i", str(path),
            "-map", "0:a:0", "-vn", "-sn", "-dn", "-af", f"pan=mono|c0={mix}",
            "-ac", "1", "-ar", str(rate),
            "-t", f"{(cap_frames + 1) / rate:.6f}",
            "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1",
        ]  # fmt: skip
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
                )
            except FileNotFoundError:
                raise WorkerError(
                    ErrorCode.INTERNAL_ERROR,
                    f"{ffmpeg!r} is not installed on this worker; it decodes reference voices "
                    "(install the ffmpeg package in the image)",
                ) from None
            timed_out = threading.Event()

            def stop() -> None:
                timed_out.set()
                process.kill()

            timer = threading.Timer(_DECODE_TIMEOUT_S, stop)
            timer.start()
            kept: list[np.ndarray] = []
            kept_frames = frames = 0
            peak = 0.0
            assert process.stdout is not None
            try:
                while frames <= cap_frames:
                    chunk = process.stdout.read(_BLOCK_BYTES)
                    if not chunk:
                        break
                    block = np.frombuffer(chunk[: len(chunk) - len(chunk) % 4], dtype="<f4")
                    frames += len(block)
                    if len(block):
                        peak = max(peak, float(np.max(np.abs(block))))
                    if kept_frames < keep_frames:
                        take = block[: keep_frames - kept_frames]
                        kept.append(take.copy())
                        kept_frames += len(take)
            finally:
                timer.cancel()
                if process.poll() is None:
                    process.kill()
                process.stdout.close()
                process.wait()
            errors.seek(0)
            complaint = _last_complaint(errors.read(4096).decode("utf-8", "replace"), path)
    if timed_out.is_set():
        raise refuse(f"{source} took longer than {_DECODE_TIMEOUT_S:.0f} s to decode")
    if frames == 0 and complaint:
        raise refuse(f"{source} could not be decoded ({complaint})")
    samples = np.concatenate(kept) if kept else np.zeros(0, dtype="float32")
    return _Decoded(kept=samples, frames=frames, peak=peak, error=complaint)


def _last_complaint(text: str, path: Path) -> str:
    lines = [line.strip() for line in text.replace(str(path), "the file").splitlines()]
    lines = [_FFMPEG_PREFIX.sub("", line) for line in lines if line]
    return lines[-1][:200] if lines else ""


def _check_wav_complete(data: bytes, source: str, refuse: Callable[[str], Exception]) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk is shorter than its header says."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return  # RF64, W64 and friends: left to the decoded-length check
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset:offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"data":
            available = len(data) - body
            if size not in _WAV_UNKNOWN_SIZES and size > available:
                raise refuse(
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
