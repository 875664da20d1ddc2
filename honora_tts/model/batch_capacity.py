"""How many rows a worker's decoding batch holds by default: 1 on a CPU (a batch only pays
where the device has spare compute per weight read; set it explicitly to batch on a CPU), and on
CUDA as many rows as half the free device memory holds at the longest sequence the GPT can
reach (its whole key/value cache), at most :data:`MAX_DEFAULT_ROWS`."""

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
