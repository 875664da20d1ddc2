"""The unmodified worker (``worker/handler.py``) on an emulated small disk: voice-cache file
writes fail with ENOSPC once the cache's files would pass ``HONORA_TEST_DISK_BYTES``, as they do
on a full disk. Used by the disk-full fault test through localpod's ``handler_path``."""

import errno
import os
import runpy
from pathlib import Path

from honora_tts.voices import cache

_CAPACITY = int(os.environ["HONORA_TEST_DISK_BYTES"])
_write = cache.VoiceCache._write_blob_file


def _write_on_small_disk(self: cache.VoiceCache, path: Path, data: bytes) -> None:
    used = sum(entry.stat().st_size for entry in path.parent.iterdir() if entry.is_file())
    if used + len(data) > _CAPACITY:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    _write(self, path, data)


cache.VoiceCache._write_blob_file = _write_on_small_disk  # type: ignore[method-assign]
runpy.run_path(
    str(Path(__file__).resolve().parents[2] / "worker" / "handler.py"), run_name="__main__"
)
