"""Objective clip measures: loudness against BS.1770's reference tone, levels, RTF and speaker
similarity with the packaged resemblyzer encoder."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from honora_tts import audio
from honora_tts.qa import audio_metrics
from honora_tts.qa.reference_voice import synthetic_voice_samples, write_synthetic_voice

matplotlib.use("Agg")
RATE = 24_000


def sine(amplitude: float, seconds: float = 3.0, frequency: float = 997.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_loudness_matches_the_bs1770_reference_tone():
    # BS.1770: a full-scale 997 Hz sine reads -3.01 LKFS; at amplitude 0.1 that is -23.01.
    assert audio_metrics.loudness_lufs(sine(1.0), RATE) == pytest.approx(-3.01, abs=0.1)
    assert audio_metrics.loudness_lufs(sine(0.1), RATE) == pytest.approx(-23.01, abs=0.1)


def test_loudness_of_silence_and_short_clips_is_nan():
    assert math.isnan(audio_metrics.loudness_lufs(np.zeros(RATE * 2, np.float32), RATE))
    assert math.isnan(audio_metrics.loudness_lufs(sine(0.5, seconds=0.3), RATE))


def test_measure_reports_levels_clipping_silence_and_rtf():
    clipped = np.concatenate([sine(1.2, 1.0).clip(-1, 1), np.zeros(RATE, np.float32)])
    metrics = audio_metrics.measure(clipped, RATE, synthesis_s=1.0)
    assert metrics.duration_s == pytest.approx(2.0)
    assert metrics.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert metrics.clipping_ratio > 0.1
    assert metrics.silence_ratio == pytest.approx(0.5, abs=0.02)
    assert metrics.real_time_factor == pytest.approx(0.5)
    assert math.isnan(metrics.speaker_similarity)


def test_real_time_factor_needs_both_numbers():
    assert audio_metrics.real_time_factor(2.0, 4.0) == 0.5
    assert math.isnan(audio_metrics.real_time_factor(None, 4.0))
    assert math.isnan(audio_metrics.real_time_factor(1.0, 0.0))


def test_unreadable_audio_names_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(ValueError, match="bad.wav"):
        audio_metrics.read_audio(bad)


@pytest.mark.slow
def test_speaker_similarity_tells_voices_apart():
    encoder = audio_metrics.SpeakerEncoder.shared()
    assert audio_metrics.SpeakerEncoder.shared() is encoder  # loaded once
    low = synthetic_voice_samples(seconds=3.0, f0=110.0, seed=1)
    low_again = synthetic_voice_samples(seconds=3.0, f0=110.0, seed=2)
    noise = np.random.default_rng(0).normal(0, 0.1, RATE * 3).astype(np.float32)
    same = encoder.similarity(low, RATE, low, RATE)
    similar = encoder.similarity(low_again, RATE, low, RATE)
    different = encoder.similarity(noise, RATE, low, RATE)
    assert same == pytest.approx(1.0, abs=1e-4)
    assert different < similar


@pytest.mark.slow
def test_measure_clips_adds_columns_and_embeds_each_reference_once(tmp_path):
    reference = write_synthetic_voice(tmp_path / "ref.wav", seconds=2.0)
    clip = tmp_path / "clip.wav"
    clip.write_bytes(audio.encode(sine(0.2, 1.0), RATE, "wav"))
    table = pd.DataFrame({"path": [str(clip), str(reference)], "condition": ["a", "b"],
                          "synthesis_s": [0.5, None], "reference": [str(reference)] * 2})
    measured = audio_metrics.measure_clips(table, progress=False)
    assert list(measured["condition"]) == ["a", "b"]
    assert measured.loc[0, "real_time_factor"] == pytest.approx(0.5)
    assert math.isnan(measured.loc[1, "real_time_factor"])
    assert measured.loc[1, "speaker_similarity"] == pytest.approx(1.0, abs=1e-4)
    assert measured.loc[0, "speaker_similarity"] < measured.loc[1, "speaker_similarity"]
    figure = audio_metrics.plot_clip_metrics(measured)
    assert [ax.get_title() for ax in figure.axes][2] == "loudness (LUFS)"
