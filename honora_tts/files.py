"""Files on disk: content hashes, atomic writes and inter-process locks.

Standard library only, so the light client install can use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HASH_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes, *, temp_prefix: str | None = None) -> Path:
    """Write ``data`` to ``path`` so that readers never see a partial file: a temporary file in
    the same directory (named ``temp_prefix``..., default ``.{name}.``...), then a rename.
    Creates the directory. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(
        prefix=temp_prefix or f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Held (``flock``) by one process at a time; threads contend as processes do, since each
    call opens its own file description. Creates the lock file and its directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
