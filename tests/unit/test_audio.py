"""honora_tts.audio: encoding round trips, resampling, joins without clicks, measurements."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf

from honora_tts import audio

RATE = 24_000


def sine(freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1.0 / rate)[np.argmax(spectrum)])


def best_aligned_error(reference: np.ndarray, decoded: np.ndarray, max_shift: int) -> float:
    """RMS error relative to the reference's RMS, at the best codec delay."""
    best = math.inf
    core = reference[max_shift : reference.size - max_shift]
    for shift in range(max_shift + 1):
        window = decoded[shift + max_shift : shift + max_shift + core.size]
        if window.size < core.size:
            break
        best = min(best, float(np.sqrt(np.mean((window - core) ** 2))))
    return best / float(np.sqrt(np.mean(core**2)))


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_round_trip_at_24k_keeps_rate_length_and_waveform(fmt):
    original = sine(440, 1.0)
    data = audio.encode(original, RATE, fmt)
    decoded, rate = audio.decode(data)
    assert rate == RATE
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    # MP3 frames add encoder delay and padding; the others keep the length.
    slack = 0.1 if fmt == "mp3" else 0.0
    assert abs(decoded.size - original.size) <= slack * original.size
    if fmt in ("wav", "flac"):
        np.testing.assert_allclose(decoded, original, atol=1.5 / 32767)
    else:
        assert best_aligned_error(original, decoded, max_shift=2400) < 0.2
    assert abs(dominant_frequency(decoded, rate) - 440) < 3


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
@pytest.mark.parametrize("target", [16_000, 48_000])
def test_encode_resamples_to_the_target_rate(fmt, target):
    original = sine(1000, 0.5)
    decoded, rate = audio.decode(audio.encode(original, RATE, fmt, target_rate=target))
    assert rate == target
    assert abs(audio.duration_s(decoded, rate) - 0.5) < 0.06
    assert abs(dominant_frequency(decoded, rate) - 1000) < 5


def test_wav_is_16_bit_pcm_and_ogg_is_vorbis():
    assert sf.info(io.BytesIO(audio.encode(sine(440, 0.2), RATE, "wav"))).subtype == "PCM_16"
    assert sf.info(io.BytesIO(audio.encode(sine(440, 0.2), RATE, "flac"))).subtype == "PCM_16"
    assert sf.info(io.BytesIO(audio.encode(sine(440, 0.2), RATE, "ogg"))).subtype == "VORBIS"


def test_encode_refuses_bad_requests():
    with pytest.raises(ValueError, match="mp3 cannot carry 44000 Hz"):
        audio.encode(sine(440, 0.1), RATE, "mp3", target_rate=44_000)
    with pytest.raises(ValueError, match="unknown audio format"):
        audio.encode(sine(440, 0.1), RATE, "aiff")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="floating-point"):
        audio.encode(np.zeros(10, dtype=np.int16), RATE, "wav")


def test_decode_downmixes_stereo_and_rejects_garbage():
    left = sine(440, 0.2)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([left, np.zeros_like(left)], axis=1), RATE, format="WAV",
             subtype="FLOAT")
    decoded, rate = audio.decode(buffer.getvalue())
    assert rate == RATE and decoded.ndim == 1
    np.testing.assert_allclose(decoded, left / 2, atol=1e-6)
    with pytest.raises(ValueError, match="not decodable"):
        audio.decode(b"this is plainly not audio" * 40)
    with pytest.raises(ValueError, match="0 bytes"):
        audio.decode(b"")


def test_resample_keeps_frequency_and_scales_length():
    original = sine(300, 1.0, rate=22_050)
    out = audio.resample(original, 22_050, 24_000)
    assert out.dtype == np.float32
    assert out.size == 24_000
    assert abs(dominant_frequency(out, 24_000) - 300) < 2
    np.testing.assert_array_equal(audio.resample(original, 22_050, 22_050), original)
    with pytest.raises(ValueError):
        audio.resample(original, 0, 24_000)


def test_pcm16_round_trip_and_clipping():
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0], dtype=np.float32)
    data = audio.to_pcm16(samples)
    assert len(data) == 2 * samples.size
    back = audio.from_pcm16(data)
    np.testing.assert_allclose(back, np.clip(samples, -1, 1), atol=1 / 32767)
    assert np.frombuffer(data, "<i2")[3] == 32767
    with pytest.raises(ValueError, match="even number"):
        audio.from_pcm16(b"\x00\x01\x02")


def max_step(samples: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(samples))))


def test_join_has_no_discontinuity_and_inserts_the_pause():
    # Pieces that end and start far from zero: a bare concatenation would step by 1.6.
    first = np.full(4_800, 0.8, dtype=np.float32)
    second = np.full(4_800, -0.8, dtype=np.float32)
    assert max_step(np.concatenate([first, second])) > 1.5
    joined = audio.join([first, second], RATE, pause_ms=120, crossfade_ms=10)
    assert joined.size == first.size + second.size + round(RATE * 0.120)
    assert max_step(joined) < 0.02
    # The middle of the pause is silent; the pieces' far edges are untouched.
    assert np.all(joined[first.size : first.size + 2_880] == 0)
    assert joined[0] == pytest.approx(0.8) and joined[-1] == pytest.approx(-0.8)


def test_join_without_pause_crossfades_the_edges():
    first, second = sine(200, 0.3), sine(200, 0.3, amplitude=0.4)
    joined = audio.join([first, second], RATE, pause_ms=0, crossfade_ms=10)
    fade = round(RATE * 0.010)
    assert joined.size == first.size + second.size - fade
    assert max_step(joined) <= max(max_step(first), max_step(second)) + 0.02


def test_join_edge_cases():
    piece = sine(100, 0.1)
    np.testing.assert_array_equal(audio.join([piece], RATE), piece)
    assert audio.join([], RATE).size == 0
    assert audio.join([np.zeros(0, dtype=np.float32), piece], RATE).size == piece.size
    with pytest.raises(ValueError):
        audio.join([piece, piece], RATE, pause_ms=-1)


def test_measure_known_signals():
    full = sine(997, 1.0, amplitude=1.0)
    facts = audio.measure(full, RATE)
    assert facts["duration_s"] == pytest.approx(1.0)
    assert facts["peak_dbfs"] == pytest.approx(0.0, abs=0.01)
    assert facts["rms_dbfs"] == pytest.approx(-3.01, abs=0.02)
    assert facts["silence_ratio"] == 0.0
    assert facts["dc_offset"] == pytest.approx(0.0, abs=1e-4)
    # Only the crests reach 0.999: 2 * acos(0.999) / pi = 2.8 % of a sine's samples.
    assert facts["clipping_ratio"] == pytest.approx(0.0285, abs=0.005)

    half = audio.measure(sine(1000, 1.0, amplitude=0.5), RATE)
    assert half["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)
    assert half["clipping_ratio"] == 0.0

    square = np.sign(sine(50, 1.0)).astype(np.float32)
    square[square == 0] = 1.0
    assert audio.measure(square, RATE)["clipping_ratio"] == 1.0

    quiet_then_loud = np.concatenate([np.zeros(RATE, np.float32), sine(440, 1.0)])
    assert audio.measure(quiet_then_loud, RATE)["silence_ratio"] == pytest.approx(0.5, abs=0.01)

    offset = audio.measure(np.full(RATE, 0.25, dtype=np.float32), RATE)
    assert offset["dc_offset"] == pytest.approx(0.25)

    silent = audio.measure(np.zeros(RATE, np.float32), RATE)
    assert silent["peak_dbfs"] == -120.0 and silent["silence_ratio"] == 1.0


def test_duration_and_probe_file(tmp_path):
    samples = sine(440, 1.5, rate=16_000)
    assert audio.duration_s(samples, 16_000) == pytest.approx(1.5)
    path = tmp_path / "voice.flac"
    path.write_bytes(audio.encode(samples, 16_000, "flac"))
    duration, rate = audio.probe_file(path)
    assert rate == 16_000 and duration == pytest.approx(1.5, abs=1e-3)
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all\n" * 20)
    with pytest.raises(ValueError, match="not a readable audio file"):
        audio.probe_file(text)
    with pytest.raises(ValueError):
        audio.probe_file(tmp_path / "missing.wav")


def test_one_format_table_serves_every_reader():
    """A format is one row of ``OUTPUT_FORMATS``: the protocol's choices, the encoder, the
    client's suffixes, the delivery's content type and the listening test's players read it."""
    from typing import get_args

    from honora_tts.client.local_files import SUFFIX_FORMATS, output_format
    from honora_tts.protocol import OutputSpec

    assert get_args(audio.AudioFormat) == tuple(audio.OUTPUT_FORMATS)
    for name, row in audio.OUTPUT_FORMATS.items():
        assert row.name == name and row.media_type.startswith("audio/")
        assert SUFFIX_FORMATS[row.suffix] == name and output_format(f"x{row.suffix}") == name
        assert audio.format_for_suffix(row.suffix.upper()) is row
        assert OutputSpec(format=name).format == name
        if row.soundfile is not None:  # the others are decoded back in test_audio_formats
            assert audio.decode(audio.encode(sine(440, 0.1), RATE, name))[1] == RATE
    assert audio.format_for_suffix(".aiff") is None
    with pytest.raises(ValueError, match="mp3 cannot carry 44000 Hz"):
        OutputSpec(format="mp3", sample_rate=44_000)
