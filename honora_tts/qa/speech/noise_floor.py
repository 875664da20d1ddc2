"""The release gate's tolerances from the build's own noise: the golden set spoken by one build
two or more times (different seeds), each run measured, every pair of runs compared as the
gate compares a baseline with a candidate. A same-build pair differs only by sampling and the
judges' noise, so the worst a pair looked is what "no change" can look like.

Per gated measure: ``worst`` = the largest worse-direction bound of a same-build pair's 95 %
confidence interval (the furthest "regression" the noise produced), and ``tolerance`` = worst x
:data:`SLACK`, at least :data:`MIN_TOLERANCE` (serving projects gate on the worst of N
same-build runs plus slack). The gate then fails a measure only where the *nearest* bound of
the candidate's interval lies beyond that tolerance. A measure the runs did not measure (speaker
similarity without reference voices) keeps the default tolerance and is named as such.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from honora_tts.qa.speech.release_gate import (
    DEFAULT_TOLERANCES,
    GateInputError,
    Tolerances,
    deltas,
    pair,
)

SLACK = 1.25
MIN_TOLERANCE = {"wer": 0.01, "speaker_similarity": 0.01, "dnsmos_ovrl": 0.03}
NOISE_FLOOR_FILE = "noise_floor.json"


@dataclass(frozen=True)
class MeasureNoise:
    """One gated measure's same-build noise and the tolerance taken from it."""

    measure: str
    pairs: int
    worst: float | None
    worst_mean: float | None
    tolerance: float
    measured: bool


@dataclass(frozen=True)
class NoiseFloor:
    """What the same-build runs showed, and the tolerances the gate reads from them."""

    runs: int
    comparisons: int
    measures: tuple[MeasureNoise, ...]
    slack: float = SLACK
    details: dict[str, Any] = field(default_factory=dict)

    def tolerances(self, source: str = "noise floor") -> Tolerances:
        by = {m.measure: m.tolerance for m in self.measures}
        return Tolerances(wer=by["wer"], speaker_similarity=by["speaker_similarity"],
                          dnsmos_ovrl=by["dnsmos_ovrl"], source=source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [(f"noise floor: {self.runs} runs of one build, {self.comparisons} same-build "
               f"comparison(s); tolerance = worst x {self.slack}, at least the minimum")]
        for m in self.measures:
            if m.measured:
                out.append(f"  {m.measure}: worst {m.worst:+.4f} (mean {m.worst_mean:+.4f}) over "
                           f"{m.pairs} pairs -> tolerance {m.tolerance:.4f}")
            else:
                out.append(f"  {m.measure}: NOT MEASURED by these runs -> default "
                           f"{m.tolerance:.4f}")
        return out


def noise_floor(runs: Sequence[pd.DataFrame], *, slack: float = SLACK) -> NoiseFloor:
    """The noise floor of two or more measured runs of one build (see the module)."""
    if len(runs) < 2:
        raise GateInputError("a noise floor needs at least two runs of the same build")
    defaults = {r.measure: r.limit for r in DEFAULT_TOLERANCES.rules()}
    worst: dict[str, list[float]] = {m: [] for m in defaults}
    means: dict[str, list[float]] = {m: [] for m in defaults}
    pairs: dict[str, int] = dict.fromkeys(defaults, 0)
    comparisons = 0
    for first, second in itertools.combinations(runs, 2):
        comparisons += 1
        for d in deltas(pair(first, second)):
            if not d.gated or not d.measured:
                continue
            worst[d.measure].append(max(d.worse(d.ci_low), d.worse(d.ci_high)))
            means[d.measure].append(abs(d.mean_delta))
            pairs[d.measure] = max(pairs[d.measure], d.pairs)
    measures = []
    for measure, default in defaults.items():
        if worst[measure]:
            far = max(worst[measure])
            measures.append(MeasureNoise(measure, pairs[measure], far, max(means[measure]),
                                         max(MIN_TOLERANCE[measure], far * slack), True))
        else:
            measures.append(MeasureNoise(measure, 0, None, None, default, False))
    return NoiseFloor(len(runs), comparisons, tuple(measures), slack,
                      {"made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def write_noise_floor(floor: NoiseFloor, path: Path) -> Path:
    from honora_tts.qa.artifacts import write_json

    write_json(floor.to_dict(), path)
    return path


def read_tolerances(path: str | Path) -> Tolerances:
    """The tolerances of a ``noise_floor.json`` (what ``honora-tts gate --noise-floor``
    writes), named after the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        floor = NoiseFloor(int(data["runs"]), int(data["comparisons"]),
                           tuple(MeasureNoise(**m) for m in data["measures"]),
                           float(data.get("slack", SLACK)), dict(data.get("details", {})))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GateInputError(f"cannot read the noise floor {path}: {exc}; make one with "
                             "`honora-tts gate --noise-floor --baseline SOURCE`") from exc
    return floor.tolerances(source=f"noise floor {path}")
