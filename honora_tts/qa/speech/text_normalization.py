"""The normalisation applied to both the expected text and a recogniser's transcript before
WER and CER, so that they count words, not spelling conventions:

1. Unicode NFKC; curly quotes and dashes become plain ones.
2. Numbers become words in the text's language (``num2words``: "42" -> "forty two",
   "3.5" -> "three point five"; thousands separators dropped; in English a four-digit number
   from 1100 to 2099 is read as a year: "1987" -> "nineteen eighty-seven"); a language
   num2words lacks keeps its digits.
3. Lower case.
4. Punctuation removed (every Unicode punctuation and symbol character); an apostrophe inside
   a word is kept ("don't"); hyphens and slashes separate words.
5. Whitespace collapsed.

Abbreviations are left as written: a recogniser that hears "doctor" for "Dr." counts one
substitution, which the calibration sees too.
"""

from __future__ import annotations

import re
import unicodedata

from honora_tts.qa.speech.languages import language_facts

_NUMBER = re.compile(r"\d+(?:[.,]\d{3})*(?:[.,]\d+)?")
_SEPARATORS = re.compile(r"[-\u2010-\u2015/]")
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


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


def normalize(text: str, language: str = "en") -> str:
    """``text`` normalised for WER/CER in ``language`` (see the module docstring)."""
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


def letter_count(text: str, language: str = "en") -> int:
    """Letters (and digits spelled out) of the normalised text: what speaking rates count."""
    return sum(ch.isalnum() for ch in normalize(text, language))
