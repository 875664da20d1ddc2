"""The speaker-latent cache: an in-memory LRU plus one ``torch.save`` file per key."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from honora_tts.files import write_atomically

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Bumped whenever the file layout changes: files of another format are replaced.
LATENT_FORMAT = 1


@dataclass(frozen=True)
class Latents:
    """Speaker conditioning: ``gpt_cond_latent`` (1, 32, model_dim) for the GPT and
    ``speaker_embedding`` (1, 512, 1) for the vocoder. ``key`` is their cache key (the voice's
    content, the latent arguments and the weights): the decoder's voice prefix cache is keyed
    by it, so the latents are never copied to the host to be hashed. None: not from the cache
    (the decoder then computes the prefix every time)."""

    gpt_cond_latent: torch.Tensor
    speaker_embedding: torch.Tensor
    key: str | None = None


@dataclass(frozen=True)
class LatentsResult:
    """Latents for a request, where they came from and how long getting them took."""

    latents: Latents
    cache: Literal["hit", "miss"]
    elapsed_ms: float


class LatentCache:
    """In-memory LRU plus one ``torch.save`` file per key (written atomically). ``validate``
    returns what is wrong with a loaded record (None when it is usable)."""

    def __init__(
        self,
        directory: Path,
        capacity: int,
        disk_capacity: int,
        validate: Callable[[Any, str], str | None],
    ):
        self.directory = directory
        self.capacity = capacity
        self.disk_capacity = disk_capacity
        self._validate = validate
        self._memory: OrderedDict[str, Latents] = OrderedDict()
        self._lock = threading.Lock()
        self.counters = {
            "latents_hits": 0,
            "latents_misses": 0,
            "latents_memory_hits": 0,
            "latents_disk_hits": 0,
            "latents_computed": 0,
            "disk_corrupt_replaced": 0,
            "disk_write_errors": 0,
        }

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pt"

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def from_memory(self, key: str) -> Latents | None:
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
            return found

    def remember(self, key: str, latents: Latents) -> None:
        with self._lock:
            self._memory[key] = latents
            self._memory.move_to_end(key)
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)

    def forget_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def from_disk(self, key: str, device: str) -> Latents | None:
        import torch

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            problem = self._validate(saved, key)
        # A truncated or foreign file fails to unpickle in many ways.
        except Exception as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            logger.warning("latent cache file %s is unusable (%s): replacing it", path, problem)
            with contextlib.suppress(OSError):
                path.unlink()
            self.count("disk_corrupt_replaced")
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return Latents(
            gpt_cond_latent=saved["gpt_cond_latent"].to(device),
            speaker_embedding=saved["speaker_embedding"].to(device),
            key=key,
        )

    def store(self, key: str, latents: Latents, voice_sha256: str) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(
            {
                "format": LATENT_FORMAT,
                "key": key,
                "voice_sha256": voice_sha256,
                "gpt_cond_latent": latents.gpt_cond_latent.detach().float().cpu().contiguous(),
                "speaker_embedding": latents.speaker_embedding.detach().float().cpu().contiguous(),
            },
            buffer,
        )
        try:
            write_atomically(self.path(key), buffer.getvalue())
            self._prune()
        except OSError as exc:
            logger.warning("could not write latent cache file %s: %s", self.path(key), exc)
            self.count("disk_write_errors")

    def _prune(self) -> None:
        files = list(self.directory.glob("*.pt"))
        if len(files) <= self.disk_capacity:
            return
        aged = []
        for file in files:
            with contextlib.suppress(OSError):
                aged.append((file.stat().st_mtime_ns, file))
        aged.sort()
        for _, file in aged[: len(aged) - self.disk_capacity]:
            with contextlib.suppress(OSError):
                file.unlink()

    def stats(self) -> dict[str, int]:
        with self._lock:
            facts = dict(self.counters)
            facts["memory_entries"] = len(self._memory)
        facts["disk_entries"] = (
            sum(1 for _ in self.directory.glob("*.pt")) if self.directory.is_dir() else 0
        )
        return facts

