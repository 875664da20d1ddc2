"""The labelled clips the calibration measures: neural speech (Piper's joe voice, English) and
formant speech (espeak-ng, English, German, Spanish, French), each clean and degraded the ways
a TTS build fails, plus clips that are not speech (noise, a tone, a buzz, silence, and the
offline tiny XTTS model's random-weights output).

Kinds (:data:`KINDS`, with the verdicts a kind may get): ``correct``; ``wrong_text`` (another
sentence spoken, judged against this one's text); ``truncated`` (the first half); ``babble``
(the sentence, then 5 s of nonsense words); ``loop`` (the sentence, then its last two words six
times more: XTTS's loop); ``clipped`` (x8 into full scale) and ``clipped_mild`` (x3);
``fast_3x`` / ``slow_3x`` (spoken three times faster / slower: Piper's ``length_scale``,
espeak's words per minute); ``noise``, ``tone``, ``buzz``, ``silence``, ``tiny_model``. The
sentences are held out: none is in the golden set or in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from honora_tts.qa.speech import degradations, espeak, piper_voice
from honora_tts.qa.speech.golden_set import golden_set
from honora_tts.qa.speech.languages import language_facts

#: Calibration sentences: IEEE/Harvard sentences (public domain) and sentences with numbers,
#: currency, percentages, times and abbreviations; held out from the golden set and the tests.
ENGLISH_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "A large size in stockings is hard to sell.",
    "The boat left the harbour at 6:30 and returned before noon.",
    "Tickets cost $24 each, or 15% less for groups.",
    "Mrs. Brown met Dr. Patel at 9 a.m. on Monday.",
    "The bridge was finished in 1932 after four years of work.",
    "Please send the report to all 12 members by Friday.",
)
#: What each kind may be judged: the first is the verdict it should get.
KINDS: dict[str, tuple[str, ...]] = {
    "correct": ("speech",),
    "wrong_text": ("wrong_text", "truncated", "runaway", "too_fast", "too_slow"),
    "truncated": ("truncated",),
    "babble": ("runaway",),
    "loop": ("runaway",),
    "clipped": ("distorted",),
    "clipped_mild": ("distorted",),
    "fast_3x": ("too_fast", "truncated"),
    "slow_3x": ("too_slow", "runaway"),
    "noise": ("not_speech",),
    "tone": ("not_speech",),
    "buzz": ("not_speech",),
    "silence": ("not_speech",),
    "tiny_model": ("not_speech",),
}
SPEECH_KINDS = ("correct", "wrong_text", "truncated", "babble", "loop", "fast_3x", "slow_3x")
NOT_SPEECH_KINDS = ("noise", "tone", "buzz", "tiny_model")
#: Natural pace variation the speaking-rate bounds are measured on.
PIPER_LENGTH_SCALES = (0.85, 1.0, 1.15)
ESPEAK_RATES_WPM = (160, 175, 190)
ESPEAK_SPEAKERS = ("m1", "f3")
ESPEAK_LANGUAGES = ("en", "de", "es", "fr")


@dataclass(frozen=True)
class LabelledClip:
    """One calibration clip: who spoke it, its kind, the text it is judged against."""

    source: str  # "piper", "espeak" or "tiny XTTS"
    kind: str
    language: str
    text: str
    samples: np.ndarray
    rate: int
    sentence: int = 0

    @property
    def expected(self) -> tuple[str, ...]:
        return KINDS[self.kind]


def espeak_sentences(language: str) -> list[str]:
    """espeak's calibration sentences: the held-out English ones, and the golden set's plain,
    question and number sentences of the other languages."""
    if language == "en":
        return list(ENGLISH_SENTENCES[:10])
    return [i.text for i in golden_set(languages=(language,))
            if "long" not in i.features and "short" not in i.features]


def espeak_voice(language: str, speaker: str = "m1") -> str:
    return f"{language_facts(language).espeak_voice}+{speaker}"


def _degraded(source: str, language: str, texts: list[str],
              speak: Callable[..., tuple[np.ndarray, int]], fast: dict[str, object],
              slow: dict[str, object], babble_voice: Callable[[float], np.ndarray]
              ) -> Iterator[LabelledClip]:
    for index, text in enumerate(texts):
        samples, rate = speak(text)
        other = texts[(index + 3) % len(texts)]

        def clip(kind: str, x: np.ndarray, judged: str = text, rate: int = rate,
                 index: int = index) -> LabelledClip:
            return LabelledClip(source, kind, language, judged, x, rate, index)

        yield clip("correct", samples)
        yield clip("wrong_text", speak(other)[0])
        yield clip("truncated", degradations.cut(samples, 0.5))
        yield clip("babble", degradations.followed_by(samples, babble_voice(5.0)))
        yield clip("loop", speak(degradations.looped_text(text))[0])
        yield clip("clipped", degradations.clipped(samples, 8.0))
        yield clip("clipped_mild", degradations.clipped(samples, 3.0))
        yield clip("fast_3x", speak(text, **fast)[0])
        yield clip("slow_3x", speak(text, **slow)[0])


def piper_clips() -> Iterator[LabelledClip]:
    """Every kind made from Piper's neural voice, on :data:`ENGLISH_SENTENCES`."""
    def speak(text: str, **kw: object) -> tuple[np.ndarray, int]:
        return piper_voice.speak(text, **kw)  # type: ignore[arg-type]

    def babble(seconds: float) -> np.ndarray:
        return piper_voice.speak(degradations.babble_text(seconds))[0]

    yield from _degraded("piper", "en", list(ENGLISH_SENTENCES), speak,
                         {"length_scale": 1 / 3}, {"length_scale": 3.0}, babble)


def espeak_clips(language: str = "en") -> Iterator[LabelledClip]:
    """Every speech kind made from espeak-ng (voice m1) in ``language``."""
    voice = espeak_voice(language)

    def speak(text: str, words_per_minute: int = 175) -> tuple[np.ndarray, int]:
        return espeak.speak(text, voice, words_per_minute=words_per_minute)

    yield from _degraded("espeak", language, espeak_sentences(language), speak,
                         {"words_per_minute": 450}, {"words_per_minute": 60},
                         lambda seconds: espeak.babble(seconds, voice))


def not_speech_clips(tiny_model_clips: int = 4) -> Iterator[LabelledClip]:
    """Noise, a tone, the synthetic buzz voice, silence, and the tiny XTTS model's output
    (``tiny_model_clips`` of them; 0: skip the model)."""
    from honora_tts.qa.reference_voice import synthetic_voice_samples

    rate = degradations.DEFAULT_RATE
    text = ENGLISH_SENTENCES[0]
    t = np.arange(int(2.5 * rate)) / rate
    for seed, seconds in enumerate((2.5, 4.0, 6.0)):
        yield LabelledClip("signal", "noise", "en", text,
                           degradations.white_noise(seconds, seed=seed + 3), rate, seed)
        yield LabelledClip("signal", "noise", "en", text,
                           degradations.pink_noise(seconds, seed=seed + 6), rate, seed)
    yield LabelledClip("signal", "tone", "en", text,
                       (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    yield LabelledClip("signal", "buzz", "en", text, synthetic_voice_samples(3.0, rate), rate)
    yield LabelledClip("signal", "silence", "en", text, degradations.silence(3.0, rate), rate)
    for index, sample in enumerate(tiny_model_samples(ENGLISH_SENTENCES[:tiny_model_clips])):
        yield LabelledClip("tiny XTTS", "tiny_model", "en", ENGLISH_SENTENCES[index],
                           sample[0], sample[1], index)


def tiny_model_samples(texts: tuple[str, ...], max_new_tokens: int = 60
                       ) -> Iterator[tuple[np.ndarray, int]]:
    """``texts`` spoken by the offline tiny XTTS model (random weights: noise), on the CPU,
    through the model layer the worker uses."""
    if not texts:
        return
    from honora_tts.model import load_model
    from honora_tts.protocol import SynthesisParams

    model = load_model("tiny", device="cpu")
    path, sha = model.default_voice()
    latents = model.latents(path, sha).latents
    params = SynthesisParams(max_new_tokens=max_new_tokens, seed=0).to_sampling_params()
    for text in texts:
        yield np.asarray(model.synthesize(text, "en", latents, params).samples,
                         dtype=np.float32), model.sample_rate


def rate_clips() -> Iterator[tuple[str, str, str, np.ndarray, int]]:
    """(source, language, text, samples, rate) at natural paces: Piper at each of
    :data:`PIPER_LENGTH_SCALES`, espeak at each of :data:`ESPEAK_RATES_WPM` with two voices,
    in every espeak language."""
    for text in ENGLISH_SENTENCES:
        for scale in PIPER_LENGTH_SCALES:
            yield ("piper", "en", text, *piper_voice.speak(text, length_scale=scale))
    for language in ESPEAK_LANGUAGES:
        for text in espeak_sentences(language):
            for speaker in ESPEAK_SPEAKERS:
                for wpm in ESPEAK_RATES_WPM:
                    yield ("espeak", language, text,
                           *espeak.speak(text, espeak_voice(language, speaker),
                                         words_per_minute=wpm))
