"""Image references (``[registry[:port]/]name:tag``) and the tags a rollout refuses: shared by
:mod:`honora_tts.rollout` and localpod's images."""

from __future__ import annotations

import re
from dataclasses import dataclass


class InvalidImageReference(ValueError):
    """An image reference that is malformed, has no tag, or uses ``:latest``; nothing was sent.
    Use a versioned tag, e.g. ``registry/honora-tts-worker:<git sha>``."""

#: ``[registry[:port]/]path:tag`` as Docker spells it; a rollout needs the tag.
IMAGE_REFERENCE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)
FLOATING_TAGS = frozenset({"latest"})


@dataclass(frozen=True)
class ImageReference:
    """A parsed ``name:tag``."""

    name: str
    tag: str

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


def parse_image_reference(text: str) -> ImageReference:
    """``name:tag`` -> :class:`ImageReference`; refuses a malformed reference, a missing tag,
    a digest and ``:latest`` (RunPod may serve a cached ``:latest``: workers would keep old
    code)."""
    raw = (text or "").strip()
    if "@" in raw:
        raise InvalidImageReference(
            f"{raw!r}: pin the image by a unique tag (NAME:TAG), not a digest: the tag is what "
            "the workers report as their git sha"
        )
    match = IMAGE_REFERENCE.match(raw)
    if match is None:
        if raw and IMAGE_REFERENCE.match(f"{raw}:tag") and ":" not in raw.rsplit("/", 1)[-1]:
            raise InvalidImageReference(
                f"{raw!r} has no tag: give NAME:TAG with a unique tag, e.g. the commit "
                "(`honora-tts build` prints it)"
            )
        raise InvalidImageReference(
            f"{raw!r} is not an image reference NAME:TAG (lower-case name, optional "
            "registry/ prefix, tag of letters, digits, '_', '.', '-')"
        )
    reference = ImageReference(match["name"], match["tag"])
    if reference.tag.lower() in FLOATING_TAGS:
        raise InvalidImageReference(
            f"{raw!r}: refusing :{reference.tag}. RunPod may keep serving a cached image for a "
            "floating tag, so workers would run old code. Build with a unique tag "
            "(`honora-tts build` tags the image with the commit) and roll that out."
        )
    return reference
