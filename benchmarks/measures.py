"""Summaries of repeated measurements: medians and spread, never a single number alone."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Summary:
    """n, median (p50), p95, interquartile range, min, max and mean of some samples."""

    n: int
    p50: float
    p95: float
    iqr: float
    min: float
    max: float
    mean: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(values: Iterable[float]) -> Summary:
    """Summary of the finite values (NaN everywhere when there are none)."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if data.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan)
    q25, q50, q75, q95 = np.percentile(data, [25, 50, 75, 95])
    return Summary(
        n=int(data.size), p50=float(q50), p95=float(q95), iqr=float(q75 - q25),
        min=float(data.min()), max=float(data.max()), mean=float(data.mean()),
    )


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is not positive."""
    if not denominator or denominator <= 0 or not math.isfinite(denominator):
        return math.nan
    return numerator / denominator


def paired_ratios(numerators: Iterable[float], denominators: Iterable[float]) -> Summary:
    """Summary of per-pair ratios (pairs measured next to each other share the machine's
    load at that moment, which a ratio of two medians does not)."""
    return summarize(ratio(a, b) for a, b in zip(numerators, denominators, strict=True))


class Stopwatch:
    """Milliseconds since creation (``perf_counter``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0


@contextmanager
def timed(into: list[float]) -> Iterator[None]:
    """Append the block's wall time in milliseconds to ``into``."""
    watch = Stopwatch()
    try:
        yield
    finally:
        into.append(watch.ms())


def time_calls(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall time (ms) of ``repeats`` calls of ``fn``."""
    samples: list[float] = []
    for _ in range(repeats):
        with timed(samples):
            fn()
    return samples
