"""Files on the caller's disk: voice files (the voices directory, a voice by name or path, its
content hash) and output files (the audio format a suffix names)."""

from __future__ import annotations

import os
from pathlib import Path

from honora_tts.audio import OUTPUT_FORMATS
from honora_tts.settings import ClientSettings

VOICES_DIR_ENV = ClientSettings.env_names()["voices_dir"]
#: Output file suffix -> audio format (:data:`honora_tts.audio.OUTPUT_FORMATS`).
SUFFIX_FORMATS = {row.suffix: name for name, row in OUTPUT_FORMATS.items()}


def voices_dir(settings: ClientSettings) -> Path:
    """The voices directory: ``HONORA_VOICES_DIR`` or ``./voices``."""
    return settings.voices_dir.expanduser()


def resolve_voice_file(voice: str | os.PathLike[str] | None, directory: Path) -> Path | None:
    """The voice file for ``voice``: None for '' (the default voice), an existing absolute
    path as is, else a name inside ``directory``. Raises FileNotFoundError naming both."""
    if voice is None or str(voice).strip() == "":
        return None
    candidate = Path(voice).expanduser()
    if candidate.is_absolute():
        if candidate.is_file():
            return candidate
        raise FileNotFoundError(f"voice file {candidate} does not exist")
    inside = directory / candidate
    if inside.is_file():
        return inside
    raise FileNotFoundError(
        f"voice {str(voice)!r} is not in the voices directory {directory.resolve()} "
        f"(set {VOICES_DIR_ENV} to the folder holding the voice files)"
    )


def output_format(out_path: str | os.PathLike[str]) -> str:
    """Audio format from the output file's suffix (no suffix: wav)."""
    suffix = Path(out_path).suffix.lower()
    if not suffix:
        return "wav"
    if suffix not in SUFFIX_FORMATS:
        raise ValueError(
            f"cannot tell the audio format from {str(out_path)!r}: use one of "
            f"{', '.join(SUFFIX_FORMATS)}"
        )
    return SUFFIX_FORMATS[suffix]
