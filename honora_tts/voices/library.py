"""The named voice library of the load-balancing mode: names that map to stored voices.

OpenAI's speech API takes a voice by name (``"voice": "alloy"``); honora's voices are files. The
library is a directory of names, each pointing at one checked reference file::

    <root>/names/<name>.json    {"name", "sha256", "duration_s", "sample_rate", "created_at"}
    <root>/blobs/<sha256>.wav   the reference file prepared from the uploaded audio (mono float
                                WAV at the model's rate, its first 60 s), named by the content
                                hash of the upload, as the voice cache names its files

An upload is validated exactly as a downloaded voice is (:func:`check_voice_audio`: one capped
decode, duration, silence), so a named voice and the same file sent as ``voice_url`` have the
same content hash and share their speaker latents. Uploading under a name that exists points
the name at the new audio. Files are written atomically; on RunPod the library is shared by
every worker only when it lives on a network volume (``HONORA_VOICE_LIBRARY``), else each
worker has its own (worker affinity then keeps a voice's requests on the worker that holds it).

:class:`LibraryVoices` is the voice fetcher the HTTP mode gives the synthesis service: a
``voice_url`` of the form ``library:NAME`` is a named voice, anything else goes to the voice
cache (downloaded, SSRF-checked).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from honora_tts.files import write_atomically
from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.settings import WorkerSettings, cache_dir
from honora_tts.voices.audio_check import check_voice_audio

#: ``voice_url`` prefix naming a library voice.
LIBRARY_SCHEME = "library:"
#: Lower-case letters, digits, ``-`` and ``_``; starts with a letter or digit.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: The most bytes one uploaded voice may have (the voice cache's download limit).
MAX_UPLOAD_BYTES = 25 * 2**20
MIN_DURATION_S = 0.5
MAX_DURATION_S = 600.0
FIELD = "voice"


@dataclass(frozen=True)
class NamedVoice:
    """One library entry."""

    name: str
    sha256: str
    duration_s: float
    sample_rate: int
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "duration_s": self.duration_s,
                "sample_rate": self.sample_rate, "created_at": self.created_at}


@dataclass(frozen=True)
class LibraryVoiceFile:
    """A library voice as the synthesis service takes a fetched one."""

    path: Path
    sha256: str
    cache: Literal["hit"] = "hit"
    fetch_ms: float = 0.0


def check_name(name: Any) -> str:
    """``name`` when it is a valid library name, else ``invalid_input`` saying what is."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise WorkerError(
            ErrorCode.INVALID_INPUT,
            "a voice name is 1 to 64 lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit",
            field="name",
        )
    return name


class VoiceLibrary:
    """Names -> checked reference files under ``root`` (see the module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "voice-library"
        self._names = self.root / "names"
        self._blobs = self.root / "blobs"
        self.uploads = 0

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> VoiceLibrary:
        return cls(settings.voice_library_dir)

    def __repr__(self) -> str:
        return f"VoiceLibrary(root={str(self.root)!r})"

    def add(self, name: str, data: bytes) -> NamedVoice:
        """Validate ``data`` as a reference voice and store it under ``name``. Raises
        :class:`WorkerError`: ``invalid_input`` (the name), ``voice_too_large``,
        ``voice_not_audio``."""
        check_name(name)
        if len(data) > MAX_UPLOAD_BYTES:
            raise WorkerError(
                ErrorCode.VOICE_TOO_LARGE,
                f"the voice sample has {len(data)} bytes; the limit is {MAX_UPLOAD_BYTES} "
                f"({MAX_UPLOAD_BYTES // 2**20} MiB)",
                field="audio_sample",
            )
        checked = check_voice_audio(
            data, source=f"voice sample {name!r}", min_duration_s=MIN_DURATION_S,
            max_duration_s=MAX_DURATION_S,
        )
        sha = hashlib.sha256(data).hexdigest()
        blob = self._blobs / f"{sha}.wav"
        if not blob.is_file():
            write_atomically(blob, checked.reference_wav)
        voice = NamedVoice(
            name=name, sha256=sha, duration_s=round(checked.facts.duration_s, 3),
            sample_rate=checked.facts.sample_rate, created_at=round(time.time(), 3),
        )
        write_atomically(self._names / f"{name}.json", json.dumps(voice.to_dict()).encode())
        self.uploads += 1
        return voice

    def get(self, name: str) -> NamedVoice | None:
        """The entry for ``name``, or None (also for a name that is not a valid one)."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            return None
        try:
            record = json.loads((self._names / f"{name}.json").read_text(encoding="utf-8"))
            voice = NamedVoice(
                name=name, sha256=str(record["sha256"]),
                duration_s=float(record["duration_s"]), sample_rate=int(record["sample_rate"]),
                created_at=float(record["created_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return voice if (self._blobs / f"{voice.sha256}.wav").is_file() else None

    def names(self) -> list[NamedVoice]:
        """Every entry, by name."""
        if not self._names.is_dir():
            return []
        found = (self.get(path.stem) for path in sorted(self._names.glob("*.json")))
        return [voice for voice in found if voice is not None]

    def resolve(self, name: str) -> LibraryVoiceFile:
        """The reference file of ``name``; ``voice_not_found`` naming the library's voices."""
        voice = self.get(name)
        if voice is None:
            known = ", ".join(v.name for v in self.names()[:20]) or "none yet"
            raise WorkerError(
                ErrorCode.VOICE_NOT_FOUND,
                f"no voice named {name!r} in this worker's voice library (voices: {known}); "
                "upload one with POST /v1/audio/voices or send voice_url",
                field=FIELD,
            )
        return LibraryVoiceFile(path=self._blobs / f"{voice.sha256}.wav", sha256=voice.sha256)

    def stats(self) -> dict[str, int]:
        return {"voices": len(self.names()), "uploads": self.uploads}


class _Fetcher(Protocol):
    def fetch(self, url: str, expected_sha256: str | None = None) -> Any: ...

    def stats(self) -> dict[str, int]: ...


class LibraryVoices:
    """The HTTP mode's voice fetcher: ``library:NAME`` from the library, every other URL from
    ``cache`` (the worker's :class:`~honora_tts.voices.VoiceCache`)."""

    def __init__(self, library: VoiceLibrary, cache: _Fetcher) -> None:
        self.library = library
        self.cache = cache

    def fetch(self, url: str, expected_sha256: str | None = None) -> Any:
        if url.startswith(LIBRARY_SCHEME):
            found = self.library.resolve(url[len(LIBRARY_SCHEME):])
            if expected_sha256 and expected_sha256 != found.sha256:
                raise WorkerError(
                    ErrorCode.VOICE_CHECKSUM_MISMATCH,
                    f"the library voice {url[len(LIBRARY_SCHEME):]!r} has sha256 "
                    f"{found.sha256}, not {expected_sha256}",
                    field=FIELD,
                )
            return found
        return self.cache.fetch(url, expected_sha256=expected_sha256)

    def stats(self) -> dict[str, int]:
        return {**self.cache.stats(), **{f"library_{k}": v for k, v in self.library.stats().items()}}
