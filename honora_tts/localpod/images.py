"""localpod's "images": an image reference (``NAME:TAG``) stands for a worker entry file, so that
changing an endpoint's image through the management API starts workers of another build.

A worker started from an image gets what a Docker build of it would give it: ``GIT_SHA`` = the
tag and ``BUILD_TIME`` = when localpod read the catalog (``--build-arg`` values in
Dockerfile.runpod), plus ``HONORA_IMAGE`` and ``HONORA_ENDPOINT_VERSION`` (localpod's own, so a
replacement for a dead worker is started from the same image and release).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from honora_tts.image_reference import IMAGE_REFERENCE

ENV_IMAGE = "HONORA_IMAGE"
ENV_ENDPOINT_VERSION = "HONORA_ENDPOINT_VERSION"


class ImageSpecError(ValueError):
    """An ``--image NAME:TAG=ENTRY`` argument that cannot be used (malformed or missing file)."""


@dataclass(frozen=True)
class LocalImage:
    """One image localpod can run: its reference and the worker entry file that stands for it."""

    reference: str
    entry: Path
    build_time: str

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]

    def worker_env(self, endpoint_version: int) -> dict[str, str]:
        """The variables a worker of this image starts with."""
        return {
            "GIT_SHA": self.tag,
            "BUILD_TIME": self.build_time,
            ENV_IMAGE: self.reference,
            ENV_ENDPOINT_VERSION: str(endpoint_version),
        }


def parse_image_spec(spec: str, *, base_dir: Path | None = None) -> tuple[str, Path]:
    """``NAME:TAG=ENTRY`` -> (reference, entry file). Relative entries resolve against
    ``base_dir`` (default: the current directory)."""
    reference, sep, entry = spec.partition("=")
    reference, entry = reference.strip(), entry.strip()
    if not sep or not reference or not entry:
        raise ImageSpecError(
            f"--image {spec!r}: write NAME:TAG=ENTRY, e.g. honora-tts:abc1234=worker/handler.py"
        )
    if not IMAGE_REFERENCE.match(reference):
        raise ImageSpecError(
            f"--image {spec!r}: {reference!r} is not an image reference NAME:TAG (lower-case "
            "name, a tag of letters, digits, '_', '.', '-')"
        )
    path = Path(entry).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    if not path.is_file():
        raise ImageSpecError(f"--image {spec!r}: worker entry file {path} does not exist")
    return reference, path.resolve()


class ImageCatalog:
    """The images one pod can run, in the order given (the first is the default start image)."""

    def __init__(self, images: Mapping[str, Path] | Iterable[tuple[str, Path]]) -> None:
        pairs = list(images.items()) if isinstance(images, Mapping) else list(images)
        built = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._images: dict[str, LocalImage] = {}
        for reference, entry in pairs:
            if not IMAGE_REFERENCE.match(reference):
                raise ImageSpecError(f"{reference!r} is not an image reference NAME:TAG")
            if reference in self._images:
                raise ImageSpecError(f"image {reference} is given twice")
            self._images[reference] = LocalImage(reference, Path(entry).resolve(), built)
        if not self._images:
            raise ImageSpecError("an image catalog needs at least one image")

    def __contains__(self, reference: object) -> bool:
        return reference in self._images

    def get(self, reference: str) -> LocalImage:
        try:
            return self._images[reference]
        except KeyError:
            known = ", ".join(self._images)
            raise ImageSpecError(
                f"localpod has no image {reference!r} (it knows {known}); start it with "
                f"--image {reference}=ENTRY_FILE"
            ) from None

    @property
    def references(self) -> list[str]:
        return list(self._images)

    @property
    def first(self) -> LocalImage:
        return next(iter(self._images.values()))
