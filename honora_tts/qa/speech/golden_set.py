"""The release gate's golden set: sentences in English, German, Spanish and French with
numbers, abbreviations, questions, quotes ending in ``?"`` and ``!"``, and one text per
language longer than XTTS's split limit (``golden_set.json`` beside this module)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GOLDEN_SET_FILE = Path(__file__).with_name("golden_set.json")


@dataclass(frozen=True)
class GoldenItem:
    """One sentence of the golden set: ``id`` names its clip file (``<id>.wav``)."""

    id: str
    language: str
    text: str
    features: tuple[str, ...]


def golden_set(path: Path = GOLDEN_SET_FILE, *, languages: tuple[str, ...] = ()
               ) -> list[GoldenItem]:
    """The golden set's items, optionally only those of ``languages``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items = [GoldenItem(i["id"], i["language"], i["text"], tuple(i.get("features", ())))
             for i in data["items"]]
    return [i for i in items if not languages or i.language in languages]
