"""Turning a caller's voice argument into ``voice_url`` + ``voice_sha256``.

A local file is uploaded to the voice store once per content hash and process (threads asking
for the same voice wait for one upload). Audio itself never goes into a request: bytes, base64
text and ``data:`` URIs are refused.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honora_tts.client._exceptions import ConfigurationError, InvalidRequest, VoiceUploadFailed
from honora_tts.files import file_sha256

log = logging.getLogger("honora_tts.client")

#: A voice argument this long that is not a URL is taken for embedded audio (base64) and
#: refused: no sensible file path is that long.
_EMBEDDED_TEXT_CHARS = 1_024
_URL_SCHEMES = ("http://", "https://", "s3://")


@dataclass(frozen=True)
class VoiceReference:
    """What a request carries about its voice. ``url`` None means the worker's default voice."""

    url: str | None
    sha256: str | None = None
    uploaded: bool = False


class VoiceUploader:
    """Resolves voice arguments; uploads local files through a voice store, once per hash."""

    def __init__(self, store_factory: Callable[[], Any] | None = None) -> None:
        self._owns_store = store_factory is None
        self._store_factory = store_factory or _store_from_env
        self._store: Any = None
        self._lock = threading.Lock()
        self._uploads: dict[str, VoiceReference] = {}
        self._pending: dict[str, threading.Lock] = {}

    def resolve(self, voice: Any, voice_sha256: str | None = None) -> VoiceReference:
        """``voice`` may be None or '' (default voice), a local path, an http(s) URL, or an
        object with ``url`` and ``sha256`` (a ``StoredVoice``)."""
        if voice is None or voice == "":
            return VoiceReference(url=None)
        if isinstance(voice, (bytes, bytearray, memoryview)):
            raise InvalidRequest(
                "voice audio cannot be sent inside a request (it is what crashed the old "
                "workers). Pass the voice file's path; the client uploads it to the voice store "
                "and sends its URL.",
            )
        url = getattr(voice, "url", None)
        if isinstance(url, str) and not isinstance(voice, (str, os.PathLike)):
            return VoiceReference(url=url, sha256=getattr(voice, "sha256", None) or voice_sha256)
        if isinstance(voice, str):
            stripped = voice.strip()
            if stripped.startswith(_URL_SCHEMES):
                return VoiceReference(url=stripped, sha256=voice_sha256)
            if stripped.startswith("data:") or len(stripped) > _EMBEDDED_TEXT_CHARS:
                raise InvalidRequest(
                    "the voice looks like embedded audio (base64 or a data: URI); audio never "
                    "goes inside a request. Pass the voice file's path or a voice_url.",
                )
            voice = Path(stripped).expanduser()
        if isinstance(voice, os.PathLike):
            return self.upload(Path(voice))
        raise InvalidRequest(f"voice must be a file path or a URL, got {type(voice).__name__}")

    def upload(self, path: Path) -> VoiceReference:
        """Upload ``path`` unless this process already uploaded the same content."""
        if not path.is_file():
            raise InvalidRequest(f"voice file {path} does not exist")
        sha = file_sha256(path)
        with self._lock:
            done = self._uploads.get(sha)
            if done is not None:
                return done
            pending = self._pending.setdefault(sha, threading.Lock())
        with pending:
            with self._lock:
                done = self._uploads.get(sha)
            if done is not None:
                return done
            stored = self._upload_to_store(path)
            stored_sha = getattr(stored, "sha256", None) or sha
            if stored_sha != sha:
                raise InvalidRequest(
                    f"the voice store reports sha256 {stored_sha[:12]} for {path.name}, "
                    f"whose content hashes to {sha[:12]}: the file changed during upload?"
                )
            reference = VoiceReference(url=stored.url, sha256=sha, uploaded=True)
            log.info(
                "voice %s uploaded as %s (sha256 %s, %s)", path.name,
                getattr(stored, "key", stored.url), sha[:12],
                "new upload" if getattr(stored, "uploaded", True) else "already in the store",
            )
            with self._lock:
                self._uploads[sha] = reference
                self._pending.pop(sha, None)
            return reference

    def _upload_to_store(self, path: Path) -> Any:
        from honora_tts.voices import VoiceStoreError

        try:
            store = self._voice_store()
        except (VoiceStoreError, OSError) as exc:
            raise ConfigurationError(
                f"no voice store could be set up to upload voice {path.name}: {exc}"
            ) from exc
        try:
            return store.upload(path)
        except (VoiceStoreError, OSError) as exc:
            name = getattr(store, "name", type(store).__name__)
            raise VoiceUploadFailed(
                f"could not upload voice {path.name} to the {name} voice store: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the voice store if this uploader made it (a local store serves HTTP)."""
        with self._lock:
            store, self._store = self._store, None
        if self._owns_store and store is not None and hasattr(store, "close"):
            store.close()

    def _voice_store(self) -> Any:
        with self._lock:
            if self._store is None:
                self._store = self._store_factory()
            return self._store


def _store_from_env() -> Any:
    try:
        from honora_tts.voices import voice_store_from_env
    except ImportError as exc:
        raise ConfigurationError(
            f"no voice store is available ({exc}); voices must be uploaded before a worker "
            "can use them. Configure a voice store (see honora_tts.voices) or pass a voice URL.",
        ) from exc
    return voice_store_from_env()
