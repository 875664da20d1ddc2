"""Where a batched model runs its vocoder: beside the GPT decoding, or between its steps.

With batching, every request's HiFi-GAN work (each streamed chunk, each finished piece) would
otherwise run on the batch scheduler's thread between two decoding steps, holding up every row
of the batch while one request's audio is made. A :class:`VocoderLane` runs that work on a
thread of its own instead, one task at a time in the order given (so a stream's chunks stay in
order), while the scheduler goes on stepping:

- on CUDA the two threads' kernels share the device, and the lane's host work (launches, copies
  to the CPU) overlaps the decoding's;
- on a CPU it pays where the process leaves a core to it: torch runs each calling thread's
  operations on that thread when it has one intra-op thread per caller, so the decoding keeps
  its cores and the vocoder takes the spare one. Where torch's intra-op threads already take
  every core, a second caller would only oversubscribe them, and the lane runs its tasks on the
  scheduler thread as before (:func:`lane_pays`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def lane_pays(device: str) -> bool:
    """True on CUDA, and on a CPU when torch's intra-op threads leave at least one core free."""
    if device.startswith("cuda"):
        return True
    import torch

    return torch.get_num_threads() < usable_cores()


class VocoderLane:
    """Runs vocoder tasks in submission order: on a thread of its own (``threaded``), or through
    ``inline`` (the batch scheduler's ``call``, which runs them between decoding steps)."""

    def __init__(self, inline: Callable[[Callable[[], Any]], Future[Any]], *, threaded: bool,
                 name: str = "honora-vocoder"):
        self.threaded = threaded
        self._inline = inline
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) if threaded \
            else None

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn``; its result or exception comes back in the future."""
        if self._pool is None:
            return self._inline(fn)
        return self._pool.submit(fn)

    def close(self) -> None:
        """Finish the queued tasks and stop the thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
