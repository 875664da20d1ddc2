"""The release gate on espeak-ng clip directories: the same clips re-synthesised PASS; copies
with noise added, cut short and time-stretched FAIL, naming what regressed. Also the golden
set's contents and the gate's statistics."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from speech_clips import EN_REFERENCE_TEXT, write

from honora_tts.qa.speech import degradations, espeak, release_gate
from honora_tts.qa.speech.gate_run import run_gate
from honora_tts.qa.speech.golden_set import golden_set
from honora_tts.qa.speech.languages import language_facts

GATE_ITEMS = ["en-greeting", "en-names", "de-plain", "es-plain"]
VOICE = "m1"


def _speak_items(root: Path, degrade=None) -> Path:
    for item in golden_set():
        if item.id not in GATE_ITEMS:
            continue
        samples, rate = espeak.speak(item.text, f"{language_facts(item.language).espeak_voice}"
                                                f"+{VOICE}")
        if degrade is not None:
            samples = degrade(item.id, samples)
        write(root / VOICE / f"{item.id}.wav", samples, rate)
    return root


def _degrade(item_id: str, samples: np.ndarray) -> np.ndarray:
    if item_id in ("en-greeting", "es-plain"):
        return degradations.with_noise(samples, snr_db=5.0)
    if item_id == "en-names":
        return degradations.cut(samples, 0.5)
    return degradations.time_stretched(samples, 1.35)


@pytest.fixture(scope="session")
def gate_dirs(tmp_path_factory):
    """Baseline clips, the same re-synthesised, degraded copies, and the voice reference."""
    if not espeak.espeak_available():
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("gate")
    reference = write(root / "voices" / f"{VOICE}.wav",
                      espeak.speak(EN_REFERENCE_TEXT, f"en-us+{VOICE}")[0])
    return {"baseline": _speak_items(root / "baseline"),
            "resynthesised": _speak_items(root / "resynthesised"),
            "degraded": _speak_items(root / "degraded", _degrade),
            "voices": {VOICE: str(reference)}}


@pytest.mark.slow
def test_gate_passes_on_the_same_clips_resynthesised(gate_dirs, tmp_path):
    run = run_gate(str(gate_dirs["baseline"]), str(gate_dirs["resynthesised"]), tmp_path,
                   voices=gate_dirs["voices"], items=GATE_ITEMS, progress=False)
    assert run.result.verdict == "PASS", run.result.reasons
    assert run.result.pairs == len(GATE_ITEMS)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] and summary["new_bad_clips"] == []
    gated = {d["measure"]: d for d in summary["deltas"] if d["tolerance"] is not None}
    assert set(gated) == {"wer", "speaker_similarity", "dnsmos_ovrl"}
    assert gated["dnsmos_ovrl"]["pairs"] == len(GATE_ITEMS)
    assert gated["wer"]["pairs"] == 2  # English only: pocketsphinx does not cover de, es
    assert all(abs(d["mean_delta"]) < 1e-6 for d in gated.values())
    for name in ("paired_deltas.png", "sentence_heatmap.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(tmp_path / "clips.csv")) == 2 * len(GATE_ITEMS)


@pytest.mark.slow
def test_gate_command_fails_on_degraded_clips_naming_what_regressed(gate_dirs, tmp_path,
                                                                     capsys):
    from honora_tts.cli import main

    items = [arg for item in GATE_ITEMS for arg in ("--item", item)]
    code = main(["gate", "--baseline", str(gate_dirs["baseline"]), "--candidate",
                 str(gate_dirs["degraded"]), "--voice", f"{VOICE}={gate_dirs['voices'][VOICE]}",
                 *items, "--out", str(tmp_path), "--quiet", "--no-plots"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "GATE: FAIL" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    reasons = " ".join(summary["reasons"])
    assert "DNSMOS OVRL fell" in reasons and "speaker similarity fell" in reasons
    assert "truncated" in reasons and f"{VOICE}/en-names" in reasons
    regressed = {d["measure"] for d in summary["deltas"] if d["regressed"]}
    assert {"dnsmos_ovrl", "speaker_similarity"} <= regressed


def test_gate_refuses_directories_that_do_not_pair(gate_dirs, tmp_path, capsys):
    from honora_tts.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["gate", "--baseline", str(gate_dirs["baseline"]), "--candidate",
                 str(tmp_path / "empty"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "no golden-set clip" in capsys.readouterr().err
    with pytest.raises(release_gate.GateInputError, match="unknown golden-set ids"):
        release_gate.select_items(items=["nope"])


def test_golden_set_covers_what_the_gate_promises():
    items = golden_set()
    assert 25 <= len(items) <= 40
    languages = {i.language for i in items}
    assert "en" in languages and len(languages) >= 3
    texts = " ".join(i.text for i in items)
    assert '?"' in texts and '!"' in texts and any(c.isdigit() for c in texts)
    features = {f for i in items for f in i.features}
    assert {"numbers", "abbreviations", "question", "quote", "long"} <= features
    for language in languages:
        longest = max((i for i in items if i.language == language), key=lambda i: len(i.text))
        assert len(longest.text) > language_facts(language).split_limit
    assert len({i.id for i in items}) == len(items)


def _paired(deltas: dict[str, list[float]], verdicts=None, wer_cand=None) -> pd.DataFrame:
    n = len(next(iter(deltas.values())))
    frame = pd.DataFrame({"voice": ["v"] * n, "item": [f"i{k}" for k in range(n)],
                          "verdict_base": ["speech"] * n,
                          "verdict_cand": verdicts or ["speech"] * n,
                          "reason_cand": [""] * n})
    for measure, values in deltas.items():
        frame[f"{measure}_base"] = 0.1
        frame[f"{measure}_cand"] = 0.1 + np.asarray(values)
        frame[f"{measure}_delta"] = np.asarray(values)
    if wer_cand is not None:
        frame["wer_base"] = 0.1
        frame["wer_cand"] = wer_cand
        frame["wer_delta"] = frame["wer_cand"] - frame["wer_base"]
    return frame


def test_decide_applies_each_tolerance_in_its_direction():
    ok = _paired({"wer": [0.01] * 6, "speaker_similarity": [-0.02] * 6,
                  "dnsmos_ovrl": [-0.05] * 6})
    assert release_gate.decide(ok).passed
    worse = _paired({"wer": [0.05] * 6, "speaker_similarity": [0.1] * 6,
                     "dnsmos_ovrl": [0.3] * 6})
    result = release_gate.decide(worse)
    assert not result.passed and len(result.reasons) == 1 and "WER rose" in result.reasons[0]
    new_bad = _paired({"wer": [0.0] * 3}, verdicts=["speech", "runaway", "speech"])
    result = release_gate.decide(new_bad)
    assert not result.passed and "runaway x1" in result.reasons[0] and "v/i1" in result.reasons[0]


def test_a_mean_past_the_tolerance_fails_only_when_its_interval_clears_it():
    # Equivalent builds through a noisy recogniser: mean +0.03 > 0.02, interval spans 0.
    noisy = _paired({"wer": [0.12, -0.08, 0.10, -0.05, 0.09, -0.07, 0.11, -0.04]})
    result = release_gate.decide(noisy)
    wer = next(d for d in result.deltas if d.measure == "wer")
    assert wer.beyond_mean and not wer.regressed and result.passed, result.reasons
    shifted = _paired({"wer": [0.08, 0.09, 0.1, 0.085, 0.095, 0.09, 0.1, 0.08]})
    result = release_gate.decide(shifted)
    assert not result.passed and "whole interval past the tolerance" in result.reasons[0]


@pytest.mark.parametrize("verdict", ["wrong_text", "distorted", "too_fast", "too_slow"])
def test_every_new_bad_verdict_is_catastrophic(verdict):
    result = release_gate.decide(_paired({"wer": [0.0] * 4},
                                         verdicts=["speech", "speech", verdict, "speech"]))
    assert not result.passed and f"{verdict} x1" in result.reasons[0]


def test_a_clip_whose_wer_rises_above_half_fails_the_gate_alone():
    result = release_gate.decide(_paired({"dnsmos_ovrl": [0.0] * 8},
                                         wer_cand=[0.1] * 7 + [0.8]))
    assert not result.passed
    assert "WER > 0.5 x1" in result.reasons[-1] and "v/i7 (WER 0.10 -> 0.80)" in result.reasons[-1]


def test_a_gated_measure_not_measured_is_named_and_never_claimed():
    result = release_gate.decide(_paired({"wer": [0.0] * 4, "dnsmos_ovrl": [0.0] * 4,
                                          "speaker_similarity": [math.nan] * 4}))
    assert result.passed and result.not_measured == ("speaker_similarity",)
    headline = result.headline()
    assert "NOT MEASURED: speaker similarity" in headline
    assert "within tolerance: WER, DNSMOS OVRL;" in headline
    assert "Not measured" in release_gate.verdict_html(result)


def test_noise_floor_gives_worst_of_the_same_build_runs_plus_slack():
    from honora_tts.qa.speech import noise_floor

    rng = np.random.default_rng(3)
    base = pd.DataFrame({"voice": ["v"] * 12, "item": [f"i{k}" for k in range(12)],
                         "verdict": ["speech"] * 12, "reason": [""] * 12,
                         "language": ["en"] * 12, "text": ["t"] * 12})
    runs = [base.assign(wer=rng.uniform(0, 0.2, 12), dnsmos_ovrl=rng.normal(3, 0.05, 12),
                        speaker_similarity=math.nan) for _ in range(3)]
    floor = noise_floor.noise_floor(runs)
    assert floor.runs == 3 and floor.comparisons == 3
    by = {m.measure: m for m in floor.measures}
    assert by["wer"].measured and by["wer"].tolerance == pytest.approx(
        max(noise_floor.MIN_TOLERANCE["wer"], by["wer"].worst * noise_floor.SLACK))
    assert not by["speaker_similarity"].measured
    assert by["speaker_similarity"].tolerance == release_gate.DEFAULT_TOLERANCES.speaker_similarity
    assert "NOT MEASURED" in "\n".join(floor.lines())


def test_noise_floor_file_round_trips_into_tolerances(tmp_path):
    from honora_tts.qa.speech import noise_floor

    floor = noise_floor.NoiseFloor(2, 1, (
        noise_floor.MeasureNoise("wer", 4, 0.04, 0.02, 0.05, True),
        noise_floor.MeasureNoise("speaker_similarity", 0, None, None, 0.03, False),
        noise_floor.MeasureNoise("dnsmos_ovrl", 4, 0.08, 0.03, 0.1, True)))
    path = noise_floor.write_noise_floor(floor, tmp_path / "noise_floor.json")
    tolerances = noise_floor.read_tolerances(path)
    assert (tolerances.wer, tolerances.dnsmos_ovrl) == (0.05, 0.1)
    assert str(path) in tolerances.source
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(release_gate.GateInputError, match="--noise-floor"):
        noise_floor.read_tolerances(tmp_path / "bad.json")


def test_heatmap_colour_bar_is_in_the_per_column_units_it_shows():
    paired = _paired({"wer": [0.2, -0.1, 0.0], "dnsmos_ovrl": [-0.5, 0.1, 0.0]})
    figure = release_gate.plot_sentence_heatmap(paired)
    heat, bar = figure.axes
    labels = [t.get_text() for t in heat.get_xticklabels()]
    assert labels[0].startswith("wer") and "full colour = 0.2" in labels[0]
    assert "full colour = 0.5" in labels[1]
    assert "largest change" in bar.get_ylabel()
    assert [t.get_text().split("\n")[0] for t in bar.get_yticklabels()][2] == "no change"


def test_bootstrap_interval_and_wilcoxon():
    rng = np.random.default_rng(0)
    shifted = rng.normal(0.3, 0.1, 30)
    low, high = release_gate.bootstrap_ci(shifted)
    assert low < shifted.mean() < high and low > 0.2
    assert release_gate.wilcoxon_p(shifted) < 0.001
    assert release_gate.wilcoxon_p(np.zeros(5)) == 1.0
    assert math.isnan(release_gate.wilcoxon_p(np.array([0.1])))


@pytest.mark.slow
@pytest.mark.integration
def test_an_endpoint_source_speaks_the_golden_set_into_a_clip_directory(localpod, tmp_path):
    from honora_tts.qa.speech.gate_run import measure, resolve_clips

    items = release_gate.select_items(items=["en-question", "de-question"])
    clips = resolve_clips(localpod.endpoint_id, "candidate", tmp_path, items, {},
                          api_base=localpod.base_url, api_key=localpod.api_key,
                          max_new_tokens=8, progress=False)
    assert sorted(clips["item"]) == ["de-question", "en-question"]
    assert set(clips["voice"]) == {release_gate.NO_VOICE}
    assert all(Path(p).parent == tmp_path / "candidate" for p in clips["path"])
    judged = measure(clips, "candidate", progress=False)
    # The tiny model's random weights: noise, and the verdict says so.
    assert set(judged["verdict"]) == {"not_speech"}
