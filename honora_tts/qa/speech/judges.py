"""The judge models a speech check ran, pinned by the SHA-256 of their weight files, so that a
release-gate report says exactly which models judged it (a gate run with other judges is not
comparable): DNSMOS (speechmos's ONNX files), the recogniser (Whisper's ``model.bin``, or
pocketsphinx's acoustic model, language model and dictionary), resemblyzer's
``pretrained.pt``, and the calibration file the verdicts used. Hashes are computed once per
file per process."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from honora_tts.files import file_sha256


@lru_cache(maxsize=32)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


def pinned_sha256(path: str | Path) -> str:
    """SHA-256 of a file, cached per (path, size, mtime)."""
    facts = os.stat(path)
    return _hash(str(path), facts.st_size, facts.st_mtime_ns)


def _package_dir(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{module} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _files(description: str, files: list[Path]) -> dict[str, Any]:
    return {"model": description,
            "files": {f.name: pinned_sha256(f) for f in files if f.is_file()}}


def judge_models(asr: Any) -> dict[str, dict[str, Any]]:
    """What judged: ``quality``, ``asr``, ``voice`` and ``calibration``, each with its model
    and the SHA-256 of its files; ``asr`` is the recogniser the checks ran."""
    from honora_tts.qa.speech.predicted_quality import MODEL as DNSMOS_MODEL
    from honora_tts.qa.speech.thresholds import CALIBRATION_FILE

    dnsmos = _package_dir("speechmos") / "dnsmos_models"
    judges = {"quality": _files(DNSMOS_MODEL, [dnsmos / "sig_bak_ovr.onnx",
                                               dnsmos / "model_v8.onnx"])}
    if getattr(asr, "model_path", None):
        judges["asr"] = _files(asr.model, [Path(asr.model_path) / "model.bin"])
    else:
        model = _package_dir("pocketsphinx") / "model" / "en-us"
        judges["asr"] = _files(asr.model, [model / "en-us" / "mdef", model / "en-us.lm.bin",
                                           model / "cmudict-en-us.dict"])
    judges["voice"] = _files("resemblyzer VoiceEncoder",
                             [_package_dir("resemblyzer") / "pretrained.pt"])
    judges["calibration"] = _files("honora_tts/qa/speech/calibration.json", [CALIBRATION_FILE])
    return judges
