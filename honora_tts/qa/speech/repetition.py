"""Repetition in a transcript: a word or phrase said again and again, back to back (XTTS's
loop: "... with her with her with her"). :func:`longest_repeat` finds the phrase of one to
:data:`MAX_PHRASE_WORDS` words repeated most times in a row; the verdict compares it with the
text's own repeats ("very very" is allowed where the text says it) against a calibrated count
(:mod:`.calibration`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from honora_tts.qa.speech.text_normalization import normalize

MAX_PHRASE_WORDS = 6


@dataclass(frozen=True)
class Repeat:
    """``phrase`` said ``count`` times in a row (count 1: nothing repeats)."""

    phrase: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def longest_repeat(words: list[str]) -> Repeat:
    """The phrase repeated most times back to back in ``words`` (ties: the longer phrase)."""
    best = Repeat(words[0] if words else "", 1 if words else 0)
    for size in range(1, MAX_PHRASE_WORDS + 1):
        for start in range(len(words) - 2 * size + 1):
            phrase = words[start:start + size]
            count = 1
            while words[start + count * size:start + (count + 1) * size] == phrase:
                count += 1
            if count > best.count or (count == best.count > 1 and size > len(best.phrase.split())):
                best = Repeat(" ".join(phrase), count)
    return best


def excess_repeat(expected: str, heard: str, language: str = "en") -> Repeat:
    """The transcript's longest back-to-back repeat, its count less what the text itself
    repeats of that phrase (so a text saying "very very" gives 1 for "very very")."""
    heard_repeat = longest_repeat(normalize(heard, language).split())
    text_words = normalize(expected, language).split()
    own = 1
    phrase = heard_repeat.phrase.split()
    if phrase:
        for start in range(len(text_words)):
            count = 0
            while text_words[start + count * len(phrase):
                             start + (count + 1) * len(phrase)] == phrase:
                count += 1
            own = max(own, count)
    return Repeat(heard_repeat.phrase, max(1, heard_repeat.count - own + 1))
