"""Deploy verification's "speaks" check: the tiny-text and voice outputs and a sample of the
stress outputs are judged (:mod:`.speech_verdict`). For a real model a clip that is not
speech, not the text, cut short or running on is a FAIL with the evidence and the advice for
its cause; for a random-weights model (the offline tiny model) the check still runs and its
expected failure is a WARN that says so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from honora_tts.qa.verification import Advice, CheckResult, Status, is_random_weights_model

CHECK_NAME = "speaks"


@dataclass(frozen=True)
class SpokenClip:
    """An output to judge: its file, the text and language it was asked to say, and the
    reference voice it should match (None: no voice judgement, e.g. a synthetic voice)."""

    name: str
    path: Path
    text: str
    language: str = "en"
    reference: Path | None = None


def stress_sample(records: pd.DataFrame, text: str, count: int, language: str = "en"
                  ) -> list[SpokenClip]:
    """Up to ``count`` stress outputs (rows with an ``audio_path``), spread over the run."""
    if count <= 0 or "audio_path" not in records:
        return []
    saved = records[records["audio_path"].fillna("").astype(str) != ""]
    if saved.empty:
        return []
    step = max(1, len(saved) // count)
    chosen = saved.iloc[::step].head(count)
    return [SpokenClip(f"stress #{int(r['index'])}", Path(r["audio_path"]), text, language)
            for _, r in chosen.iterrows()]


def judge_clips(clips: Sequence[SpokenClip], *, progress: bool = True) -> pd.DataFrame:
    """One row per clip: name, path, text, and the speech verdict columns."""
    from honora_tts.qa.speech.speech_table import speech_verdicts

    table = pd.DataFrame([{"clip": c.name, "path": str(c.path), "text": c.text,
                           "language": c.language,
                           "reference": str(c.reference) if c.reference else ""}
                          for c in clips])
    if table.empty:
        return table
    return speech_verdicts(table, progress=progress, description="speaks check")


def speaks_check(judged: pd.DataFrame, model_name: str | None) -> CheckResult:
    """PASS when every clip is speech; otherwise FAIL (real model) or WARN (random
    weights), with each failing clip's verdict and evidence in the summary and details."""
    if judged.empty:
        return CheckResult(CHECK_NAME, Status.FAIL, "no audio to judge: every synthesis failed",
                           error_type="NoAudio")
    bad = judged[judged["verdict"] != "speech"]
    text_counts = judged["text_check"].value_counts().to_dict()
    texts = ", ".join(f"{v} {k}" for k, v in sorted(text_counts.items()))
    details: dict[str, Any] = {
        "clips": _evidence(judged), "text_checks": text_counts,
        "failed": bad["clip"].tolist(),
    }
    if bad.empty:
        note = "" if "not_verified" not in text_counts else (
            "; text not verified where no trusted recogniser covers the language")
        return CheckResult(CHECK_NAME, Status.PASS,
                           f"{len(judged)} of {len(judged)} clips are speech (text: {texts})"
                           f"{note}", details=details)
    evidence = "; ".join(f"{r['clip']}: {r['verdict']} ({r['reason']})"
                         for _, r in bad.iterrows())
    summary = f"{len(bad)} of {len(judged)} clips are not speech of their text: {evidence}"
    if is_random_weights_model(model_name):
        return CheckResult(
            CHECK_NAME, Status.WARN,
            f"expected for the random-weights model {model_name} (its audio is noise): "
            f"{summary}", details=details)
    return CheckResult(CHECK_NAME, Status.FAIL, summary, error_type="NotSpeaking",
                       details=details)


def _evidence(judged: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["clip", "verdict", "text_check", "reason", "text_reason", "dnsmos_ovrl",
               "dnsmos_sig", "dnsmos_p808", "wer", "speech_s", "expected_min_s",
               "expected_max_s", "speaker_similarity", "transcript"]
    return judged[[c for c in columns if c in judged]].to_dict("records")


#: Known causes and fixes per verdict.
_FIXES = {
    "not_speech": (
        "The model emits noise or silence instead of speech.",
        ("Check the model the workers loaded (the census's model column, HONORA_XTTS_MODEL): "
        "random or partially downloaded weights, another checkpoint's config, NaN from fp16 "
        "on the GPU (try HONORA_FP16=0). Listen to the saved clips; compare the checkpoint's "
        "sha256 with the release's.")),
    "truncated": (
        "The audio stops before the text ends.",
        ("Leave max_new_tokens unbound (0) or raise it; keep sentences under the language's "
        "split limit so the worker splits them; for streams, check that every chunk reached "
        "the client.")),
    "runaway": (
        "The audio runs on after the text (the model did not stop: babble, repetition).",
        ("Bound max_new_tokens; keep repetition_penalty at XTTS's default (10) or higher and "
        "temperature at 0.65-0.75; end each text with punctuation; very short texts ramble "
        "most: give them a full sentence.")),
    "wrong_text": (
        "The audio says another text than the one sent.",
        ("Check the language code sent with the text, the worker's text splitting and "
        "normalisation, and that outputs are not mixed up between jobs (output object keys, "
        "request ids).")),
    "distorted": (
        "The audio is clipped or driven too loud: samples pile up at full scale.",
        ("Check the output gain and the encoder (a float clip written without limiting, fp16 "
        "overflow on the GPU: try HONORA_FP16=0), and that the voice reference is not itself "
        "clipped; listen to the saved clips.")),
    "too_fast": (
        "Every word is there but spoken far too fast for the text.",
        ("Check the speed parameter sent (params.speed, HONORA_SYNTHESIS_PARAMS) and the "
        "output sample rate the audio is labelled with (audio played at the wrong rate).")),
    "too_slow": (
        "Every word is there but spoken far too slowly for the text.",
        ("Check the speed parameter sent and the sample rate the audio is labelled with; a "
        "voice reference with long pauses slows XTTS down.")),
    "wrong_voice": (
        "The voice does not match the reference voice.",
        ("Check that the worker used the voice sent (voice_url reached it; not the default "
        "voice) and that the voice cache keys latents by the voice's content hash.")),
}


def advice(check: CheckResult) -> list[Advice]:
    """Troubleshooting for a failed speaks check (none for PASS or WARN)."""
    if check.status != Status.FAIL:
        return []
    by_verdict: dict[str, list[str]] = {}
    for clip in check.details.get("clips", []):
        if clip["verdict"] != "speech":
            by_verdict.setdefault(clip["verdict"], []).append(
                f"{clip['clip']}: {clip['verdict']}: {clip['reason']}")
    if not by_verdict and check.error_type == "NoAudio":
        return []
    return [Advice(f"speech_{verdict}", *_FIXES[verdict], tuple(items))
            for verdict, items in by_verdict.items()]


def verification_clips(outputs: dict[str, Path], texts: dict[str, str], *,
                       voice_file: Path | None = None, voiced: Sequence[str] = (),
                       records: pd.DataFrame | None = None, stress_text: str = "",
                       stress_count: int = 0, language: str = "en") -> list[SpokenClip]:
    """The clips notebook 01 judges: each saved output (by name, with its text; those named in
    ``voiced`` judged against ``voice_file`` when one is given) and a sample of the stress
    outputs."""
    clips = [SpokenClip(name, Path(path), texts[name], language,
                        voice_file if voice_file and name in voiced else None)
             for name, path in outputs.items() if name in texts]
    if records is not None:
        clips += stress_sample(records, stress_text, stress_count, language)
    return clips
