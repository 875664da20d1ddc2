"""One release-gate run, shared by ``honora-tts gate`` and notebook 04: resolve baseline and
candidate (a clip directory, or an endpoint id whose golden-set clips are synthesized first),
measure both, pair, decide, write the results under ``out_dir``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from honora_tts.qa.speech.golden_set import GoldenItem
from honora_tts.qa.speech.release_gate import (
    DEFAULT_TOLERANCES,
    GateResult,
    Tolerances,
    check_voice_names,
    clips_from_directory,
    decide,
    pair,
    select_items,
    synthesize_clips,
)
from honora_tts.qa.speech.speech_table import speech_verdicts


@dataclass
class GateRun:
    """Everything one run produced (tables, result, figures)."""

    baseline: pd.DataFrame
    candidate: pd.DataFrame
    paired: pd.DataFrame
    result: GateResult
    figures: dict[str, Any]


def resolve_clips(source: str, label: str, out_dir: Path, items: Sequence[GoldenItem],
                  voices: dict[str, str], *, api_base: str = "", api_key: str = "",
                  max_new_tokens: int = 0, progress: bool = True) -> pd.DataFrame:
    """The clip table of ``source``: a clip directory as it is, else an endpoint id
    (``localpod`` or a RunPod id) that speaks the golden set into ``out_dir/label``."""
    if Path(source).is_dir():
        return clips_from_directory(source, items, voices)
    from honora_tts.qa import connection
    from honora_tts.qa.verify_command import LOCALPOD_MAX_NEW_TOKENS

    if not max_new_tokens and source.strip().lower() == connection.LOCALPOD:
        max_new_tokens = LOCALPOD_MAX_NEW_TOKENS  # the tiny model never stops by itself

    client = connection.connect(source, api_base, api_key)
    params = {"max_new_tokens": int(max_new_tokens)} if max_new_tokens else None
    return synthesize_clips(client, out_dir / label, items, voices or None, params=params,
                            progress=progress)


def measure(clips: pd.DataFrame, label: str, *, asr_model: str | None = None,
            progress: bool = True) -> pd.DataFrame:
    return speech_verdicts(clips, asr_model=asr_model, progress=progress,
                           description=f"measuring {label}")


def run_gate(baseline: str, candidate: str, out_dir: str | Path, *,
             voices: dict[str, str] | None = None, languages: Sequence[str] = (),
             items: Sequence[str] = (), tolerances: Tolerances = DEFAULT_TOLERANCES,
             api_base: str = "", api_key: str = "", max_new_tokens: int = 0,
             asr_model: str | None = None, progress: bool = True,
             plots: bool = True) -> GateRun:
    """Resolve, measure, pair and decide; write ``summary.json``, ``deltas.csv``,
    ``clips.csv`` and the plots under ``out_dir``."""
    from honora_tts.qa.artifacts import save_figure, write_csv, write_json
    from honora_tts.qa.speech import release_gate

    voices = dict(voices or {})
    check_voice_names(voices)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = select_items(languages, items)
    sources = {label: resolve_clips(source, label, out, chosen, voices, api_base=api_base,
                                    api_key=api_key, max_new_tokens=max_new_tokens,
                                    progress=progress)
               for label, source in (("baseline", baseline), ("candidate", candidate))}
    tables = {label: measure(clips, label, asr_model=asr_model, progress=progress)
              for label, clips in sources.items()}
    paired = pair(tables["baseline"], tables["candidate"])
    result = decide(paired, tolerances)
    figures: dict[str, Any] = {}
    if plots:
        figures["paired_deltas"] = release_gate.plot_paired_deltas(paired, result)
        figures["sentence_heatmap"] = release_gate.plot_sentence_heatmap(paired)
        for name, figure in figures.items():
            save_figure(figure, out / f"{name}.png")
    write_csv(result.deltas_table(), out / "deltas.csv")
    write_csv(pd.concat([tables["baseline"].assign(build="baseline"),
                         tables["candidate"].assign(build="candidate")]), out / "clips.csv")
    write_json(release_gate.summary(result, baseline=baseline, candidate=candidate,
                                    parameters={"voices": voices, "languages": list(languages),
                                                "items": list(items)}),
               out / "summary.json")
    return GateRun(tables["baseline"], tables["candidate"], paired, result, figures)
