"""Which XTTS checkpoint a benchmark runs, and caches it starts empty.

``tiny`` is the offline tiny model (33 M parameters), ``full`` the full-size architecture with
random weights (:mod:`benchmarks.full_size_model`), anything else a checkpoint directory
(e.g. the real XTTS-v2 release). Random weights seldom stop (the full-size checkpoint never
does): benchmarks bound generation.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def resolve_checkpoint(name: str) -> tuple[Path, str]:
    """``(directory, label)`` for ``tiny``, ``full`` or a checkpoint directory (built on first
    use for tiny and full)."""
    if name == "tiny":
        from honora_tts.model import tiny_checkpoint_dir

        return tiny_checkpoint_dir(0), "tiny (33 M, random weights)"
    if name == "full":
        from benchmarks.full_size_model import full_size_checkpoint_dir, parameters

        directory = full_size_checkpoint_dir(0)
        count = parameters(directory)
        size = f"{count / 1e6:.0f} M" if count else "full-size"
        return directory, f"full-size ({size}, random weights)"
    directory = Path(name).expanduser()
    if not (directory / "model.pth").is_file():
        raise FileNotFoundError(f"{directory} holds no model.pth: not a checkpoint directory")
    return directory, str(directory)


@contextlib.contextmanager
def empty_caches() -> Iterator[Path]:
    """Point the latent cache (``HONORA_CACHE_DIR``) and the voice cache
    (``HONORA_VOICE_CACHE``) at a fresh directory, so that first requests really are first.
    Resolve checkpoints before entering: they live in the cache directory."""
    names = ("HONORA_CACHE_DIR", "HONORA_VOICE_CACHE", "HONORA_ALLOW_PRIVATE_URLS")
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="honora-bench-cache-") as scratch:
        root = Path(scratch)
        os.environ["HONORA_CACHE_DIR"] = str(root / "cache")
        os.environ["HONORA_VOICE_CACHE"] = str(root / "voices")
        os.environ["HONORA_ALLOW_PRIVATE_URLS"] = "1"  # the local voice store is on 127.0.0.1
        try:
            yield root
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
