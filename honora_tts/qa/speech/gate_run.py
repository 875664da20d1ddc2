"""One release-gate run, shared by ``honora-tts gate`` and notebook 04: resolve baseline and
candidate (a clip directory, or an endpoint id whose golden-set clips are synthesized first),
measure both, pair, decide, write the results under ``out_dir``; and the noise-floor run that
gives the gate its tolerances (:func:`run_noise_floor`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from honora_tts.qa.speech.golden_set import GoldenItem
from honora_tts.qa.speech.noise_floor import (
    NOISE_FLOOR_FILE,
    NoiseFloor,
    noise_floor,
    write_noise_floor,
)
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
                  max_new_tokens: int = 0, seed: int | None = None,
                  progress: bool = True) -> pd.DataFrame:
    """The clip table of ``source``: a clip directory as it is, else an endpoint id
    (``localpod`` or a RunPod id) that speaks the golden set into ``out_dir/label`` (with
    ``seed`` when given)."""
    if Path(source).is_dir():
        return clips_from_directory(source, items, voices)
    from honora_tts.qa import connection
    from honora_tts.qa.verify_command import LOCALPOD_MAX_NEW_TOKENS

    if not max_new_tokens and source.strip().lower() == connection.LOCALPOD:
        max_new_tokens = LOCALPOD_MAX_NEW_TOKENS  # the tiny model never stops by itself

    client = connection.connect(source, api_base, api_key)
    params: dict[str, Any] = {"max_new_tokens": int(max_new_tokens)} if max_new_tokens else {}
    if seed is not None:
        params["seed"] = int(seed)
    return synthesize_clips(client, out_dir / label, items, voices or None, params=params or None,
                            progress=progress)


def measure(clips: pd.DataFrame, label: str, *, asr_model: str | None = None,
            progress: bool = True) -> pd.DataFrame:
    return speech_verdicts(clips, asr_model=asr_model, progress=progress,
                           description=f"measuring {label}")


def judges_of(asr_model: str | None) -> dict[str, Any]:
    """The judge models the measures used, pinned by hash (:mod:`.judges`)."""
    from honora_tts.qa.speech.asr import asr_backend
    from honora_tts.qa.speech.judges import judge_models

    return judge_models(asr_backend(asr_model))


def run_noise_floor(sources: Sequence[str], out_dir: str | Path, *, runs: int = 2,
                    voices: dict[str, str] | None = None, languages: Sequence[str] = (),
                    items: Sequence[str] = (), api_base: str = "", api_key: str = "",
                    max_new_tokens: int = 0, asr_model: str | None = None,
                    progress: bool = True) -> NoiseFloor:
    """The gate's noise floor (:mod:`.noise_floor`) from one build: an endpoint spoken
    ``runs`` times with seeds 1..runs, or two or more clip directories of the same build.
    Writes ``noise_floor.json`` (what ``gate --tolerances`` reads) and ``clips.csv``."""
    from honora_tts.qa.artifacts import write_csv

    voices = dict(voices or {})
    check_voice_names(voices)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = select_items(languages, items)
    plan: list[tuple[str, str, int | None]]
    if len(sources) == 1 and not Path(sources[0]).is_dir():
        plan = [(f"run{seed}", sources[0], seed) for seed in range(1, max(2, runs) + 1)]
    else:
        plan = [(f"run{i + 1}", source, None) for i, source in enumerate(sources)]
    tables = []
    for label, source, seed in plan:
        clips = resolve_clips(source, label, out, chosen, voices, api_base=api_base,
                              api_key=api_key, max_new_tokens=max_new_tokens, seed=seed,
                              progress=progress)
        tables.append(measure(clips, label, asr_model=asr_model, progress=progress))
    floor = noise_floor(tables)
    floor = NoiseFloor(floor.runs, floor.comparisons, floor.measures, floor.slack,
                       {**floor.details, "sources": [p[1] for p in plan],
                        "seeds": [p[2] for p in plan], "judges": judges_of(asr_model)})
    write_noise_floor(floor, out / NOISE_FLOOR_FILE)
    write_csv(pd.concat([t.assign(run=label) for t, (label, _, _) in zip(tables, plan,
                                                                          strict=True)]),
              out / "clips.csv")
    return floor


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
    result = decide(paired, tolerances, judges=judges_of(asr_model))
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
