"""Notebook 04 under papermill on two clip directories (no endpoint): a candidate whose clip is
cut short FAILs the gate, with the plots and summary written."""

import json

import pytest
from notebook_outputs import output_text

from honora_tts import audio
from honora_tts.qa import notebook_runner
from honora_tts.qa.speech import degradations, espeak
from honora_tts.qa.speech.golden_set import golden_set

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

ITEMS = ["en-question", "de-question"]


def _write_clips(root, cut: bool) -> None:
    for item in golden_set():
        if item.id in ITEMS:
            voice = "en-us+m1" if item.language == "en" else "de+m1"
            samples, rate = espeak.speak(item.text, voice)
            if cut and item.language == "en":
                samples = degradations.cut(samples, 0.5)
            path = root / "m1" / f"{item.id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(audio.encode(samples, rate, "wav"))


def test_release_gate_notebook_fails_a_truncating_candidate(tmp_path):
    if not espeak.espeak_available():
        pytest.skip("espeak-ng is not installed")
    _write_clips(tmp_path / "baseline", cut=False)
    _write_clips(tmp_path / "candidate", cut=True)
    out = tmp_path / "results"
    result = notebook_runner.run_notebook(
        "04_release_gate", tmp_path / "04.executed.ipynb",
        {"baseline": str(tmp_path / "baseline"), "candidate": str(tmp_path / "candidate"),
         "items": ITEMS, "artifacts_dir": str(out)},
        cwd=tmp_path, execution_timeout=240,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "FAIL" and summary["pairs"] == 2
    # Cut in half; Whisper may complete the sentence it hears ("... where the theory is?"),
    # and then the clip reads as spoken too fast: either way a catastrophic clip, named.
    assert any(("truncated" in r or "too_fast" in r) and "m1/en-question" in r
               for r in summary["reasons"]), summary["reasons"]
    for name in ("paired_deltas.png", "sentence_heatmap.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert (out / "deltas.csv").exists() and (out / "paired_clips.csv").exists()
    import nbformat

    text = output_text(nbformat.read(str(result.output_path), as_version=4))
    assert "GATE: FAIL" in text
