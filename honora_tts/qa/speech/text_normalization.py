"""The normalisation applied to the expected text and a recogniser's transcript before WER and
CER, so that they count words, not spelling conventions; and the spoken form whose letters the
speaking-rate bounds count.

**For WER/CER** (:func:`normalize`), as seed-tts-eval and the Whisper papers score English:

- English: Whisper's own ``EnglishTextNormalizer`` (the copy in ``transformers``
  ``models.whisper.english_normalizer``, the field's reference implementation): lower case;
  brackets and fillers ("um", "uh") dropped; contractions expanded ("don't" -> "do not");
  titles spelled out ("Dr." -> "doctor", "Mr." -> "mister", "St." -> "saint"); number words
  turned into digits ("forty two" -> "42", "nineteen eighty seven" -> "1987"); currency and
  percentages in one form ("38 dollars" and "$38" -> "$38", "fifteen percent" and "15%" ->
  "15%"); punctuation and symbols removed. Its British-to-American spelling map
  (``english.json``, shipped with openai-whisper, not with transformers) is not applied: a
  recogniser that writes "color" for "colour" counts one substitution. Two written forms it
  leaves apart are joined first, on both texts: a time "7:45" or "7.45" (hours 0-23, minutes
  00-59, not a price) becomes "745" (what "seven forty-five" normalises to), and "a.m." /
  "A M" / "AM" become "am" (likewise p.m.).
- Other languages: Unicode NFKC, curly quotes made plain; numbers spelled out in the text's
  language (``num2words``; thousands separators dropped, the last ``.``/``,`` is the decimal
  point); lower case; every punctuation and symbol character removed except an apostrophe
  inside a word; hyphens and slashes separate words; whitespace collapsed (Whisper's
  ``BasicTextNormalizer`` plus numbers in words, so that "3" and "drei" agree).

**Spoken form** (:func:`spoken_form`, :func:`letter_count`): what is said aloud, for counting
letters and for a pronouncing dictionary. English: the WER form above with its digits spelled
out again ("$38" -> "thirty-eight dollars", "15%" -> "fifteen percent", "1987" -> "nineteen
eighty-seven", "3rd" -> "third", times "7:45" -> "seven forty-five"); other languages: the WER
form.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from honora_tts.qa.speech.languages import language_facts

_NUMBER = re.compile(r"\d+(?:[.,]\d{3})*(?:[.,]\d+)?")
_SEPARATORS = re.compile(r"[-\u2010-\u2015/]")
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
#: A clock time candidate: hours and two-digit minutes, not inside a longer number. Taken as a
#: time with a colon anywhere, with a dot only after "at", "by", "from", "until", "till",
#: "before", "after" or before a.m./p.m. (else "3.14" would be one).
_TIME = re.compile(r"(?<![\d.,$£€])\b([01]?\d|2[0-3])([:.])([0-5]\d)\b(?![.,]?\d)")
_TIME_BEFORE = re.compile(r"\b(?:at|by|from|until|till|before|after)\s+$", re.IGNORECASE)
_TIME_AFTER = re.compile(r"\s*[ap]\.?\s?m\b", re.IGNORECASE)
_MERIDIEM = re.compile(r"\b([ap])\.?\s?m\b\.?", re.IGNORECASE)
_CURRENCY = {"$": "dollars", "£": "pounds", "€": "euros"}
_SPOKEN_AMOUNT = re.compile(r"([$£€])(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


@lru_cache(maxsize=1)
def _english() -> Any:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def _english_wer_form(text: str, *, time_joiner: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    def joined(match: re.Match[str]) -> str:
        is_time = match.group(2) == ":" or bool(
            _TIME_BEFORE.search(text[: match.start()])
            or _TIME_AFTER.match(text, match.end()))
        return f"{match.group(1)}{time_joiner}{match.group(3)}" if is_time else match.group(0)

    text = _TIME.sub(joined, text)
    text = _MERIDIEM.sub(lambda m: f"{m.group(1).lower()}m", text)
    # It keeps a lone "." of "..." (its decimal-point rule): a word has a letter or a digit.
    return " ".join(w for w in str(_english()(text)).split() if any(c.isalnum() for c in w))


def _number_words(match: re.Match[str], lang: str | None) -> str:
    raw = match.group(0)
    if lang is None:
        return raw
    from num2words import num2words

    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", raw):
        digits = re.sub(r"[.,]", "", raw)
    else:
        # The last separator is the decimal point; any before it separate thousands.
        whole, _, fraction = re.sub(r"[.,]", ".", raw).rpartition(".")
        digits = f"{whole.replace('.', '')}.{fraction}" if whole else fraction
    try:
        value: float | int = float(digits) if "." in digits else int(digits)
        if lang == "en" and raw.isdigit() and len(raw) == 4 and 1100 <= int(raw) <= 2099:
            return f" {num2words(int(raw), lang=lang, to='year')} "
        return f" {num2words(value, lang=lang)} "
    except (NotImplementedError, OverflowError, ValueError):
        return raw


def _basic_form(text: str, language: str) -> str:
    lang = language_facts(language).num2words
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    text = _NUMBER.sub(lambda m: _number_words(m, lang), text)
    text = _SEPARATORS.sub(" ", text.lower())
    kept = []
    for index, ch in enumerate(text):
        category = unicodedata.category(ch)
        if ch == "'" and 0 < index < len(text) - 1 and text[index - 1].isalnum() \
                and text[index + 1].isalnum():
            kept.append(ch)
        elif category[0] in "PS":
            kept.append(" ")
        else:
            kept.append(ch)
    return " ".join("".join(kept).split())


def normalize(text: str, language: str = "en") -> str:
    """``text`` normalised for WER/CER in ``language`` (see the module docstring)."""
    if language_facts(language).code == "en":
        return _english_wer_form(text, time_joiner="")
    return _basic_form(text, language)


def spoken_form(text: str, language: str = "en") -> str:
    """What ``text`` says aloud, in words (see the module docstring)."""
    if language_facts(language).code != "en":
        return _basic_form(text, language)
    from num2words import num2words

    written = _english_wer_form(text, time_joiner=" ")

    def amount(match: re.Match[str]) -> str:
        sign, value = (match.group(1), match.group(2)) if match.group(1) else ("%",
                                                                                 match.group(3))
        words = num2words(float(value) if "." in value else int(value), lang="en")
        return f" {words} {_CURRENCY.get(sign, 'percent')} "

    written = _SPOKEN_AMOUNT.sub(amount, written)
    written = _ORDINAL.sub(lambda m: num2words(int(m.group(1)), lang="en", to="ordinal"),
                           written)
    written = _DIGITS.sub(lambda m: _number_words(m, "en"), written)
    return " ".join(_SEPARATORS.sub(" ", written).replace(",", " ").split())


def letter_count(text: str, language: str = "en") -> int:
    """Letters of the spoken form: what speaking rates count."""
    return sum(ch.isalnum() for ch in spoken_form(text, language))
