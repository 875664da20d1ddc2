"""The loaded XTTS model: text pieces, speaker latents (cached), whole synthesis and streaming.

Everything runs the real coqui-tts classes (``Xtts.get_conditioning_latents``,
``Xtts.inference``, the GPT's streaming generator and the HiFi-GAN decoder).

Generation length
    ``max_new_tokens`` bounds the GPT codes per text piece (about 21.5 per second of audio). The
    default is the checkpoint's own bound (``gpt_max_audio_tokens`` less 3 for XTTS-v2: about 28 s);
    the tiny model's random weights never emit the stop token, so its checkpoint sets 64 (3 s).
    Larger requests are clamped to the checkpoint's bound.

fp16 (CUDA only)
    GPT generation, the latent forward pass and the HiFi-GAN vocoder run under
    ``torch.autocast("cuda", float16)``: their matrix products and convolutions compute in half
    precision. Weights, speaker latents and the speaker encoder stay float32, output is float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from honora_tts import audio
from honora_tts.files import file_sha256
from honora_tts.model.constants import DEFAULT_VOICE_FILE, GPT_COND_CHUNK_LEN, SAMPLE_RATE
from honora_tts.model.latent_cache import LATENT_FORMAT, LatentCache, Latents, LatentsResult
from honora_tts.model.reference_voice import cached_default_voice
from honora_tts.model.text_split import split_text
from honora_tts.model.utterance import PIECE_FADE_MS, PIECE_PAUSE_MS, Synthesis
from honora_tts.model.vocoder import IncrementalVocoder
from honora_tts.protocol import (
    SYNTHESIS_DEFAULTS,
    ErrorCode,
    SynthesisParams,
    WorkerError,
    normalise_language,
)
from honora_tts.settings import cache_dir

if TYPE_CHECKING:
    from TTS.tts.models.xtts import Xtts

    from honora_tts.model.batched_synthesis import BatchedSynthesis

logger = logging.getLogger(__name__)

MIN_REFERENCE_S = 0.5
#: The keys ``params`` may carry: :class:`~honora_tts.protocol.SynthesisParams`'s fields.
PARAM_NAMES = frozenset(SynthesisParams.model_fields)


class _RequestRng:
    """A request's own RNG stream: seeded once, saved and restored around each locked step so
    that interleaved requests cannot disturb a seeded one."""

    def __init__(self, seed: int | None, cuda_index: int | None):
        self.seed = seed
        self.cuda_index = cuda_index
        self._cpu_state: Any = None
        self._cuda_state: Any = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        import torch

        if self.seed is None:
            yield
            return
        devices = [self.cuda_index] if self.cuda_index is not None else []
        with torch.random.fork_rng(devices=devices):
            if self._cpu_state is None:
                torch.manual_seed(self.seed)
            else:
                torch.set_rng_state(self._cpu_state)
                if self.cuda_index is not None:
                    torch.cuda.set_rng_state(self._cuda_state, self.cuda_index)
            try:
                yield
            finally:
                self._cpu_state = torch.get_rng_state()
                if self.cuda_index is not None:
                    self._cuda_state = torch.cuda.get_rng_state(self.cuda_index)


@dataclass(frozen=True)
class _Generation:
    kwargs: dict[str, Any]
    speed: float
    max_new_tokens: int
    stream_chunk_size: int
    seed: int | None
    #: GPT tokens of a sentence's first streamed chunk (then ``stream_chunk_size`` each).
    first_chunk_size: int = 0

    def chunk_size(self, chunks_so_far: int) -> int:
        """Tokens of the next streamed chunk of a sentence."""
        if chunks_so_far == 0 and self.first_chunk_size:
            return self.first_chunk_size
        return self.stream_chunk_size


class _DropLengthWarning(logging.Filter):
    # transformers warns on every call that max_new_tokens overrides coqui's max_length.
    def filter(self, record: logging.LogRecord) -> bool:
        return "`max_new_tokens`" not in record.getMessage()


def _quiet_generation_warnings() -> None:
    target = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(f, _DropLengthWarning) for f in target.filters):
        target.addFilter(_DropLengthWarning())


class XttsModel:
    """A loaded XTTS checkpoint with a speaker-latent cache. Thread-safe: model work is
    serialized by one lock, taken per text piece (synthesis) or per chunk (streaming)."""

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
    ):
        """``cache_root`` (default :func:`honora_tts.files.cache_dir`) holds the latent files
        (``latents/<weights>/``, at most ``latent_disk_entries``) and the default voice; at most
        ``latent_memory_entries`` latents stay in memory."""
        self._model = model
        self.name = name
        self.weights_sha256 = weights_sha256
        self.device = device
        self.fp16 = fp16
        self.sample_rate = SAMPLE_RATE
        self.checkpoint_dir = checkpoint_dir
        self.max_new_tokens_limit = int(model.gpt.max_gen_mel_tokens)
        self.default_max_new_tokens = min(
            default_max_new_tokens or self.max_new_tokens_limit, self.max_new_tokens_limit
        )
        self._lock = threading.Lock()
        self._default_voice: tuple[Path, str] | None = None
        #: Set by :meth:`enable_batching`: synthesize/stream then decode in a shared batch.
        self.batching: BatchedSynthesis | None = None
        _quiet_generation_warnings()
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

    # ---- parameters

    def _generation(self, params: dict[str, Any] | None) -> _Generation:
        given = {k: v for k, v in (params or {}).items() if v is not None}
        unknown = sorted(set(given) - PARAM_NAMES)
        if unknown:
            raise WorkerError(
                ErrorCode.INVALID_INPUT,
                f"unknown synthesis parameter(s): {', '.join(unknown)}",
                f"params.{unknown[0]}",
            )
        merged = {**SYNTHESIS_DEFAULTS, **given}
        max_new = int(merged.get("max_new_tokens") or self.default_max_new_tokens)
        if max_new < 1:
            raise WorkerError(ErrorCode.INVALID_INPUT, "max_new_tokens must be positive",
                              "params.max_new_tokens")
        seed = merged.get("seed")
        return _Generation(
            kwargs={
                "temperature": float(merged["temperature"]),
                "length_penalty": float(merged["length_penalty"]),
                "repetition_penalty": float(merged["repetition_penalty"]),
                "top_k": int(merged["top_k"]),
                "top_p": float(merged["top_p"]),
                "do_sample": True,
                "max_new_tokens": min(max_new, self.max_new_tokens_limit),
            },
            speed=float(merged["speed"]),
            max_new_tokens=min(max_new, self.max_new_tokens_limit),
            stream_chunk_size=max(1, int(merged["stream_chunk_size"])),
            seed=None if seed is None else int(seed),
            # never more than the chunks after it: a small first chunk, then larger
            first_chunk_size=min(int(merged.get("stream_first_chunk_size") or 0),
                                 max(1, int(merged["stream_chunk_size"]))),
        )

    def _rng(self, seed: int | None) -> _RequestRng:
        cuda_index = None
        if self.device.startswith("cuda"):
            import torch

            cuda_index = torch.device(self.device).index or 0
        return _RequestRng(seed, cuda_index)

    @contextlib.contextmanager
    def _exclusive(self, rng: _RequestRng | None = None, *, half: bool = True) -> Iterator[None]:
        import torch

        seeded = rng.active() if rng else contextlib.nullcontext()
        autocast = (
            torch.autocast("cuda", dtype=torch.float16)
            if self.fp16 and half
            else contextlib.nullcontext()
        )
        with self._lock, torch.inference_mode(), seeded, autocast:
            yield

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
        cond_len = int(gpt_cond_len or SYNTHESIS_DEFAULTS["gpt_cond_len"])
        ref_len = int(max_ref_length or SYNTHESIS_DEFAULTS["max_ref_length"])
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
        with self._exclusive(half=False):
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
            computed = Latents(gpt_cond_latent=gpt_latent.float(), speaker_embedding=speaker.float())
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

    # ---- synthesis

    @property
    def coqui_model(self) -> Any:
        """The coqui-tts ``Xtts`` this model wraps (its GPT sizes the decoding batch)."""
        return self._model

    def enable_batching(self, max_batch: int) -> None:
        """Route :meth:`synthesize` and :meth:`stream` through a batch scheduler of up to
        ``max_batch`` rows (:mod:`honora_tts.model.batched_synthesis`)."""
        from honora_tts.model.batched_synthesis import BatchedSynthesis

        if self.batching is not None:
            self.batching.close()
        self.batching = BatchedSynthesis(self, max_batch=max_batch)

    def synthesize(
        self, text: str, language: str, latents: Latents, params: dict[str, Any] | None = None
    ) -> Synthesis:
        """Speak ``text``: split into pieces under the language's limit, each generated with
        ``Xtts.inference``, joined with short fades and a pause (:func:`honora_tts.audio.join`).
        With batching on, the pieces decode in the shared batch instead."""
        if self.batching is not None:
            return self.batching.synthesize(text, language, latents, params)
        lang = self._language(language)
        generation = self._generation(params)
        pieces = self._pieces(text, lang)
        rng = self._rng(generation.seed)
        started = time.perf_counter()
        wavs: list[np.ndarray] = []
        for index, piece in enumerate(pieces):
            try:
                wavs.append(self._generate_piece(piece, lang, latents, generation, rng))
            except WorkerError:
                raise
            except Exception as exc:
                raise WorkerError(
                    ErrorCode.SYNTHESIS_FAILED,
                    f"XTTS inference failed on piece {index + 1}/{len(pieces)} "
                    f"({len(piece)} characters): {type(exc).__name__}: {exc}",
                ) from exc
        samples = audio.join(wavs, SAMPLE_RATE, pause_ms=PIECE_PAUSE_MS, crossfade_ms=PIECE_FADE_MS)
        elapsed = (time.perf_counter() - started) * 1000.0
        return Synthesis(samples=samples, pieces=len(pieces), generation_ms=elapsed)

    def _generate_piece(
        self,
        piece: str,
        lang: str,
        latents: Latents,
        generation: _Generation,
        rng: _RequestRng,
    ) -> np.ndarray:
        """One text piece through the GPT and the vocoder (``Xtts.inference``): the one call of
        whole synthesis a batching scheduler replaces to decode several requests together."""
        with self._exclusive(rng):
            out = self._model.inference(
                piece,
                lang,
                latents.gpt_cond_latent,
                latents.speaker_embedding,
                speed=generation.speed,
                enable_text_splitting=False,
                **generation.kwargs,
            )
        return np.asarray(out["wav"], dtype=np.float32).reshape(-1)

    def stream(
        self,
        text: str,
        language: str,
        latents: Latents,
        params: dict[str, Any] | None = None,
        *,
        vocoder: Literal["incremental", "coqui"] = "incremental",
    ) -> Iterator[np.ndarray]:
        """Speak ``text`` as float32 chunks, the first after ``stream_chunk_size`` GPT tokens.
        ``vocoder="incremental"`` decodes each chunk's new frames only (:class:`IncrementalVocoder`);
        ``"coqui"`` uses ``Xtts.inference_stream`` (re-decodes everything per chunk). Invalid
        input raises here, before the first chunk is asked for. With batching on, incremental
        streams decode in the shared batch."""
        if self.batching is not None and vocoder == "incremental":
            return self.batching.stream(text, language, latents, params)
        lang = self._language(language)
        generation = self._generation(params)
        pieces = self._pieces(text, lang)
        if vocoder not in ("incremental", "coqui"):
            raise ValueError(f"vocoder must be 'incremental' or 'coqui', got {vocoder!r}")
        rng = self._rng(generation.seed)
        chunks_of = self._incremental_chunks if vocoder == "incremental" else self._coqui_chunks
        return self._stream_pieces(pieces, lang, latents, generation, rng, chunks_of)

    def _stream_pieces(
        self,
        pieces: list[str],
        lang: str,
        latents: Latents,
        generation: _Generation,
        rng: _RequestRng,
        chunks_of: Callable[..., Iterator[tuple[np.ndarray, bool]]],
    ) -> Iterator[np.ndarray]:
        fade = int(SAMPLE_RATE * PIECE_FADE_MS / 1000)
        pause = np.zeros(int(SAMPLE_RATE * PIECE_PAUSE_MS / 1000), dtype=np.float32)
        for index, piece in enumerate(pieces):
            # Like audio.join: pieces fade out, pause, and fade in.
            fade_in, fade_out = index > 0, index < len(pieces) - 1
            try:
                for chunk, final in chunks_of(piece, lang, latents, generation, rng):
                    if not chunk.size:
                        continue
                    chunk = chunk.copy()
                    if fade_in:
                        n = min(fade, chunk.size)
                        chunk[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
                        chunk = np.concatenate([pause, chunk])
                        fade_in = False
                    if final and fade_out:
                        n = min(fade, chunk.size)
                        chunk[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
                    yield chunk
            except WorkerError:
                raise
            except Exception as exc:
                raise WorkerError(
                    ErrorCode.SYNTHESIS_FAILED,
                    f"XTTS streaming failed on piece {index + 1}/{len(pieces)}: "
                    f"{type(exc).__name__}: {exc}",
                ) from exc

    def _incremental_chunks(
        self, piece: str, lang: str, latents: Latents, generation: _Generation, rng: _RequestRng
    ) -> Iterator[tuple[np.ndarray, bool]]:
        import torch

        gpt = self._model.gpt
        with self._exclusive(rng):
            tokens = self._text_tokens(piece, lang)
            text_tokens = torch.IntTensor(tokens).unsqueeze(0).to(self.device)
            fake_inputs = gpt.compute_embeddings(
                latents.gpt_cond_latent.to(self.device), text_tokens
            )
            prefix = gpt.gpt_inference.cached_prefix_emb
            generator = gpt.get_generator(
                fake_inputs=fake_inputs,
                num_beams=1,
                num_return_sequences=1,
                output_attentions=False,
                output_hidden_states=True,
                return_dict_in_generate=True,
                **generation.kwargs,
            )
        decoder = IncrementalVocoder(
            self._model.hifigan_decoder, latents.speaker_embedding.to(self.device), generation.speed
        )
        done = False
        chunks = 0
        while not done:
            with self._exclusive(rng):
                gpt.gpt_inference.store_prefix_emb(prefix)  # another request may have replaced it
                new: list[Any] = []
                size = generation.chunk_size(chunks)
                chunks += 1
                while len(new) < size:
                    try:
                        _, latent = next(generator)
                    except StopIteration:
                        done = True
                        break
                    new.append(latent)
                decoder.push(new)
                chunk = decoder.render(final=done)
            yield chunk, done

    def _coqui_chunks(
        self, piece: str, lang: str, latents: Latents, generation: _Generation, rng: _RequestRng
    ) -> Iterator[tuple[np.ndarray, bool]]:
        gpt = self._model.gpt
        chunks = self._model.inference_stream(
            piece,
            lang,
            latents.gpt_cond_latent,
            latents.speaker_embedding,
            stream_chunk_size=generation.stream_chunk_size,
            speed=generation.speed,
            enable_text_splitting=False,
            **generation.kwargs,
        )
        prefix = None
        pending: np.ndarray | None = None  # held one step: only the end tells which is final
        while True:
            with self._exclusive(rng):
                if prefix is not None:
                    gpt.gpt_inference.store_prefix_emb(prefix)
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                prefix = gpt.gpt_inference.cached_prefix_emb
                out = chunk.float().cpu().numpy().astype(np.float32, copy=False).reshape(-1)
            if pending is not None:
                yield pending, False
            pending = out
        if pending is not None:
            yield pending, True

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
