"""honora_tts.files: the one sha256, atomic writer, file lock and cache directory."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from honora_tts import files


def test_file_sha256_reads_large_files_in_blocks(tmp_path):
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 9000  # over two 1 MiB blocks
    path.write_bytes(data)
    assert files.file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_write_atomically_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "nested" / "out.bin"
    assert files.write_atomically(target, b"first") == target
    files.write_atomically(target, b"second", temp_prefix=".tmp-")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        files.write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_file_lock_admits_one_holder_at_a_time(tmp_path):
    lock = tmp_path / "locks" / "build.lock"
    inside = []
    peak = []
    guard = threading.Lock()

    def hold(_: int) -> None:
        with files.file_lock(lock):
            with guard:
                inside.append(1)
                peak.append(len(inside))
            time.sleep(0.02)
            with guard:
                inside.pop()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(hold, range(8)))
    assert max(peak) == 1
