"""Speech verdicts of a table of clips (one row per clip): what notebook 02, the release gate
and deploy verification measure in batches, with a progress bar. The models load once per
process; a clip whose audio, text, language, reference and recogniser were judged before in
this process (a gate's baseline directory measured again, two identical clips) is not
measured twice: the measures are deterministic functions of those."""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honora_tts.qa.speech.thresholds import SpeechThresholds, load_thresholds

#: Columns added to a clip table, in this order.
SPEECH_COLUMNS = ("verdict", "text_check", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
                  "dnsmos_p808", "wer", "cer", "speaker_similarity", "speech_s",
                  "expected_min_s", "expected_max_s", "trailing_audio_s", "letters_per_s",
                  "clipping_ratio", "loudness_lufs", "missing_tail", "extra_tail",
                  "repeat_count", "transcript", "reason", "text_reason")
_JUDGED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_JUDGED_LOCK = threading.Lock()
_JUDGED_MAX = 512


def _digest(samples: np.ndarray, rate: int) -> str:
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()
                          + str(rate).encode()).hexdigest()


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(str(value))


def speech_verdicts(clips: pd.DataFrame, *, language: str = "en",
                    thresholds: SpeechThresholds | None = None, asr_model: str | None = None,
                    progress: bool = True, description: str = "speech checks") -> pd.DataFrame:
    """Judge every clip of a table with columns ``path`` and ``text`` (optionally
    ``language``, else ``language``; and ``reference``, a voice file). Returns the table with
    :data:`SPEECH_COLUMNS` added (and replaced where present); a clip without text is not
    judged (its measures are empty)."""
    from tqdm.auto import tqdm

    from honora_tts.qa.audio_metrics import read_audio
    from honora_tts.qa.speech.speech_verdict import check_clip

    for column in ("path", "text"):
        if column not in clips.columns:
            raise ValueError(f"clips need a {column!r} column; got {list(clips.columns)}")
    t = thresholds or load_thresholds()
    references: dict[str, tuple[Any, int]] = {}
    rows = []
    for clip in tqdm(clips.to_dict("records"), desc=description, disable=not progress,
                     unit="clip"):
        if not _present(clip.get("text")):
            rows.append({"verdict": None, "text_check": None,
                         "reason": "no text known for this clip: not judged"})
            continue
        try:
            samples, rate = read_audio(clip["path"])
        except ValueError as exc:  # a clip a worker answered with junk: judged, not a crash
            rows.append({"verdict": "not_speech", "text_check": "not_verified",
                         "reason": str(exc), "text_reason": "the clip could not be read"})
            continue
        reference = None
        if _present(clip.get("reference")):
            voice = str(clip["reference"])
            if voice not in references:
                references[voice] = read_audio(Path(voice))
            reference = references[voice]
        lang = str(clip["language"]) if _present(clip.get("language")) else language
        key = (_digest(samples, rate), str(clip["text"]), lang,
               _digest(*reference) if reference else "", asr_model or "", id(t))
        with _JUDGED_LOCK:
            verdict = _JUDGED.get(key)
        if verdict is None:
            verdict = check_clip(samples, rate, str(clip["text"]), lang, reference=reference,
                                 thresholds=t, asr_model=asr_model)
            with _JUDGED_LOCK:
                _JUDGED[key] = verdict
                while len(_JUDGED) > _JUDGED_MAX:
                    _JUDGED.popitem(last=False)
        ev = verdict.evidence
        rows.append({"verdict": str(verdict.verdict), "text_check": str(verdict.text_check),
                     **{k: ev[k] for k in SPEECH_COLUMNS[2:-2]},
                     "reason": "; ".join(verdict.reasons), "text_reason": verdict.text_reason})
    measured = pd.DataFrame(rows, index=clips.index, columns=list(SPEECH_COLUMNS))
    return pd.concat([clips.drop(columns=[c for c in measured if c in clips]), measured],
                     axis=1)
