"""Speech checks on espeak-ng clips: every case gets its verdict, with DNSMOS, pocketsphinx and
resemblyzer running for real (nothing mocked)."""

import json
import math

import pytest
from speech_clips import DE_TEXT, EN_TEXT

from honora_tts.qa.speech import speech_verdict
from honora_tts.qa.speech.calibration import separate
from honora_tts.qa.speech.completeness import SpeakingRate, expected_span, speech_span
from honora_tts.qa.speech.intelligibility import error_rates
from honora_tts.qa.speech.languages import UnknownLanguage, language_facts
from honora_tts.qa.speech.text_normalization import letter_count, normalize
from honora_tts.qa.speech.thresholds import load_thresholds

pytestmark = pytest.mark.slow


def test_correct_speech_is_speech_with_its_text_verified(verdicts):
    v = verdicts["correct"]
    assert v.verdict == "speech", v.reasons
    assert v.text_check == "verified", v.text_reason
    ev = v.evidence
    assert ev["expected_min_s"] <= ev["speech_s"] <= ev["expected_max_s"]
    assert ev["speaker_similarity"] >= load_thresholds().similarity_min
    assert set(ev["backends"]) == {"signal", "quality", "asr", "voice"}
    assert "speechmos" in ev["backends"]["quality"]
    assert ev["backends"]["asr"].startswith("faster-whisper")
    assert "resemblyzer" in ev["backends"]["voice"]


@pytest.mark.parametrize("case", ["noise", "silence"])
def test_noise_and_silence_are_not_speech(verdicts, case):
    v = verdicts[case]
    assert v.verdict == "not_speech", v.reasons
    assert not v.is_speech


def test_noise_is_told_apart_by_predicted_quality(verdicts):
    noise, speech = verdicts["noise"].evidence, verdicts["correct"].evidence
    assert noise["dnsmos_p808"] < load_thresholds().dnsmos_p808_min < speech["dnsmos_p808"]
    assert "DNSMOS" in verdicts["noise"].reasons[0]
    assert "silent" in verdicts["silence"].reasons[0]


def test_sentence_cut_in_half_is_truncated(verdicts):
    v = verdicts["cut"]
    assert v.verdict == "truncated", v.reasons
    assert v.evidence["speech_s"] < v.evidence["expected_min_s"]


def test_sentence_followed_by_babble_is_runaway(verdicts):
    v = verdicts["babble"]
    assert v.verdict == "runaway", v.reasons
    assert v.evidence["speech_s"] > v.evidence["expected_max_s"]


def test_another_sentence_is_wrong_text_where_the_backend_is_trusted(verdicts):
    assert load_thresholds().text_trust_for("faster-whisper", "en").trusted
    v = verdicts["other_sentence"]
    assert v.verdict == "wrong_text", v.reasons
    assert v.text_check == "wrong"


def test_another_sentence_without_a_trusted_backend_is_never_a_pass_of_the_text(verdicts):
    for case in ("de_correct", "de_other_sentence"):
        v = verdicts[case]
        assert v.text_check == "not_verified", v.text_reason
        assert v.verdict != "wrong_text"
        assert "de" in v.text_reason
    assert verdicts["de_correct"].verdict == "speech", verdicts["de_correct"].reasons


def test_another_voice_is_wrong_voice(verdicts):
    v = verdicts["other_voice"]
    assert v.verdict == "wrong_voice", v.reasons
    assert v.evidence["speaker_similarity"] < verdicts["correct"].evidence["speaker_similarity"]


def test_verdict_is_json_ready(verdicts):
    from honora_tts.qa.artifacts import json_ready

    data = json.loads(json.dumps(json_ready(verdicts["babble"].to_dict())))
    assert data["verdict"] == "runaway" and data["text_check"] in {"verified", "wrong"}
    assert data["evidence"]["backends"]["asr"].startswith("faster-whisper")


def test_check_audio_command_exit_codes(speech_clips, capsys):
    from honora_tts.cli import main

    assert main(["check-audio", str(speech_clips.correct), "--text", EN_TEXT, "--language",
                 "en", "--reference", str(speech_clips.reference)]) == 0
    out = capsys.readouterr().out
    assert "verdict: speech" in out and "text: verified" in out and "backend asr:" in out
    assert main(["check-audio", str(speech_clips.noise), "--text", EN_TEXT, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "not_speech" and data["evidence"]["dnsmos_p808"] < 3


def test_check_audio_refuses_bad_input(speech_clips, tmp_path, capsys):
    from honora_tts.cli import main

    assert main(["check-audio", str(speech_clips.correct), "--text", DE_TEXT, "--language",
                 "xx"]) == 2
    assert "unknown language" in capsys.readouterr().err
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")
    assert main(["check-audio", str(junk), "--text", EN_TEXT]) == 2
    assert "cannot read audio" in capsys.readouterr().err


# ------------------------------------------------------------------- the pieces, no models


def test_normalisation_spells_numbers_and_drops_punctuation():
    # English: Whisper's EnglishTextNormalizer (numbers as digits, one currency form), plus
    # times and a.m./p.m. in one form.
    assert normalize('He said, "Are you coming?" It costs $1,250.', "en") == (
        "he said are you coming it costs $1250")
    assert normalize("It costs one thousand two hundred and fifty dollars", "en") == (
        "it costs $1250")
    for written, spoken in (("at 7:45 a.m.", "at seven forty five AM"),
                            ("Dr. Smith", "Doctor Smith"), ("up 15%", "up fifteen percent"),
                            ("the train at 7.45 from", "the train at 7:45 from")):
        assert normalize(written, "en") == normalize(spoken, "en"), written
    assert normalize("Pi is 3.14", "en") == "pi is 3.14"
    assert normalize("Er kaufte 3 Äpfel für 2,5 Euro!", "de") == (
        "er kaufte drei äpfel für zwei komma fünf euro")
    assert normalize("Don't stop - well-known", "en") == "do not stop well known"
    from honora_tts.qa.speech.text_normalization import spoken_form

    assert spoken_form("Tickets cost $24 at 6:30, 15% off.", "en") == (
        "tickets cost twenty four dollars at six thirty fifteen percent off")
    assert letter_count("Hi, 2!", "en") == len("hitwo")


def test_error_rates_after_normalisation():
    same = error_rates("Call 3 friends!", "call three friends")
    assert same.wer == 0 and same.cer == 0
    wrong = error_rates("call three friends", "fall three friends")
    assert math.isclose(wrong.wer, 1 / 3)
    assert error_rates("call me", "").wer == 1.0
    assert math.isnan(error_rates("...", "anything").wer)


def test_unknown_language_is_refused_with_the_known_ones():
    with pytest.raises(UnknownLanguage, match="en, es"):
        language_facts("klingon")
    assert language_facts("ZH").code == "zh-cn" and language_facts("en").split_limit == 250


def test_expected_span_and_speech_span():
    import numpy as np

    low, high = expected_span(100, SpeakingRate(10, 20), slack_s=0.5, min_longest_s=1.5)
    assert (low, high) == (4.5, 10.5)
    assert expected_span(2, SpeakingRate(10, 20), 0.25, 1.5)[1] == 1.5
    rate = 16_000
    x = np.zeros(rate * 3, dtype=np.float32)
    x[rate: 2 * rate] = 0.1
    start, end = speech_span(x, rate)
    assert math.isclose(start, 1.0, abs_tol=0.03) and math.isclose(end, 2.0, abs_tol=0.03)
    assert speech_span(np.zeros(rate, dtype=np.float32), rate) == (0.0, 0.0)


def test_separation_threshold():
    clean = separate("m", "low", [1, 2, 3], "high", [5, 6])
    assert clean.separated and clean.threshold == 4 and clean.accuracy == 1
    mixed = separate("m", "low", [1, 2, 5.5], "high", [5, 6, 7])
    assert not mixed.separated and 0.5 < mixed.accuracy < 1
    kept = separate("m", "low", [1, 2, 5.5], "high", [5, 6, 7], keep_high_margin=0.1)
    assert kept.threshold == pytest.approx(4.9)


def test_calibration_file_names_its_command_and_trusts_only_calibrated_languages():
    t = load_thresholds()
    assert t.provenance["command"] == "honora-tts calibrate-speech"
    assert set(t.speaking_rates) >= {"en", "de", "es", "fr"}
    assert t.text_trust_for("pocketsphinx", "de") is None
    assert t.text_trust_for("faster-whisper", "de") is None  # tiny.en: English only
    trust = t.text_trust_for("faster-whisper", "en")
    assert trust.trusted and trust.accepted_right >= 0.95 and trust.rejected_wrong >= 0.9
    weak = t.text_trust_for("pocketsphinx", "en")
    assert not weak.trusted  # forced alignment does not tell wrong text on neural speech
    assert "piper" in t.provenance["piper"] and "faster-whisper" in t.provenance["recognisers"]


def test_judge_refuses_wrong_text_from_an_untrusted_backend(speech_clips):
    import dataclasses

    from honora_tts.qa.audio_metrics import read_audio
    from honora_tts.qa.speech.clip_measures import measure_speech

    t = load_thresholds()
    whisper = t.recognisers["faster-whisper"]
    untrusted = dataclasses.replace(t, recognisers={"faster-whisper": dataclasses.replace(
        whisper, text_trust={"en": dataclasses.replace(whisper.text_trust["en"],
                                                       trusted=False)})})
    measures = measure_speech(*read_audio(speech_clips.other_sentence), EN_TEXT, "en")
    judged = speech_verdict.judge(measures, untrusted)
    assert judged.text_check == "not_verified" and judged.verdict == "speech"
    assert "not trusted" in judged.text_reason
    assert speech_verdict.judge(measures, t).verdict == "wrong_text"


def test_alignment_does_not_judge_texts_too_short_to_tell(speech_clips):
    from honora_tts.qa.audio_metrics import read_audio
    from honora_tts.qa.speech.asr import MIN_ALIGN_WORDS, asr_backend

    samples, rate = read_audio(speech_clips.noise)
    match = asr_backend("pocketsphinx").match_text(samples, rate, "Hello.", "en")
    assert math.isnan(match.mismatch) and match.detail["min_words"] == MIN_ALIGN_WORDS


# ------------------------------------------------- neural speech (Piper), default recogniser

PIPER_EXPECTED = {
    "correct": "speech", "wrong_text": "wrong_text", "truncated": "truncated",
    "babble": "runaway", "loop": "runaway", "clipped": "distorted", "fast_3x": "too_fast",
    "slow_3x": "too_slow", "noise": "not_speech", "silence": "not_speech",
}


def test_the_default_recogniser_is_the_installed_whisper(piper_verdicts):
    backend = piper_verdicts["correct"].evidence["backends"]["asr"]
    assert backend.startswith("faster-whisper") and "tiny.en" in backend


@pytest.mark.parametrize("kind", list(PIPER_EXPECTED))
def test_every_verdict_kind_on_neural_speech(piper_verdicts, kind):
    v = piper_verdicts[kind]
    assert v.verdict == PIPER_EXPECTED[kind], (v.reasons, v.evidence["transcript"])


def test_right_text_is_verified_and_wrong_text_caught_by_the_default_install(piper_verdicts):
    right, wrong = piper_verdicts["correct"], piper_verdicts["wrong_text"]
    assert right.text_check == "verified" and right.evidence["wer"] <= 0.2, right.text_reason
    assert wrong.text_check == "wrong" and "does not say the text" in wrong.text_reason
    assert "heard" in wrong.reasons[0]


def test_each_bad_verdict_names_its_evidence(piper_verdicts):
    assert "repeats" in piper_verdicts["loop"].reasons[0]
    assert "full scale" in piper_verdicts["clipped"].reasons[0]
    assert "too fast" in piper_verdicts["fast_3x"].reasons[0]
    assert "too slowly" in piper_verdicts["slow_3x"].reasons[0]
    assert "DNSMOS" in piper_verdicts["noise"].reasons[0]


def test_a_transcript_that_disagrees_never_prints_verified(piper_clips):
    import dataclasses

    from honora_tts.qa.audio_metrics import read_audio
    from honora_tts.qa.speech.asr import asr_backend
    from honora_tts.qa.speech.clip_measures import measure_speech

    t = load_thresholds()
    measures = measure_speech(*read_audio(piper_clips["truncated"]), EN_TEXT, "en",
                              asr=asr_backend())
    # Even with a check loose enough to accept it, a WER above 0.5 is not a pass of the text.
    loose = dataclasses.replace(t, recognisers={name: dataclasses.replace(r, text_trust={
        lang: dataclasses.replace(trust, mismatch_max=1.0)
        for lang, trust in r.text_trust.items()}) for name, r in t.recognisers.items()})
    bad = dataclasses.replace(measures, error_rates=dataclasses.replace(
        measures.error_rates, wer=0.6))
    check, reason = speech_verdict.text_check(bad, loose)
    assert check == "not_verified" and "transcript disagrees" in reason


def test_the_pocketsphinx_fallback_says_it_is_the_weak_one(piper_clips):
    v = speech_verdict.check_file(piper_clips["correct"], EN_TEXT, "en",
                                  asr_model="pocketsphinx")
    assert v.evidence["backends"]["asr"].startswith("pocketsphinx")
    assert v.text_check != "verified" and "weak fallback" in v.text_reason


def test_check_audio_on_neural_speech(piper_clips, capsys):
    from honora_tts.cli import main

    assert main(["check-audio", str(piper_clips["correct"]), "--text", EN_TEXT]) == 0
    out = capsys.readouterr().out
    assert "verdict: speech" in out and "text: verified" in out
    assert main(["check-audio", str(piper_clips["wrong_text"]), "--text", EN_TEXT]) == 1
    out = capsys.readouterr().out
    assert "verdict: wrong_text" in out and "text: wrong" in out
