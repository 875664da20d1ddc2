"""The worker's voice-file cache: a voice URL becomes a checked local file, downloaded once.

Layout under the cache root (``HONORA_VOICE_CACHE``, default ``/tmp/honora_voice_cache``)::

    blobs/<content sha256>.wav      the reference file prepared from each voice (mono float
                                    WAV at the model's rate, its first 60 s), named by the
                                    content hash of the file that was downloaded
    index.json                      url key -> content sha256; per voice: the reference
                                    file's name, size and sha256, duration, sample rate, last use
    index.lock                                  flock'ed around every index update
    locks/<xx>.lock                             flock'ed around a download (256 stripes)

A URL's key is the SHA-256 of the whole URL (the URL itself, which may hold a signed token, is
never written to disk). When the caller knows the content hash (``expected_sha256``) the file is
found by content, so a voice uploaded once is a hit even when every request carries a freshly
signed URL. Files and the index are written to a temporary file in the same directory and
``os.replace``-d into place, so readers never see half a file; worker processes sharing a root
take the index lock for each update.

Guarantees: one download per URL however many threads ask at once (single flight), and however
many processes sharing a root ask at once (the leader of each process takes the URL's stripe
lock, then looks again before downloading); every hit is
re-hashed and a corrupted file is deleted and fetched again (``corrupt_replaced``); files that
fail validation (:mod:`honora_tts.voices.audio_check`) or the expected checksum are never kept;
the downloaded original is never stored nor decoded again: the model reads the reference file
that validation prepared, so a hostile file is decoded once, with a cap;
when the total passes ``max_total_bytes`` the least recently used files are evicted (a fetch
never fails because the cache is full); a full disk evicts and retries once. Downloads follow
:mod:`honora_tts.voices.download` (SSRF policy, pinned addresses, size and time limits).

The root is trusted only when this process owns it: a root that is a symbolic link, is not a
directory, belongs to another user or is writable by group or others is refused
(:class:`UnsafeCacheRoot`, an ``internal_error`` naming the fix) rather than used, because
whoever can write there could plant index records or links. Directories are made 0700 and
files 0600 (no other local user reads the voices), files are opened without following links,
and an index record can only name a file ``blobs/<sha256>.wav`` inside the root: any other
record is dropped without touching the file it names.

Residual risk: a file handed out by :meth:`VoiceCache.fetch` can be evicted by a later fetch
before the caller opens it if the cache is far too small for the working set; size
``max_total_bytes`` well above the voices in use at once.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import ssl
import stat
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Self

from honora_tts.files import file_sha256, write_atomically
from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.settings import WorkerSettings, cache_dir
from honora_tts.voices.audio_check import check_voice_audio
from honora_tts.voices.download import DownloadLimits, VoiceDownloader
from honora_tts.voices.url_safety import (
    FIELD,
    Resolver,
    UrlPolicy,
    describe_url,
    parse_voice_url,
)

try:
    import fcntl
except ImportError:  # Windows: threads of one process are still serialised
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

ROOT_ENV = WorkerSettings.env_names()["voice_cache_dir"]

_INDEX_VERSION = 2  # 2: blobs hold prepared reference files, not the downloads
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_S = 3600.0
_ORPHAN_GRACE_S = 60.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BLOB_NAME = re.compile(r"^[0-9a-f]{64}\.wav$")
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_LOCK_STRIPE_CHARS = 2  # hex characters of the key naming its download lock: 256 files at most


class UnsafeCacheRoot(WorkerError):
    """The voice cache directory (or one inside it) is not this process's alone: a symbolic
    link, not a directory, owned by another user, or writable by group or others."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            ErrorCode.INTERNAL_ERROR,
            f"the voice cache directory {path} is not safe to use: {why}; remove it, or set "
            f"{ROOT_ENV} to a directory that only this worker's user owns and can write",
        )


@dataclass(frozen=True)
class VoiceFile:
    """A checked voice on local disk and how it was obtained. ``path`` is its prepared reference
    file (``bytes`` long), ``sha256`` the content hash of the file that was downloaded."""

    path: Path
    sha256: str
    bytes: int
    duration_s: float
    sample_rate: int
    cache: Literal["hit", "miss"]
    fetch_ms: float


class VoiceCache:
    """URL -> local, validated voice file; see the module docstring for the guarantees.

    ``root`` defaults to ``voices/`` under the package's cache directory; ``allow_private``
    lets URLs reach loopback and private addresses; ``trusted_hosts`` are hosts whose addresses
    are not checked (e.g. an internal object store). :meth:`from_settings` takes all three from
    the worker's settings (``HONORA_VOICE_CACHE``, ``HONORA_ALLOW_PRIVATE_URLS``,
    ``HONORA_TRUSTED_VOICE_HOSTS``). ``resolver`` and ``verify`` (an ``ssl.SSLContext`` or bool)
    exist for tests and unusual networks.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        max_file_bytes: int = 25 * 2**20,
        max_total_bytes: int = 2 * 2**30,
        min_duration_s: float = 0.5,
        max_duration_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 20.0,
        total_timeout_s: float = 60.0,
        max_redirects: int = 5,
        allow_private: bool = False,
        trusted_hosts: Collection[str] = (),
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "voices"
        self.policy = UrlPolicy.create(
            allow_private=allow_private, trusted_hosts=trusted_hosts, resolver=resolver
        )
        self.limits = DownloadLimits(
            max_bytes=max_file_bytes,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            total_timeout_s=total_timeout_s,
            max_redirects=max_redirects,
        )
        self.max_total_bytes = max_total_bytes
        self.min_duration_s = min_duration_s
        self.max_duration_s = max_duration_s
        self._downloader = VoiceDownloader(self.policy, self.limits, verify=verify)
        self._blobs = self.root / "blobs"
        self._index_path = self.root / "index.json"
        self._lock_path = self.root / "index.lock"
        self._download_locks = self.root / "locks"
        self._index_lock = threading.Lock()
        self._flights: dict[tuple[str, str], Future[VoiceFile]] = {}
        self._flight_lock = threading.Lock()
        self._counter_lock = threading.Lock()
        self._counters = {
            "downloads": 0, "hits": 0, "evictions": 0, "corrupt_replaced": 0, "refused": 0,
        }  # fmt: skip
        for directory in (self.root, self._blobs, self._download_locks):
            _private_directory(directory)
        self._tidy()

    @classmethod
    def from_settings(cls, settings: WorkerSettings, **options: Any) -> VoiceCache:
        """The cache the worker's settings configure; ``options`` (as for the constructor)
        win over them."""
        configured: dict[str, Any] = {
            "root": settings.voice_cache_dir, "allow_private": settings.allow_private_urls,
            "trusted_hosts": settings.trusted_voice_hosts,
        }
        return cls(**{**configured, **options})

    def __repr__(self) -> str:
        return (
            f"VoiceCache(root={str(self.root)!r}, allow_private={self.policy.allow_private}, "
            f"max_total_bytes={self.max_total_bytes})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP transport; cached files stay on disk."""
        self._downloader.close()

    # ------------------------------------------------------------------ public API

    def fetch(self, url: str, expected_sha256: str | None = None) -> VoiceFile:
        """The local file for ``url``: from the cache when present and intact, else downloaded,
        validated and stored. Raises :class:`WorkerError` (``field="voice_url"``) with
        ``voice_url_forbidden``, ``voice_fetch_failed``, ``voice_too_large``,
        ``voice_not_audio`` or ``voice_checksum_mismatch``."""
        started = time.monotonic()
        try:
            parse_voice_url(url)
        except WorkerError:
            self._count("refused")
            raise
        expected = _normalise_sha(expected_sha256)
        url_key = hashlib.sha256(url.encode("utf-8")).hexdigest()

        found = self._lookup(url_key, expected, started)
        if found is not None:
            return found

        flight_key = (url_key, expected or "")
        with self._flight_lock:
            flight = self._flights.get(flight_key)
            leader = flight is None
            if flight is None:
                flight = Future()
                self._flights[flight_key] = flight
        if not leader:
            try:
                shared = flight.result()
            except WorkerError as exc:
                raise WorkerError(exc.code, exc.message, exc.field) from None
            return replace(shared, fetch_ms=_elapsed_ms(started))

        try:
            with self._download_lock(expected or url_key):
                result = self._lookup(url_key, expected, started) or self._download_and_store(
                    url, url_key, expected, started
                )
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            with self._flight_lock:
                self._flights.pop(flight_key, None)

    def stats(self) -> dict[str, int]:
        """Counters since this cache was created plus what is on disk now: ``downloads``,
        ``hits``, ``evictions``, ``corrupt_replaced``, ``refused``, ``bytes_downloaded``,
        ``entries``, ``total_bytes``."""
        with self._edit_index(write=False) as index:
            entries = len(index["blobs"])
            total = sum(int(record["bytes"]) for record in index["blobs"].values())
        with self._counter_lock:
            counters = dict(self._counters)
        return {
            **counters,
            "bytes_downloaded": self._downloader.bytes_received,
            "entries": entries,
            "total_bytes": total,
        }

    # ------------------------------------------------------------------ lookup and store

    def _lookup(self, url_key: str, expected: str | None, started: float) -> VoiceFile | None:
        with self._edit_index(write=False) as index:
            sha = expected or index["urls"].get(url_key)
            record = dict(index["blobs"].get(sha) or {}) if sha else {}
        if not sha or not record:
            return None
        path = self._blobs / record["file"]  # a blob name: _read_index drops anything else
        intact = _file_matches(path, int(record["bytes"]), record["file_sha256"])
        with self._edit_index() as index:
            current = index["blobs"].get(sha)
            if current is None or current.get("id") != record.get("id"):
                return None  # evicted or replaced while we were hashing
            if intact is not True:
                self._drop_blob(index, sha)
                if intact is False:
                    self._count("corrupt_replaced")
                    logger.warning("cached voice %s was corrupted; fetching it again", path.name)
                return None
            current["last_used"] = time.time()
            index["urls"][url_key] = sha
        self._count("hits")
        return VoiceFile(
            path=path,
            sha256=sha,
            bytes=int(record["bytes"]),
            duration_s=float(record["duration_s"]),
            sample_rate=int(record["sample_rate"]),
            cache="hit",
            fetch_ms=_elapsed_ms(started),
        )

    def _download_and_store(
        self, url: str, url_key: str, expected: str | None, started: float
    ) -> VoiceFile:
        source = describe_url(url)
        try:
            download = self._downloader.download(url)
        except WorkerError as exc:
            if exc.code == ErrorCode.VOICE_URL_FORBIDDEN:
                self._count("refused")
            raise
        self._count("downloads")
        data = download.data
        sha = hashlib.sha256(data).hexdigest()
        if expected and sha != expected:
            raise WorkerError(
                ErrorCode.VOICE_CHECKSUM_MISMATCH,
                f"voice at {source} has sha256 {sha} but {expected} was expected; "
                "it was not cached",
                FIELD,
            )
        checked = check_voice_audio(
            data,
            source=f"voice at {source}",
            min_duration_s=self.min_duration_s,
            max_duration_s=self.max_duration_s,
        )
        facts, reference = checked.facts, checked.reference_wav
        reference_sha = hashlib.sha256(reference).hexdigest()
        path = self._blobs / f"{sha}.wav"
        if _file_matches(path, len(reference), reference_sha) is not True:
            self._write_with_space(path, reference, keep=sha)
        with self._edit_index() as index:
            index["blobs"][sha] = {
                "file": path.name,
                "bytes": len(reference),
                "file_sha256": reference_sha,
                "download_bytes": len(data),
                "duration_s": facts.duration_s,
                "sample_rate": facts.sample_rate,
                "last_used": time.time(),
                "id": uuid.uuid4().hex,
            }
            index["urls"][url_key] = sha
            self._evict(index, self.max_total_bytes, keep=sha)
        fetch_ms = _elapsed_ms(started)
        logger.info(
            "voice downloaded from %s: %d bytes, %.1f s, sha256 %s, %d redirects, %.0f ms",
            source, len(data), facts.duration_s, sha[:12], download.redirects, fetch_ms,
        )  # fmt: skip
        return VoiceFile(
            path=path,
            sha256=sha,
            bytes=len(reference),
            duration_s=facts.duration_s,
            sample_rate=facts.sample_rate,
            cache="miss",
            fetch_ms=fetch_ms,
        )

    def _write_with_space(self, path: Path, data: bytes, *, keep: str) -> None:
        try:
            self._write_blob_file(path, data)
            return
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise WorkerError(
                    ErrorCode.VOICE_FETCH_FAILED,
                    f"cannot store the voice in the cache at {self.root}: {exc.strerror or exc}",
                    FIELD,
                ) from None
        with self._edit_index() as index:
            total = sum(int(record["bytes"]) for record in index["blobs"].values())
            evicted = self._evict(index, total - len(data), keep=keep)
        logger.warning(
            "voice cache disk full at %s: evicted %d voices, retrying", self.root, evicted
        )
        try:
            self._write_blob_file(path, data)
        except OSError as exc:
            raise WorkerError(
                ErrorCode.VOICE_FETCH_FAILED,
                f"the voice cache disk at {self.root} is full ({exc.strerror or exc}): "
                f"{len(data)} bytes needed and evicting {evicted} cached voices did not free "
                f"enough; free disk space or point {ROOT_ENV} at a larger disk",
                FIELD,
            ) from None

    def _write_blob_file(self, path: Path, data: bytes) -> None:
        write_atomically(path, data, temp_prefix=_TEMP_PREFIX)

    def _evict(self, index: dict[str, Any], target_bytes: int, *, keep: str | None) -> int:
        """Drop least recently used files until the total is at most ``target_bytes``."""
        blobs = index["blobs"]
        total = sum(int(record["bytes"]) for record in blobs.values())
        by_age = sorted((record["last_used"], sha) for sha, record in blobs.items() if sha != keep)
        evicted = 0
        for _, sha in by_age:
            if total <= target_bytes:
                break
            total -= int(blobs[sha]["bytes"])
            self._drop_blob(index, sha)
            evicted += 1
        if evicted:
            self._count("evictions", evicted)
            logger.info("voice cache evicted %d files (total now %d bytes)", evicted, total)
        return evicted

    def _drop_blob(self, index: dict[str, Any], sha: str) -> None:
        record = index["blobs"].pop(sha, None)
        if record is not None and _BLOB_NAME.match(record["file"]):
            (self._blobs / record["file"]).unlink(missing_ok=True)
        for url_key in [k for k, v in index["urls"].items() if v == sha]:
            del index["urls"][url_key]

    def _tidy(self) -> None:
        """Remove stale temporary files, orphaned blobs and records of missing files; then
        enforce the total cap (it may be smaller than the last process's)."""
        now = time.time()
        with self._edit_index() as index:
            known = {record["file"] for record in index["blobs"].values()}
            for entry in self._blobs.iterdir():
                try:
                    age = now - entry.lstat().st_mtime
                except FileNotFoundError:
                    continue
                is_temp = entry.name.startswith(_TEMP_PREFIX)
                if (is_temp and age > _STALE_TEMP_S) or (
                    not is_temp and entry.name not in known and age > _ORPHAN_GRACE_S
                ):
                    entry.unlink(missing_ok=True)
            for sha, record in list(index["blobs"].items()):
                if not _regular_file(self._blobs / record["file"]):
                    self._drop_blob(index, sha)
            self._evict(index, self.max_total_bytes, keep=None)

    @contextmanager
    def _download_lock(self, key: str) -> Iterator[None]:
        """Held by a process's single-flight leader while it looks up and downloads ``key``, so
        that processes sharing this root download a voice once between them."""
        if fcntl is None:
            yield
            return
        path = self._download_locks / f"{key[:_LOCK_STRIPE_CHARS]}.lock"
        with _open_private(path) as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield

    # ------------------------------------------------------------------ index file

    @contextmanager
    def _edit_index(self, *, write: bool = True) -> Iterator[dict[str, Any]]:
        """The index, locked against other threads and processes; saved on exit if ``write``.
        Never nested."""
        with self._index_lock, _open_private(self._lock_path) as lock_file:
            if fcntl is not None:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            index = self._read_index()
            yield index
            if write:
                try:
                    write_atomically(
                        self._index_path, json.dumps(index).encode("utf-8"),
                        temp_prefix=_TEMP_PREFIX,
                    )
                except OSError as exc:
                    # The files are still valid; a lost index update only costs a download.
                    logger.warning("cannot write voice cache index %s: %s", self._index_path, exc)

    def _read_index(self) -> dict[str, Any]:
        empty: dict[str, Any] = {"version": _INDEX_VERSION, "urls": {}, "blobs": {}}
        try:
            fd = os.open(self._index_path, os.O_RDONLY | os.O_NOFOLLOW)
            with open(fd, "rb") as handle:
                index = json.loads(handle.read())
        except FileNotFoundError:
            return empty
        except (OSError, ValueError) as exc:
            logger.warning("voice cache index %s unreadable (%s); starting afresh",
                           self._index_path, exc)
            return empty
        if not isinstance(index, dict) or index.get("version") != _INDEX_VERSION:
            return empty
        urls, blobs = index.get("urls"), index.get("blobs")
        if not isinstance(urls, dict) or not isinstance(blobs, dict):
            return empty
        kept = {sha: record for sha, record in blobs.items() if _valid_record(sha, record)}
        if len(kept) != len(blobs):
            logger.warning("voice cache index %s: dropped %d malformed records",
                           self._index_path, len(blobs) - len(kept))
        index["blobs"] = kept
        index["urls"] = {
            key: sha for key, sha in urls.items()
            if isinstance(key, str) and isinstance(sha, str) and sha in kept
        }  # fmt: skip
        return index

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counter_lock:
            self._counters[name] += amount


def _private_directory(path: Path) -> None:
    """Create ``path`` (0700) or check that the one there is this process's alone."""
    try:
        path.mkdir(mode=_DIR_MODE, parents=True)
    except FileExistsError:
        pass
    try:
        info = path.lstat()
    except OSError as exc:
        raise UnsafeCacheRoot(path, f"it cannot be inspected ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeCacheRoot(path, "it is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeCacheRoot(path, "it is not a directory")
    if info.st_uid != os.geteuid():
        raise UnsafeCacheRoot(path, f"it belongs to uid {info.st_uid}, not {os.geteuid()}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCacheRoot(path, f"others can write to it (mode {info.st_mode & 0o777:o})")
    if info.st_mode & 0o077:
        os.chmod(path, _DIR_MODE)


def _open_private(path: Path) -> Any:
    """``path`` opened for locking (created 0600), never through a symbolic link."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, _FILE_MODE)
    return open(fd, "a+b")


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _valid_record(sha: object, record: object) -> bool:
    """A blob record as this module writes it; its file can only be ``<sha256>.wav``."""
    if not isinstance(sha, str) or not _SHA256.match(sha) or not isinstance(record, dict):
        return False
    name, file_sha = record.get("file"), record.get("file_sha256")
    if not isinstance(name, str) or not _BLOB_NAME.match(name):
        return False
    if not isinstance(file_sha, str) or not _SHA256.match(file_sha):
        return False
    numbers = ("bytes", "duration_s", "sample_rate", "last_used")
    return all(
        isinstance(record.get(k), int | float) and not isinstance(record.get(k), bool)
        for k in numbers
    )
def _file_matches(path: Path, size: int, sha: str) -> bool | None:
    """True when intact, False when changed, None when missing."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        return file_sha256(path) == sha
    except FileNotFoundError:
        return None


def _normalise_sha(value: str | None) -> str | None:
    if value is None:
        return None
    sha = value.strip().lower()
    if not _SHA256.match(sha):
        raise WorkerError(
            ErrorCode.INVALID_INPUT,
            "voice_sha256 must be 64 hexadecimal characters (a SHA-256)",
            field="voice_sha256",
        )
    return sha


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
