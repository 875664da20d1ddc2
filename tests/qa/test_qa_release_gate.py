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

from honora_tts.qa.speech import espeak, release_gate
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
        return espeak.with_noise(samples, snr_db=5.0)
    if item_id == "en-names":
        return espeak.cut(samples, 0.5)
    return espeak.time_stretched(samples, 1.35)


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


def _paired(deltas: dict[str, list[float]], verdicts=None) -> pd.DataFrame:
    n = len(next(iter(deltas.values())))
    frame = pd.DataFrame({"voice": ["v"] * n, "item": [f"i{k}" for k in range(n)],
                          "verdict_base": ["speech"] * n,
                          "verdict_cand": verdicts or ["speech"] * n,
                          "reason_cand": [""] * n})
    for measure, values in deltas.items():
        frame[f"{measure}_base"] = 0.5
        frame[f"{measure}_cand"] = 0.5 + np.asarray(values)
        frame[f"{measure}_delta"] = np.asarray(values)
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
