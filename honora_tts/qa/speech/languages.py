"""Per-language facts the speech checks need, kept here rather than read from the model code:
XTTS-v2's languages and text split limits (coqui ``VoiceBpeTokenizer.char_limits``; 250 for a
language it does not list), the espeak-ng voice that speaks each one, and the language code
``num2words`` knows it by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageFacts:
    """What the speech checks know about one XTTS language."""

    code: str
    name: str
    split_limit: int
    espeak_voice: str
    num2words: str | None


_TABLE = (
    LanguageFacts("en", "English", 250, "en-us", "en"),
    LanguageFacts("es", "Spanish", 239, "es", "es"),
    LanguageFacts("fr", "French", 273, "fr-fr", "fr"),
    LanguageFacts("de", "German", 253, "de", "de"),
    LanguageFacts("it", "Italian", 213, "it", "it"),
    LanguageFacts("pt", "Portuguese", 203, "pt", "pt"),
    LanguageFacts("pl", "Polish", 224, "pl", "pl"),
    LanguageFacts("tr", "Turkish", 226, "tr", "tr"),
    LanguageFacts("ru", "Russian", 182, "ru", "ru"),
    LanguageFacts("nl", "Dutch", 251, "nl", "nl"),
    LanguageFacts("cs", "Czech", 186, "cs", "cs"),
    LanguageFacts("ar", "Arabic", 166, "ar", "ar"),
    LanguageFacts("zh-cn", "Chinese", 82, "cmn", None),
    LanguageFacts("ja", "Japanese", 71, "ja", "ja"),
    LanguageFacts("hu", "Hungarian", 224, "hu", "hu"),
    LanguageFacts("ko", "Korean", 95, "ko", "ko"),
    LanguageFacts("hi", "Hindi", 150, "hi", None),
)
LANGUAGES: dict[str, LanguageFacts] = {facts.code: facts for facts in _TABLE}


class UnknownLanguage(ValueError):
    """A language code that XTTS-v2 does not speak."""


def language_facts(code: str) -> LanguageFacts:
    """The facts of an XTTS language code (``en``, ``zh-cn``; ``zh`` and case are accepted)."""
    key = code.strip().lower().replace("_", "-")
    if key == "zh":
        key = "zh-cn"
    if key not in LANGUAGES:
        raise UnknownLanguage(f"unknown language {code!r}; XTTS speaks {', '.join(LANGUAGES)}")
    return LANGUAGES[key]
