"""What a benchmark run was asked for (``python -m benchmarks`` flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import DEFAULT_OUT


@dataclass(frozen=True)
class BenchOptions:
    #: Smallest parameters (the test smoke run): seconds per benchmark where possible.
    quick: bool = False
    #: P2, P4, P9: also (P4) or instead (P2, P9) the full-size XTTS architecture: its figures
    #: take most of an hour on 2 CPU cores, so ``make bench`` leaves them out.
    full_size: bool = False
    out_dir: Path = DEFAULT_OUT
    #: P6: ``cpu``, ``cuda`` or ``cuda:N``.
    device: str = "cpu"
    #: P6: ``off``, ``on`` or ``both`` (fp16 needs CUDA).
    fp16: str = "off"
    #: P6: ``tiny``, ``full`` (full-size architecture, random weights) or a checkpoint directory.
    model: str | None = None
    #: Overrides each benchmark's repeat count.
    repeats: int | None = None
    #: torch threads for the benchmarks that run the model in their own process on a CPU
    #: (default 1: see :data:`benchmarks.IN_PROCESS_THREADS`).
    threads: int | None = None

    def repeats_or(self, default: int, quick: int) -> int:
        if self.repeats is not None:
            return max(1, self.repeats)
        return quick if self.quick else default
