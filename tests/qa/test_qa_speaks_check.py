"""Deploy verification's speaks check on real clips: speech passes; noise FAILs a real model
with evidence and advice, and WARNs for the random-weights model."""

import pandas as pd
import pytest
from speech_clips import EN_TEXT

from honora_tts.qa.speech import speaks_check
from honora_tts.qa.verification import Status, decide

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judged(speech_clips):
    clips = speaks_check.verification_clips(
        {"tiny_text": speech_clips.correct, "text_and_voice": speech_clips.noise},
        {"tiny_text": EN_TEXT, "text_and_voice": EN_TEXT},
        voice_file=speech_clips.reference, voiced=["tiny_text"])
    return speaks_check.judge_clips(clips, progress=False)


def test_speech_passes_and_says_what_the_text_check_found(judged):
    check = speaks_check.speaks_check(judged[judged["clip"] == "tiny_text"], "xtts_v2")
    assert check.status == Status.PASS, check.summary
    assert "1 of 1 clips are speech" in check.summary and "1 verified" in check.summary
    assert speaks_check.advice(check) == []


def test_noise_fails_a_real_model_with_evidence_and_advice(judged):
    check = speaks_check.speaks_check(judged, "xtts_v2")
    assert check.status == Status.FAIL and check.error_type == "NotSpeaking"
    assert "text_and_voice: not_speech" in check.summary and "DNSMOS" in check.summary
    advice = speaks_check.advice(check)
    assert [a.key for a in advice] == ["speech_not_speech"]
    assert "HONORA_XTTS_MODEL" in advice[0].fix and "text_and_voice" in advice[0].evidence[0]
    assert decide([], [check]).status == Status.FAIL


def test_noise_from_the_random_weights_model_is_a_warning(judged):
    check = speaks_check.speaks_check(judged, "tiny")
    assert check.status == Status.WARN
    assert "random-weights model tiny" in check.summary and "not_speech" in check.summary
    verdict = decide([], [check], model_name="tiny")
    assert verdict.passed and any("not_speech" in w for w in verdict.warnings)


def test_stress_sample_spreads_over_saved_outputs(tmp_path):
    records = pd.DataFrame({"index": range(10),
                            "audio_path": [str(tmp_path / f"{i}.wav") if i % 2 else ""
                                           for i in range(10)]})
    sample = speaks_check.stress_sample(records, "Stress.", 3)
    assert [c.name for c in sample] == ["stress #1", "stress #3", "stress #5"]
    assert speaks_check.stress_sample(records.drop(columns=["audio_path"]), "x", 3) == []


def test_no_audio_at_all_fails():
    check = speaks_check.speaks_check(pd.DataFrame(), "xtts_v2")
    assert check.status == Status.FAIL and check.error_type == "NoAudio"
