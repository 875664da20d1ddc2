"""How many rows a decoding batch holds: by default 1 on a CPU (a batch only pays where the
device has spare compute per weight read; a worker told to hold more requests,
``HONORA_CONCURRENCY``, batches them), and on CUDA as many rows as half the free device memory
holds at the longest sequence the GPT can reach (its whole key/value cache), at most
:data:`MAX_DEFAULT_ROWS`."""

from __future__ import annotations

from typing import Any

MAX_DEFAULT_ROWS = 64
#: Share of the free device memory the key/value caches may take by default.
MEMORY_SHARE = 0.5


def kv_bytes_per_row(gpt: Any, *, fp16: bool) -> int:
    """Key/value cache bytes of one row at the GPT's longest sequence (conditioning latents,
    text and audio codes at their limits)."""
    longest = 32 + int(gpt.max_text_tokens) + int(gpt.max_mel_tokens)
    per_token = 2 * int(gpt.layers) * int(gpt.model_dim) * (2 if fp16 else 4)
    return longest * per_token


def default_max_batch(gpt: Any, device: str, *, fp16: bool = False) -> int:
    """1 on a CPU; on CUDA from the free memory of ``device`` (see the module docstring)."""
    if not device.startswith("cuda"):
        return 1
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    rows = int(free * MEMORY_SHARE) // max(1, kv_bytes_per_row(gpt, fp16=fp16))
    return max(1, min(MAX_DEFAULT_ROWS, rows))


def concurrency_and_rows(gpt: Any, device: str, *, fp16: bool = False,
                         requested: int | None = None) -> tuple[int, int]:
    """How many requests a caller holds at once and how many rows decode together, from the
    ``requested`` concurrency (None: the device's default) and the device: on a CPU every held
    request is a row; on CUDA rows are capped by :func:`default_max_batch` (the others wait for
    a row)."""
    memory_rows = default_max_batch(gpt, device, fp16=fp16)
    held = requested if requested is not None else memory_rows
    rows = min(held, memory_rows) if device.startswith("cuda") else held
    return held, max(1, rows)
