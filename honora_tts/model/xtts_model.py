"""The loaded XTTS model: its languages and text pieces, speaker latents (cached), and synthesis
whole or streamed through the one decode path (:mod:`honora_tts.model.speech_decoding`).

Everything runs the real coqui-tts classes (``Xtts.get_conditioning_latents``, the GPT's
modules, the HiFi-GAN decoder). :class:`XttsModel` prepares a request once, here: the language,
the text pieces and their token ids, the bound on codes, the sampling; then it hands the rows
down to the batch scheduler, which decodes every request of the process together (a lone
request is a batch of one). Calls from any number of threads are safe and batch together.

Generation length
    ``max_new_tokens`` bounds the GPT codes per text piece (about 21.5 per second of audio). The
    default is the checkpoint's own bound (``gpt_max_audio_tokens`` less 3 for XTTS-v2: about 28 s);
    the tiny model's random weights never emit the stop token, so its checkpoint sets 64 (3 s).
    Larger requests are clamped to the checkpoint's bound.

fp16 (CUDA only)
    GPT decoding, the latent forward pass and the HiFi-GAN vocoder run under
    ``torch.autocast("cuda", float16)``: their matrix products and convolutions compute in half
    precision. Weights, speaker latents and the speaker encoder stay float32, output is float32.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from honora_tts.cancellation import CancelToken
from honora_tts.files import file_sha256
from honora_tts.model.batch_capacity import concurrency_and_rows, default_max_batch
from honora_tts.model.constants import DEFAULT_VOICE_FILE, GPT_COND_CHUNK_LEN, SAMPLE_RATE
from honora_tts.model.latent_cache import LATENT_FORMAT, LatentCache, Latents, LatentsResult
from honora_tts.model.reference_voice import cached_default_voice
from honora_tts.model.speech_decoding import SpeechDecoding, Synthesis, Utterance
from honora_tts.model.text_split import split_text
from honora_tts.protocol import (
    ErrorCode,
    SamplingParams,
    WorkerError,
    normalise_language,
)
from honora_tts.settings import cache_dir

if TYPE_CHECKING:
    from TTS.tts.models.xtts import Xtts

logger = logging.getLogger(__name__)

MIN_REFERENCE_S = 0.5


class XttsModel:
    """A loaded XTTS checkpoint with a speaker-latent cache, decoding through one batch
    scheduler of up to :attr:`max_batch` rows (default: 1 on a CPU, from the free memory on
    CUDA: :func:`~honora_tts.model.batch_capacity.default_max_batch`)."""

    def __init__(
        self,
        model: Xtts,
        *,
        name: str,
        weights_sha256: str,
        device: str,
        fp16: bool = False,
        checkpoint_dir: Path | None = None,
        default_max_new_tokens: int | None = None,
        cache_root: Path | None = None,
        latent_memory_entries: int = 64,
        latent_disk_entries: int = 1000,
        max_batch: int | None = None,
        load_phases: dict[str, float] | None = None,
    ):
        """``cache_root`` (default :func:`honora_tts.files.cache_dir`) holds the latent files
        (``latents/<weights>/``, at most ``latent_disk_entries``) and the default voice; at most
        ``latent_memory_entries`` latents stay in memory. ``load_phases``: how long loading
        took, phase by phase, in milliseconds (:func:`~honora_tts.model.load_model` measures
        them where they happen)."""
        self._model = model
        self.name = name
        self.weights_sha256 = weights_sha256
        self.device = device
        self.fp16 = fp16
        self.sample_rate = SAMPLE_RATE
        self.checkpoint_dir = checkpoint_dir
        self.load_phases: dict[str, float] = dict(load_phases or {})
        self.max_new_tokens_limit = int(model.gpt.max_gen_mel_tokens)
        self.default_max_new_tokens = min(
            default_max_new_tokens or self.max_new_tokens_limit, self.max_new_tokens_limit
        )
        self._latent_lock = threading.Lock()
        self._default_voice: tuple[Path, str] | None = None
        self.unavailable_languages = self._probe_languages()
        self.languages: tuple[str, ...] = tuple(
            lang for lang in model.config.languages if lang not in self.unavailable_languages
        )
        self._cache_root = cache_root or cache_dir()
        self._latents = LatentCache(
            self._cache_root / "latents" / weights_sha256[:16],
            capacity=latent_memory_entries,
            disk_capacity=latent_disk_entries,
            validate=self._latent_problem,
        )
        rows = max_batch or default_max_batch(model.gpt, device, fp16=fp16)
        self.decoding = SpeechDecoding(model, device, fp16=fp16, max_batch=rows)

    @property
    def coqui_model(self) -> Any:
        """The coqui-tts ``Xtts`` this model wraps (its GPT sizes the decoding batch; the
        tests and benchmarks run coqui's own ``inference`` on it as the reference)."""
        return self._model

    @property
    def max_batch(self) -> int:
        """Rows the scheduler decodes together at most."""
        return self.decoding.max_batch

    def set_max_batch(self, rows: int) -> None:
        """Decode up to ``rows`` requests together from now on."""
        self.decoding.resize(rows)

    def size_batch(self, concurrency: int | None) -> int:
        """Size the decoding batch for a caller that holds ``concurrency`` requests at once
        (None: this device's default); returns the concurrency to hold
        (:func:`~honora_tts.model.batch_capacity.concurrency_and_rows`)."""
        held, rows = concurrency_and_rows(self._model.gpt, self.device, fp16=self.fp16,
                                          requested=concurrency)
        self.set_max_batch(rows)
        logger.info("holding %d request(s) at once, decoding batch of %d row(s) on %s", held,
                    rows, self.device)
        return held

    def decoding_stats(self) -> dict[str, Any]:
        """The batch scheduler's counters (``max_batch``, ``submitted``, ``completed``,
        ``cancelled``, ``max_rows``, ``steps``, ...), the voice prefix cache's hits and misses,
        and where the vocoder runs."""
        return self.decoding.stats()

    def close(self) -> None:
        """Stop the scheduler and the vocoder lane (tests, benchmarks)."""
        self.decoding.close()

    # ---- languages and text

    def _probe_languages(self) -> dict[str, str]:
        missing: dict[str, str] = {}
        for lang in self._model.config.languages:
            try:
                self._model.tokenizer.preprocess_text("test", lang.split("-")[0])
            except ImportError as exc:
                missing[lang] = (
                    f"XTTS's {lang} text front-end needs a Python package that is not "
                    f"installed ({exc})"
                )
            except NotImplementedError as exc:
                missing[lang] = str(exc)
        if missing:
            logger.warning("languages unavailable in this worker: %s", ", ".join(missing))
        return missing

    def _language(self, language: str) -> str:
        lang = normalise_language(language)
        if lang in self.unavailable_languages:
            raise WorkerError(
                ErrorCode.UNSUPPORTED_LANGUAGE, self.unavailable_languages[lang], "language"
            )
        if lang not in self.languages:
            raise WorkerError(
                ErrorCode.UNSUPPORTED_LANGUAGE,
                f"unsupported language {language!r}; this model speaks {', '.join(self.languages)}",
                "language",
            )
        return lang

    def char_limit(self, language: str) -> int:
        """XTTS's per-language character limit (coqui ``tokenizer.char_limits``; 250 otherwise)."""
        return int(self._model.tokenizer.char_limits.get(language.split("-")[0].lower(), 250))

    def split_text(self, text: str, language: str) -> list[str]:
        """Pieces of at most :meth:`char_limit` characters (see :func:`split_text`)."""
        return split_text(text, language, self.char_limit(language))

    def _text_tokens(self, piece: str, language: str) -> list[int]:
        try:
            return self._model.tokenizer.encode(piece.strip().lower(), lang=language.split("-")[0])
        except NotImplementedError as exc:
            # num2words 0.5.14 cannot spell numbers in every XTTS language (hi, for one).
            raise WorkerError(
                ErrorCode.INVALID_INPUT,
                f"XTTS's {language} text front-end cannot spell part of this text "
                f"(numbers are not supported for {language}: write them as words). {exc}",
                "text",
            ) from exc

    def _pieces(self, text: str, language: str) -> list[str]:
        """Split for the character limit, then halve pieces whose tokens (numbers expand into
        words) would exceed the GPT's text-token limit."""
        limit = int(self._model.args.gpt_max_text_tokens)
        queue = self.split_text(text, language)
        if not queue:
            raise WorkerError(ErrorCode.TEXT_EMPTY, "text is empty", "text")
        pieces: list[str] = []
        while queue:
            piece = queue.pop(0)
            if len(self._text_tokens(piece, language)) < limit:
                pieces.append(piece)
                continue
            half = max(1, len(piece) // 2)
            space = piece.rfind(" ", 0, half + 1)
            cut = space if space > 0 else half
            if cut >= len(piece):
                raise WorkerError(
                    ErrorCode.TEXT_TOO_LONG,
                    f"a piece of {len(piece)} characters exceeds {limit} text tokens",
                    "text",
                )
            queue[:0] = [p for p in (piece[:cut].strip(), piece[cut:].strip()) if p]
        return pieces

    # ---- a request, prepared once

    def prepare(self, text: str, language: str, latents: Latents,
                sampling: SamplingParams | None = None,
                cancel: CancelToken | None = None) -> Utterance:
        """The request as the decoder takes it: the language checked, the text split into
        pieces and tokenized, the sampling checked, ``max_new_tokens`` resolved (None: the
        checkpoint's bound; larger: clamped to it). Raises :class:`WorkerError`."""
        sampling = sampling or SamplingParams()
        try:
            sampling.check()
        except ValueError as exc:
            raise WorkerError(ErrorCode.INVALID_INPUT, str(exc), "params") from None
        lang = self._language(language)
        pieces = [self._text_tokens(piece, lang) for piece in self._pieces(text, lang)]
        max_new = min(sampling.max_new_tokens or self.default_max_new_tokens,
                      self.max_new_tokens_limit)
        return Utterance(pieces=pieces, latents=latents, sampling=sampling,
                         max_new_tokens=max_new, cancel=cancel)

    def synthesize(self, text: str, language: str, latents: Latents,
                   sampling: SamplingParams | None = None, *,
                   cancel: CancelToken | None = None) -> Synthesis:
        """Speak ``text``: split into pieces under the language's limit, each decoded as a row
        of the shared batch, vocoded, joined with short fades and a pause
        (:func:`honora_tts.audio.join`). ``cancel`` stops it between two decoding steps
        (:class:`~honora_tts.cancellation.SynthesisCancelled`)."""
        return self.decoding.synthesize(self.prepare(text, language, latents, sampling, cancel))

    def stream(self, text: str, language: str, latents: Latents,
               sampling: SamplingParams | None = None, *,
               cancel: CancelToken | None = None) -> Iterator[np.ndarray]:
        """Speak ``text`` as float32 chunks, the first after ``stream_chunk_size`` GPT codes
        (:class:`~honora_tts.model.vocoder.IncrementalVocoder`: each chunk's new frames only).
        Invalid input raises here, before the first chunk is asked for; closing the iterator
        early, or ``cancel``, takes the row out of the batch."""
        return self.decoding.stream(self.prepare(text, language, latents, sampling, cancel))

    # ---- speaker latents

    def _latent_problem(self, saved: Any, key: str) -> str | None:
        import torch

        if not isinstance(saved, dict) or saved.get("format") != LATENT_FORMAT:
            return "not a latent record"
        if saved.get("key") != key:
            return "record holds another key"
        gpt, spk = saved.get("gpt_cond_latent"), saved.get("speaker_embedding")
        if not isinstance(gpt, torch.Tensor) or not isinstance(spk, torch.Tensor):
            return "tensors missing"
        model_dim = int(self._model.args.gpt_n_model_channels)
        d_vector = int(self._model.args.d_vector_dim)
        if gpt.ndim != 3 or gpt.shape[0] != 1 or gpt.shape[2] != model_dim or gpt.shape[1] < 1:
            return f"gpt_cond_latent has shape {tuple(gpt.shape)}, expected (1, N, {model_dim})"
        if self._model.args.gpt_use_perceiver_resampler and gpt.shape[1] != 32:
            return f"gpt_cond_latent has shape {tuple(gpt.shape)}, expected (1, 32, {model_dim})"
        if tuple(spk.shape) != (1, d_vector, 1):
            return f"speaker_embedding has shape {tuple(spk.shape)}, expected (1, {d_vector}, 1)"
        if not (torch.isfinite(gpt).all() and torch.isfinite(spk).all()):
            return "non-finite values"
        return None

    def latent_key(self, voice_sha256: str, gpt_cond_len: int, max_ref_length: int) -> str:
        """Cache key: voice content, latent arguments and this model's weights."""
        chunk = min(GPT_COND_CHUNK_LEN, gpt_cond_len)
        material = f"{voice_sha256}|{gpt_cond_len}|{chunk}|{max_ref_length}|{self.weights_sha256}"
        return hashlib.sha256(material.encode()).hexdigest()

    def _check_reference(self, voice_path: Path) -> None:
        from TTS.tts.models.xtts import load_audio

        try:
            wav = load_audio(str(voice_path), 22_050)
        except Exception as exc:
            raise WorkerError(
                ErrorCode.VOICE_NOT_AUDIO,
                f"the reference voice is not decodable audio: {type(exc).__name__}: {exc}",
                "voice_url",
            ) from exc
        seconds = wav.shape[-1] / 22_050
        if seconds < MIN_REFERENCE_S:
            raise WorkerError(
                ErrorCode.VOICE_NOT_AUDIO,
                f"the reference voice lasts {seconds:.2f} s; at least {MIN_REFERENCE_S} s is "
                "needed (3 to 10 s of clear speech works best)",
                "voice_url",
            )
        if float(wav.abs().max()) < 1e-4:
            raise WorkerError(ErrorCode.VOICE_NOT_AUDIO, "the reference voice is silent",
                              "voice_url")

    def latents(
        self,
        voice_path: Path,
        voice_sha256: str,
        *,
        gpt_cond_len: int | None = None,
        max_ref_length: int | None = None,
    ) -> LatentsResult:
        """Speaker latents of the reference voice at ``voice_path`` whose content has SHA-256
        ``voice_sha256``: from memory, else from disk, else computed and stored in both."""
        started = time.perf_counter()
        defaults = SamplingParams()
        cond_len = int(gpt_cond_len or defaults.gpt_cond_len)
        ref_len = int(max_ref_length or defaults.max_ref_length)
        key = self.latent_key(voice_sha256, cond_len, ref_len)

        def result(latents: Latents, cache: Literal["hit", "miss"], counter: str) -> LatentsResult:
            self._latents.count("latents_hits" if cache == "hit" else "latents_misses")
            self._latents.count(counter)
            elapsed = (time.perf_counter() - started) * 1000.0
            return LatentsResult(latents=latents, cache=cache, elapsed_ms=elapsed)

        found = self._latents.from_memory(key)
        if found is not None:
            return result(found, "hit", "latents_memory_hits")
        found = self._latents.from_disk(key, self.device)
        if found is not None:
            self._latents.remember(key, found)
            return result(found, "hit", "latents_disk_hits")

        self._check_reference(Path(voice_path))
        import torch

        with self._latent_lock, torch.inference_mode():
            found = self._latents.from_memory(key)  # computed by another thread meanwhile
            if found is not None:
                return result(found, "hit", "latents_memory_hits")
            try:
                gpt_latent, speaker = self._model.get_conditioning_latents(
                    audio_path=str(voice_path),
                    gpt_cond_len=cond_len,
                    gpt_cond_chunk_len=min(GPT_COND_CHUNK_LEN, cond_len),
                    max_ref_length=ref_len,
                )
            except Exception as exc:
                raise WorkerError(
                    ErrorCode.VOICE_NOT_AUDIO,
                    f"speaker latents failed for the reference voice: {type(exc).__name__}: {exc}",
                    "voice_url",
                ) from exc
            computed = Latents(gpt_cond_latent=gpt_latent.float(),
                               speaker_embedding=speaker.float(), key=key)
            self._latents.remember(key, computed)
        self._latents.store(key, computed, voice_sha256)
        return result(computed, "miss", "latents_computed")

    def clear_latent_memory(self) -> None:
        """Forget the in-memory latents (the disk cache stays)."""
        self._latents.forget_memory()

    def stats(self) -> dict[str, int]:
        """Latent cache counters: ``latents_hits``/``latents_misses`` (and hits split into
        ``latents_memory_hits``/``latents_disk_hits``), ``latents_computed`` (calls of
        ``get_conditioning_latents``), ``memory_entries``, ``disk_entries``,
        ``disk_corrupt_replaced``, ``disk_write_errors``."""
        return self._latents.stats()

    # ---- default voice

    def default_voice(self) -> tuple[Path, str]:
        """``(path, sha256)`` of the reference voice used when a request has none: the
        checkpoint's ``default_voice.wav``, else one made once in the cache directory."""
        if self._default_voice is None:
            path = None
            if self.checkpoint_dir is not None:
                candidate = self.checkpoint_dir / DEFAULT_VOICE_FILE
                if candidate.is_file():
                    path = candidate
            if path is None:
                path = cached_default_voice(self._cache_root)
            self._default_voice = (path, file_sha256(path))
        return self._default_voice
