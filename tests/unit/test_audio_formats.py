"""The format table: every output format written whole and as a stream, read back with the
decoders players use (libsndfile, FFmpeg through PyAV), and the rates each refuses."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile as sf

from honora_tts import audio
from honora_tts.protocol import OutputSpec

RATE = 24_000
TONE = (0.4 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)).astype(np.float32)
STREAMED = [name for name, spec in audio.OUTPUT_FORMATS.items() if spec.streams]


def _ffmpeg_samples(data: bytes) -> tuple[int, int]:
    """(samples, rate) FFmpeg decodes from a file."""
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    return sum(frame.samples for frame in frames), frames[0].sample_rate


def _seconds(fmt: str, data: bytes) -> float:
    if fmt == "pcm":
        return len(data) / 2 / RATE
    samples, rate = _ffmpeg_samples(data)
    return samples / rate


@pytest.mark.parametrize("fmt", list(audio.OUTPUT_FORMATS))
def test_every_format_writes_a_whole_file_that_decodes_to_its_length(fmt: str) -> None:
    data = audio.encode(TONE, RATE, fmt)  # type: ignore[arg-type]
    # Encoder delay and frame padding (AAC: 1024 priming samples and a partial frame) add at
    # most 100 ms.
    assert 1.0 <= _seconds(fmt, data) < 1.1
    if audio.OUTPUT_FORMATS[fmt].soundfile is not None:
        decoded, rate = audio.decode(data)
        assert rate == RATE and abs(decoded.size / rate - 1.0) < 0.06


@pytest.mark.parametrize("fmt", STREAMED)
def test_a_stream_sends_bytes_as_chunks_arrive_and_joins_into_one_valid_file(fmt: str) -> None:
    encoder = audio.StreamEncoder(fmt, RATE)
    chunks = [TONE[i:i + 2400] for i in range(0, TONE.size, 2400)]  # 100 ms each
    parts = [encoder.encode(chunk) for chunk in chunks] + [encoder.finish()]
    assert parts[0], "the first chunk must leave at once (a player starts on it)"
    # Bytes leave while the stream runs, not all at its end.
    assert sum(map(len, parts[:5])) > 0.25 * sum(map(len, parts))
    data = b"".join(parts)
    assert 1.0 <= _seconds(fmt, data) < 1.1
    assert encoder.media_type == audio.OUTPUT_FORMATS[fmt].media_type
    with pytest.raises(ValueError, match="finished"):
        encoder.encode(TONE)


def test_streamed_wav_and_pcm_carry_the_same_samples_as_a_whole_wav() -> None:
    whole, _ = sf.read(io.BytesIO(audio.encode(TONE, RATE, "wav")), dtype="int16")
    encoder = audio.StreamEncoder("wav", RATE)
    streamed = encoder.encode(TONE[:7000]) + encoder.encode(TONE[7000:]) + encoder.finish()
    assert streamed[:4] == b"RIFF" and streamed[4:8] == b"\xff\xff\xff\xff"
    from_stream, rate = sf.read(io.BytesIO(streamed), dtype="int16")
    assert rate == RATE and from_stream.shape == whole.shape
    # libsndfile and honora round float to 16 bits each their own way: one step at most.
    assert np.max(np.abs(from_stream.astype(int) - whole)) <= 1
    pcm = np.frombuffer(audio.encode(TONE, RATE, "pcm"), dtype="<i2")
    assert np.array_equal(pcm, from_stream)


def test_ogg_vorbis_is_written_whole_but_refuses_to_stream() -> None:
    assert not audio.OUTPUT_FORMATS["ogg"].streams
    with pytest.raises(ValueError, match="ogg cannot be streamed; stream one of"):
        audio.StreamEncoder("ogg", RATE)


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 23_000), ("aac", 23_000), ("opus", 22_050)])
def test_rates_a_codec_cannot_carry_are_refused_by_the_protocol_and_the_encoder(fmt, rate):
    with pytest.raises(ValueError, match=f"{fmt} cannot carry {rate} Hz"):
        audio.encode(TONE, RATE, fmt, target_rate=rate)
    with pytest.raises(ValueError, match=f"{fmt} cannot carry {rate} Hz"):
        OutputSpec(format=fmt, sample_rate=rate)
    assert OutputSpec(format=fmt, sample_rate=48_000).sample_rate == 48_000


def test_an_abandoned_stream_closes_without_writing_more() -> None:
    encoder = audio.StreamEncoder("opus", RATE)
    assert encoder.encode(TONE[:4800])
    encoder.close()
    assert encoder.finish() == b""
