"""The XTTS-v2 model layer: loading, speaker-latent cache, text splitting, synthesis, streaming.

Everything runs the real coqui-tts classes (``XttsConfig``, ``Xtts.load_checkpoint``,
``Xtts.get_conditioning_latents``, ``Xtts.inference``, the GPT's streaming generator and the
HiFi-GAN decoder). Offline, a *tiny XTTS* (same classes, random weights, 33 M parameters) stands
in for the 1.8 GB release: :func:`build_tiny_checkpoint`. Its audio is noise.

Synthesis defaults
    :data:`DEFAULT_PARAMS` is the one default set: the values of the ``config.json`` shipped with
    the XTTS-v2 release (temperature 0.75, repetition_penalty 5.0, top_k 50, top_p 0.85,
    length_penalty 1.0) with speed 1.0, latents from the first 6 s (``gpt_cond_len``) of at most
    30 s of reference (``max_ref_length``), and 20 GPT tokens per streamed chunk. coqui's class
    config (temperature 0.85, repetition_penalty 2.0) and its method defaults
    (repetition_penalty 10.0) are not used. Requests override single values (``params``).

Generation length
    ``max_new_tokens`` bounds the GPT codes per text piece (about 21.5 per second of audio). The
    default is the checkpoint's own bound (``gpt_max_audio_tokens`` less 3 for XTTS-v2: about 28 s);
    the tiny model's random weights never emit the stop token, so its checkpoint sets 64 (3 s).
    Larger requests are clamped to the checkpoint's bound.

fp16 (``HONORA_FP16=1``, CUDA only)
    GPT generation, the latent forward pass and the HiFi-GAN vocoder run under
    ``torch.autocast("cuda", float16)``: their matrix products and convolutions compute in half
    precision. Weights, speaker latents and the speaker encoder stay float32, output is float32.
    On a CPU an explicit ``fp16=True`` is refused; the environment variable is ignored with a
    warning.

Environment
    ``HONORA_XTTS_CHECKPOINT`` (a checkpoint directory), ``HONORA_XTTS_MODEL`` (``tiny``,
    ``xtts_v2`` or a directory), ``HONORA_DEVICE`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``),
    ``HONORA_FP16``, ``HONORA_CACHE_DIR`` (default ``~/.cache/honora-tts``),
    ``HONORA_LATENT_CACHE_ENTRIES`` (in-memory latents, default 64),
    ``HONORA_LATENT_DISK_ENTRIES`` (latent files kept per model, default 1000).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from honora_tts import audio
from honora_tts.protocol import ErrorCode, WorkerError

if TYPE_CHECKING:
    import torch
    from TTS.tts.models.xtts import Xtts

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
#: GPT audio codes per second of 24 kHz audio (22050 Hz / 1024-sample code stride).
TOKENS_PER_SECOND = 22_050 / 1_024

DEFAULT_PARAMS: dict[str, float | int] = {
    "temperature": 0.75,
    "repetition_penalty": 5.0,
    "top_k": 50,
    "top_p": 0.85,
    "length_penalty": 1.0,
    "speed": 1.0,
    "gpt_cond_len": 6,
    "max_ref_length": 30,
    "stream_chunk_size": 20,
}
#: Keys ``params`` may carry besides :data:`DEFAULT_PARAMS`.
OPTIONAL_PARAMS = ("max_new_tokens", "seed")

TINY_DEFAULT_MAX_NEW_TOKENS = 64
#: Bumped whenever build_tiny_checkpoint changes: cached tiny checkpoints of another recipe are
#: rebuilt.
TINY_RECIPE = 1
#: Seconds of reference a latent computation uses per chunk (coqui's ``gpt_cond_chunk_len``).
GPT_COND_CHUNK_LEN = 6
MIN_REFERENCE_S = 0.5
PIECE_PAUSE_MS = 120.0
PIECE_FADE_MS = 10.0

XTTS_V2_MODEL_NAME = "tts_models/multilingual/multi-dataset/xtts_v2"
CHECKPOINT_FILES = ("model.pth", "config.json", "vocab.json")
METADATA_FILE = "honora_model.json"
DEFAULT_VOICE_FILE = "default_voice.wav"
_CHECKSUM_SUFFIX = ".sha256.json"
_LATENT_FORMAT = 1


class ModelLoadError(WorkerError):
    """The model could not be loaded; ``code`` is ``model_not_ready``."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.MODEL_NOT_READY, message)


@dataclass(frozen=True)
class Latents:
    """Speaker conditioning: ``gpt_cond_latent`` (1, 32, model_dim) for the GPT and
    ``speaker_embedding`` (1, 512, 1) for the vocoder."""

    gpt_cond_latent: torch.Tensor
    speaker_embedding: torch.Tensor


@dataclass(frozen=True)
class LatentsResult:
    latents: Latents
    cache: Literal["hit", "miss"]
    elapsed_ms: float


@dataclass(frozen=True)
class Synthesis:
    #: float32 mono at :data:`SAMPLE_RATE`.
    samples: np.ndarray
    pieces: int
    generation_ms: float


def cache_dir() -> Path:
    """``$HONORA_CACHE_DIR`` or ``~/.cache/honora-tts``."""
    configured = os.environ.get("HONORA_CACHE_DIR", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "honora-tts"


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ModelLoadError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ModelLoadError(f"{name}={value} must be at least {minimum}")
    return value


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    return raw in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- files, checksums


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _checksum_records(path: Path) -> list[Path]:
    fallback = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return [
        path.with_name(path.name + _CHECKSUM_SUFFIX),
        cache_dir() / "checksums" / f"{fallback}.json",
    ]


def weights_checksum(path: Path) -> str:
    """SHA-256 of a (large) weights file, remembered next to it (or in the cache directory when
    its directory is read-only) keyed by size and modification time."""
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    records = _checksum_records(path)
    for record in records:
        try:
            saved = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and all(saved.get(k) == v for k, v in key.items()):
            sha = saved.get("sha256")
            if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha):
                return sha
    sha = file_sha256(path)
    payload = json.dumps({**key, "sha256": sha, "file": path.name}).encode()
    for record in records:
        try:
            _atomic_write_bytes(record, payload)
            break
        except OSError:
            continue
    return sha


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Held (``flock``) by one process at a time: around building a checkpoint or a cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- text splitting

_PYSBD_LANGUAGES = {
    "en", "hi", "mr", "zh", "es", "am", "ar", "hy", "bg", "ur", "ru", "pl", "fa", "nl", "da",
    "fr", "my", "el", "it", "ja", "de", "kk", "sk",
}  # fmt: skip
_CLAUSE_END = re.compile(r"[,;:\u2013\u2014\u060c\u061b\u3001\uff0c\uff1b\uff1a]+\s*")
_WHITESPACE = re.compile(r"\s+")
_PARAGRAPHS = re.compile(r"\s*\n\s*")
_segmenters: dict[str, Any] = {}
_segmenters_lock = threading.Lock()


def _sentences(text: str, language: str) -> list[str]:
    import pysbd

    code = language.split("-")[0].lower()
    code = code if code in _PYSBD_LANGUAGES else "en"
    with _segmenters_lock:
        segmenter = _segmenters.get(code)
        if segmenter is None:
            segmenter = _segmenters[code] = pysbd.Segmenter(language=code, clean=False)
        try:
            return [s for s in segmenter.segment(text) if s.strip()]
        # pysbd's rules can fail on odd input: fall back to clause splitting.
        except Exception:  # noqa: BLE001
            logger.warning("pysbd could not segment %d characters of %s text", len(text), code)
            return [text]


def _split_long(text: str, limit: int, level: int = 0) -> list[str]:
    """Split one over-long sentence: at clause punctuation, then whitespace, then hard cuts."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    patterns = (_CLAUSE_END, _WHITESPACE)
    if level >= len(patterns):
        return [p for p in (text[i:i + limit].strip() for i in range(0, len(text), limit)) if p]
    cuts = [m.end() for m in patterns[level].finditer(text) if 0 < m.end() < len(text)]
    if not cuts:
        return _split_long(text, limit, level + 1)
    segments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return _pack(segments, limit, lambda seg: _split_long(seg, limit, level + 1))


def _pack(segments: list[str], limit: int, split_further: Any) -> list[str]:
    """Greedily join consecutive segments into pieces of at most ``limit`` characters."""
    pieces: list[str] = []
    current = ""
    for segment in segments:
        if len((current + segment).strip()) <= limit:
            current += segment
            continue
        if current.strip():
            pieces.append(current.strip())
        current = ""
        if len(segment.strip()) <= limit:
            current = segment
        else:
            pieces.extend(split_further(segment))
    if current.strip():
        pieces.append(current.strip())
    return pieces


def split_text(text: str, language: str, limit: int) -> list[str]:
    """Pieces of ``text`` of at most ``limit`` characters: sentences (pysbd, no spaCy) joined
    while they fit; a sentence over the limit is cut at clause punctuation, then at whitespace,
    then every ``limit`` characters. Whitespace inside a piece is collapsed to single spaces."""
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    pieces: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        if not paragraph.strip():
            continue
        sentences = _sentences(paragraph, language)
        pieces.extend(_pack(sentences, limit, lambda s: _split_long(s, limit)))
    return [_WHITESPACE.sub(" ", p).strip() for p in pieces if p.strip()]


# --------------------------------------------------------------------------- latent cache


class _LatentCache:
    """In-memory LRU plus one ``torch.save`` file per key (written atomically)."""

    def __init__(self, directory: Path, capacity: int, disk_capacity: int, validate: Any):
        self.directory = directory
        self.capacity = capacity
        self.disk_capacity = disk_capacity
        self._validate = validate
        self._memory: OrderedDict[str, Latents] = OrderedDict()
        self._lock = threading.Lock()
        self.counters = {
            "latents_hits": 0,
            "latents_misses": 0,
            "latents_memory_hits": 0,
            "latents_disk_hits": 0,
            "latents_computed": 0,
            "disk_corrupt_replaced": 0,
            "disk_write_errors": 0,
        }

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pt"

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def from_memory(self, key: str) -> Latents | None:
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
            return found

    def remember(self, key: str, latents: Latents) -> None:
        with self._lock:
            self._memory[key] = latents
            self._memory.move_to_end(key)
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)

    def forget_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def from_disk(self, key: str, device: str) -> Latents | None:
        import torch

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            problem = self._validate(saved, key)
        # A truncated or foreign file fails to unpickle in many ways.
        except Exception as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            logger.warning("latent cache file %s is unusable (%s): replacing it", path, problem)
            with contextlib.suppress(OSError):
                path.unlink()
            self.count("disk_corrupt_replaced")
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return Latents(
            gpt_cond_latent=saved["gpt_cond_latent"].to(device),
            speaker_embedding=saved["speaker_embedding"].to(device),
        )

    def store(self, key: str, latents: Latents, voice_sha256: str) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(
            {
                "format": _LATENT_FORMAT,
                "key": key,
                "voice_sha256": voice_sha256,
                "gpt_cond_latent": latents.gpt_cond_latent.detach().float().cpu().contiguous(),
                "speaker_embedding": latents.speaker_embedding.detach().float().cpu().contiguous(),
            },
            buffer,
        )
        try:
            _atomic_write_bytes(self.path(key), buffer.getvalue())
            self._prune()
        except OSError as exc:
            logger.warning("could not write latent cache file %s: %s", self.path(key), exc)
            self.count("disk_write_errors")

    def _prune(self) -> None:
        files = list(self.directory.glob("*.pt"))
        if len(files) <= self.disk_capacity:
            return
        aged = []
        for file in files:
            with contextlib.suppress(OSError):
                aged.append((file.stat().st_mtime_ns, file))
        aged.sort()
        for _, file in aged[: len(aged) - self.disk_capacity]:
            with contextlib.suppress(OSError):
                file.unlink()

    def stats(self) -> dict[str, int]:
        with self._lock:
            facts = dict(self.counters)
            facts["memory_entries"] = len(self._memory)
        facts["disk_entries"] = (
            sum(1 for _ in self.directory.glob("*.pt")) if self.directory.is_dir() else 0
        )
        return facts


# --------------------------------------------------------------------------- streaming vocoder


class IncrementalVocoder:
    """Vocodes a growing sequence of GPT latents chunk by chunk in linear time.

    coqui's ``inference_stream`` re-runs the HiFi-GAN decoder over *all* latents for every chunk
    (quadratic in the utterance length). Here the decoder's two linear interpolations (code
    stride -> hop, 22.05 -> 24 kHz) are computed over the whole sequence (cheap), and the
    convolutional generator runs only on a window of new frames plus ``context_frames`` on each
    side: its receptive field is about +-10 frames, so the window's output equals the full
    decode to float rounding. The rightmost frames, which later latents can still change, are
    held back until the next call.
    """

    context_frames = 16

    def __init__(self, decoder: Any, speaker_embedding: torch.Tensor, speed: float = 1.0):
        self.decoder = decoder
        self.speaker_embedding = speaker_embedding
        self.length_scale = 1.0 / max(speed, 0.05)
        self.hop = int(decoder.output_hop_length)
        self._frame_ratio = decoder.ar_mel_length_compression / decoder.output_hop_length
        self._rate_ratio = decoder.output_sample_rate / decoder.input_sample_rate
        per_latent = self._frame_ratio * self._rate_ratio
        self.unstable_frames = math.ceil((2 * max(self.length_scale, 1.0) + 2) * per_latent) + 2
        self._latents: list[torch.Tensor] = []
        self._emitted = 0
        self.vocoded_frames = 0

    def push(self, latents: list[torch.Tensor]) -> None:
        """Append latents, each (1, model_dim) or (model_dim,)."""
        self._latents.extend(lat.reshape(1, -1) for lat in latents)

    def frames(self) -> torch.Tensor:
        """The decoder input for all latents so far: (1, decoder_input_dim, frames)."""
        import torch
        import torch.nn.functional as F

        latents = torch.cat(self._latents, dim=0)[None]
        if self.length_scale != 1.0:
            latents = F.interpolate(
                latents.transpose(1, 2), scale_factor=self.length_scale, mode="linear"
            ).transpose(1, 2)
        z = F.interpolate(latents.transpose(1, 2), scale_factor=[self._frame_ratio], mode="linear")
        if self._rate_ratio != 1.0:
            z = F.interpolate(z, scale_factor=[self._rate_ratio], mode="linear")
        return z

    def render(self, final: bool = False) -> np.ndarray:
        """New float32 samples: everything stable so far, or (``final``) everything."""
        if not self._latents:
            return np.zeros(0, dtype=np.float32)
        z = self.frames()
        total = z.shape[-1]
        end = total if final else total - self.unstable_frames - self.context_frames
        if end <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        start = max(0, self._emitted - self.context_frames)
        stop = total if final else end + self.context_frames
        g = self.speaker_embedding.to(z.device)
        wav = self.decoder.waveform_decoder(z[:, :, start:stop], g=g).reshape(-1)
        if wav.shape[0] != (stop - start) * self.hop:
            raise RuntimeError(
                f"vocoder returned {wav.shape[0]} samples for {stop - start} frames "
                f"(expected {self.hop} per frame)"
            )
        self.vocoded_frames += stop - start
        out = wav[(self._emitted - start) * self.hop : (end - start) * self.hop]
        self._emitted = end
        return out.float().cpu().numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------- the model


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
    ):
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
        self.batching: Any = None
        _quiet_generation_warnings()
        self.unavailable_languages = self._probe_languages()
        self.languages: tuple[str, ...] = tuple(
            lang for lang in model.config.languages if lang not in self.unavailable_languages
        )
        self._latents = _LatentCache(
            cache_dir() / "latents" / weights_sha256[:16],
            capacity=_env_int("HONORA_LATENT_CACHE_ENTRIES", 64, 1),
            disk_capacity=_env_int("HONORA_LATENT_DISK_ENTRIES", 1000, 1),
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
        lang = {"zh": "zh-cn"}.get(language, language)
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
        unknown = sorted(set(given) - set(DEFAULT_PARAMS) - set(OPTIONAL_PARAMS))
        if unknown:
            raise WorkerError(
                ErrorCode.INVALID_INPUT,
                f"unknown synthesis parameter(s): {', '.join(unknown)}",
                f"params.{unknown[0]}",
            )
        merged = {**DEFAULT_PARAMS, **given}
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

        if not isinstance(saved, dict) or saved.get("format") != _LATENT_FORMAT:
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
        cond_len = int(gpt_cond_len or DEFAULT_PARAMS["gpt_cond_len"])
        ref_len = int(max_ref_length or DEFAULT_PARAMS["max_ref_length"])
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
        ``Xtts.inference``, joined with short fades and a pause (:func:`honora_tts.audio.join`)."""
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
            except WorkerError:
                raise
            except Exception as exc:
                raise WorkerError(
                    ErrorCode.SYNTHESIS_FAILED,
                    f"XTTS inference failed on piece {index + 1}/{len(pieces)} "
                    f"({len(piece)} characters): {type(exc).__name__}: {exc}",
                ) from exc
            wavs.append(np.asarray(out["wav"], dtype=np.float32).reshape(-1))
        samples = audio.join(wavs, SAMPLE_RATE, pause_ms=PIECE_PAUSE_MS, crossfade_ms=PIECE_FADE_MS)
        elapsed = (time.perf_counter() - started) * 1000.0
        return Synthesis(samples=samples, pieces=len(pieces), generation_ms=elapsed)

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
        input raises here, before the first chunk is asked for."""
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
        chunks_of: Any,
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
        while not done:
            with self._exclusive(rng):
                gpt.gpt_inference.store_prefix_emb(prefix)  # another request may have replaced it
                new: list[Any] = []
                while len(new) < generation.stream_chunk_size:
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
                path = _cached_default_voice()
            self._default_voice = (path, file_sha256(path))
        return self._default_voice


# --------------------------------------------------------------------------- reference voice

_REFERENCE_SENTENCE = (
    "Hello, this is the default reference voice. It speaks clearly and calmly, "
    "so that every word can be heard."
)


def _synthetic_voice(seconds: float = 4.0, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A voiced, speech-like signal: a gliding 90-160 Hz pitch, harmonics shaped by moving
    formants, and syllable-rate amplitude."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.4 * t) + 8 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    vowel = (np.sin(2 * np.pi * 1.7 * t) + 1) / 2
    formants = [(500 + 300 * vowel, 90), (1500 + 600 * vowel, 120), (2500, 160)]
    signal = np.zeros_like(t)
    for k in range(1, 40):
        freq = k * f0
        gain = sum(np.exp(-0.5 * ((freq - fc) / bw) ** 2) for fc, bw in formants) + 0.02
        signal += gain * np.sin(k * phase) / k**0.5
    syllables = np.clip(np.sin(2 * np.pi * 3.8 * t), 0, None) ** 0.6
    signal *= syllables
    signal += np.random.default_rng(0).normal(0, 0.003, t.size)
    return (0.6 * signal / np.max(np.abs(signal))).astype(np.float32)


def write_reference_voice(path: Path) -> str:
    """Write a reference voice WAV (24 kHz, 16-bit): espeak-ng speaking a fixed sentence, or a
    synthetic voiced signal where espeak-ng is missing. Returns which one (``espeak-ng`` or
    ``synthetic``)."""
    samples, source = None, "synthetic"
    espeak = shutil.which("espeak-ng")
    if espeak:
        with tempfile.TemporaryDirectory() as scratch:
            wav = Path(scratch) / "voice.wav"
            try:
                subprocess.run(
                    [espeak, "-v", "en", "-s", "150", "-w", str(wav), _REFERENCE_SENTENCE],
                    check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                )
                decoded, rate = audio.decode(wav.read_bytes())
                if audio.duration_s(decoded, rate) >= 2.0:
                    samples, source = audio.resample(decoded, rate, SAMPLE_RATE), "espeak-ng"
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                logger.warning("espeak-ng failed (%s); using a synthetic reference voice", exc)
    if samples is None:
        samples = _synthetic_voice()
    peak = float(np.max(np.abs(samples))) or 1.0
    _atomic_write_bytes(path, audio.encode(samples * (0.7 / peak), SAMPLE_RATE, "wav"))
    return source


def _cached_default_voice() -> Path:
    path = cache_dir() / "default-voice" / DEFAULT_VOICE_FILE
    if not path.is_file():
        with file_lock(path.with_suffix(".lock")):
            if not path.is_file():
                write_reference_voice(path)
    return path


# --------------------------------------------------------------------------- tiny checkpoint

_TINY_CORPUS = (
    "the quick brown fox jumps over the lazy dog while the band plays a slow song",
    "hello world, this is a test of the speech system. how are you today?",
    "she sells sea shells by the sea shore and the shells she sells are surely sea shells",
    "one two three four five six seven eight nine ten eleven twelve twenty hundred thousand",
    "el veloz murciélago hindú comía feliz cardillo y kiwi. la cigüeña tocaba el saxofón",
    "portez ce vieux whisky au juge blond qui fume. où est la gare? très bien, merci",
    "victor jagt zwölf boxkämpfer quer über den großen sylter deich. guten tag!",
    "quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!",
    "à noite, vovô kowalsky vê o ímã cair no pé do pinguim queixoso e vovó põe açúcar",
    "pchnąć w tę łódź jeża lub ośm skrzyń fig. zażółć gęślą jaźń",
    "pijamalı hasta yağız şoföre çabucak güvendi. günaydın",
    "съешь же ещё этих мягких французских булок, да выпей чаю. привет мир",
    "pa's wijze lynx bezag vroom het fikse aquaduct. goedemorgen",
    "příliš žluťoučký kůň úpěl ďábelské ódy. dobrý den",
    "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت. مرحبا بالعالم",
    "árvíztűrő tükörfúrógép. jó napot kívánok",
    "nǐ hǎo shì jiè. jīn tiān tiān qì hěn hǎo. konnichiwa sekai. annyeonghaseyo",
    "नमस्ते दुनिया। आज मौसम अच्छा है।",
)


def _tiny_alphabet() -> list[str]:
    ranges = [(0x20, 0x7F), (0xA0, 0x250), (0x370, 0x400), (0x400, 0x530), (0x600, 0x700),
              (0x900, 0x980), (0x1E00, 0x1F00)]
    return [chr(c) for lo, hi in ranges for c in range(lo, hi) if chr(c).isprintable()]


def build_tiny_checkpoint(directory: Path, *, seed: int = 0) -> Path:
    """Build the tiny XTTS into ``directory`` (created): ``vocab.json`` (a small BPE with XTTS's
    special and language tokens), ``config.json``, ``model.pth`` (random weights from ``seed``;
    the same seed gives byte-identical weights), ``default_voice.wav`` and
    ``honora_model.json``. Loadable by the real ``Xtts.load_checkpoint``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    skip_unused_sklearn_import()
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = XttsConfig()
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]"] + [f"[{x}]" for x in config.languages]
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=specials, initial_alphabet=_tiny_alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_TINY_CORPUS) * 4, trainer)
    tokenizer.save(str(directory / "vocab.json"))

    args = config.model_args
    args.gpt_layers = 2
    args.gpt_n_model_channels = 256
    args.gpt_n_heads = 4
    args.decoder_input_dim = 256
    args.gpt_max_audio_tokens = 320
    args.gpt_use_perceiver_resampler = True
    args.gpt_number_text_tokens = max(tokenizer.get_vocab().values()) + 1
    args.gpt_start_text_token = tokenizer.token_to_id("[START]")
    args.gpt_stop_text_token = tokenizer.token_to_id("[STOP]")
    config.temperature = float(DEFAULT_PARAMS["temperature"])
    config.repetition_penalty = float(DEFAULT_PARAMS["repetition_penalty"])
    config.top_p = float(DEFAULT_PARAMS["top_p"])
    config.top_k = int(DEFAULT_PARAMS["top_k"])
    config.gpt_cond_len = int(DEFAULT_PARAMS["gpt_cond_len"])
    config.gpt_cond_chunk_len = GPT_COND_CHUNK_LEN
    config.max_ref_len = int(DEFAULT_PARAMS["max_ref_length"])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Xtts(config)
    state = {name: tensor.detach().clone().contiguous() for name, tensor in
             model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"model": state}, buffer)
    _atomic_write_bytes(directory / "model.pth", buffer.getvalue())
    config.save_json(str(directory / "config.json"))
    source = write_reference_voice(directory / DEFAULT_VOICE_FILE)
    metadata = {
        "name": f"tiny-xtts-seed{seed} (random weights)",
        "random_weights": True,
        "seed": seed,
        "parameters": sum(t.numel() for t in state.values()),
        "default_max_new_tokens": TINY_DEFAULT_MAX_NEW_TOKENS,
        "default_voice": source,
        "builder": "honora_tts.xtts.build_tiny_checkpoint",
        "recipe": TINY_RECIPE,
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    weights_checksum(directory / "model.pth")
    return directory


def _is_current_tiny_checkpoint(directory: Path) -> bool:
    if not all((directory / name).is_file() for name in (*CHECKPOINT_FILES, METADATA_FILE)):
        return False
    try:
        return json.loads((directory / METADATA_FILE).read_text()).get("recipe") == TINY_RECIPE
    except (OSError, ValueError, AttributeError):
        return False


def tiny_checkpoint_dir(seed: int = 0) -> Path:
    """The tiny checkpoint for ``seed`` under the cache directory, built on first use. Safe when
    several processes start at once: one builds (under a file lock, into a temporary directory
    renamed into place), the others wait and reuse it."""
    root = cache_dir()
    final = root / f"tiny-xtts-seed{seed}"
    if _is_current_tiny_checkpoint(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"tiny-xtts-seed{seed}.lock"):
        if _is_current_tiny_checkpoint(final):
            return final
        if final.exists():
            shutil.rmtree(final)
        scratch = Path(tempfile.mkdtemp(prefix=f".tiny-xtts-seed{seed}.", dir=root))
        try:
            started = time.perf_counter()
            build_tiny_checkpoint(scratch, seed=seed)
            # The checksum record stores the file's mtime, which a rename keeps.
            os.rename(scratch, final)
            logger.info("built %s in %.1f s", final, time.perf_counter() - started)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return final


def tiny_model_main(argv: list[str]) -> int:
    """``honora-tts tiny-model [--seed N] [--dir D]``: build the tiny checkpoint, print its
    directory."""
    parser = argparse.ArgumentParser(
        prog="honora-tts tiny-model",
        description="Build the offline tiny XTTS checkpoint (random weights: its audio is noise).",
    )
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="build into this directory instead of the cache directory")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    if options.dir is not None:
        directory = build_tiny_checkpoint(options.dir, seed=options.seed)
    else:
        directory = tiny_checkpoint_dir(options.seed)
    sha = weights_checksum(directory / "model.pth")
    print(directory)
    print(f"model.pth sha256 {sha} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- loading

_loaded: XttsModel | None = None
_load_lock = threading.Lock()


def _resolve_device(device: str | None) -> str:
    import torch

    wanted = (device or os.environ.get("HONORA_DEVICE", "") or "auto").strip().lower()
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cpu":
        return "cpu"
    if re.fullmatch(r"cuda(:\d+)?", wanted):
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {wanted!r} was asked for but CUDA is not available")
        return wanted
    raise ModelLoadError(f"unknown device {wanted!r}; use cpu, cuda, cuda:N or auto")


def _resolve_fp16(fp16: bool | None, device: str) -> bool:
    if fp16 is not None:
        if fp16 and not device.startswith("cuda"):
            raise ModelLoadError(
                f"fp16 needs a CUDA device; this model would run on {device!r}. "
                "Drop fp16 (or HONORA_FP16) on CPUs."
            )
        return fp16
    if _env_flag("HONORA_FP16"):
        if device.startswith("cuda"):
            return True
        logger.warning("HONORA_FP16 is set but the model runs on %s: ignored (fp32)", device)
    return False


def _xtts_v2_dir() -> Path:
    from TTS.utils.manage import ModelManager

    manager = ModelManager(progress_bar=False)
    target = Path(manager.output_prefix) / XTTS_V2_MODEL_NAME.replace("/", "--")
    if not _has_checkpoint_files(target) and os.environ.get("COQUI_TOS_AGREED") != "1":
        raise ModelLoadError(
            "XTTS-v2 is not downloaded and downloading it needs COQUI_TOS_AGREED=1 (Coqui Public "
            "Model License, non-commercial) and network access. Point HONORA_XTTS_CHECKPOINT at "
            "a checkpoint directory (model.pth, config.json, vocab.json), or set "
            "HONORA_XTTS_MODEL=tiny for the offline tiny model (random weights)."
        )
    try:
        model_path, _, _ = manager.download_model(XTTS_V2_MODEL_NAME)
    except Exception as exc:
        raise ModelLoadError(
            f"downloading XTTS-v2 failed ({type(exc).__name__}: {exc}). Without network access "
            "set HONORA_XTTS_CHECKPOINT to a checkpoint directory, or HONORA_XTTS_MODEL=tiny."
        ) from exc
    path = Path(model_path)
    return path if path.is_dir() else path.parent


def _has_checkpoint_files(directory: Path) -> bool:
    return all((directory / name).is_file() for name in CHECKPOINT_FILES)


def _resolve_source(source: str | None) -> tuple[Path, str | None]:
    """Checkpoint directory and, for the release, its name."""
    if source is None:
        checkpoint = os.environ.get("HONORA_XTTS_CHECKPOINT", "").strip()
        source = checkpoint or os.environ.get("HONORA_XTTS_MODEL", "").strip() or "xtts_v2"
    if source == "tiny":
        return tiny_checkpoint_dir(0), None
    if source == "xtts_v2":
        return _xtts_v2_dir(), "xtts_v2"
    directory = Path(source).expanduser()
    if not directory.is_dir():
        raise ModelLoadError(
            f"model source {source!r} is neither 'tiny', 'xtts_v2' nor an existing checkpoint "
            "directory (HONORA_XTTS_CHECKPOINT / HONORA_XTTS_MODEL)"
        )
    missing = [name for name in CHECKPOINT_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelLoadError(f"checkpoint directory {directory} lacks {', '.join(missing)}")
    return directory, None


def skip_unused_sklearn_import() -> None:
    """Keep transformers from importing scikit-learn, a third of a worker's import time on a
    CPU (measured 22-26 s against 13-20 s). transformers loads it only for assisted generation's
    ROC calibration (``candidate_generator``), which XTTS never uses; scikit-learn is installed
    because librosa needs it. Must run before coqui-tts is first imported."""
    if "transformers.generation.candidate_generator" in sys.modules:
        return
    from transformers.utils import import_utils

    import_utils._sklearn_available = False


def _open_checkpoint(directory: Path, name: str | None, device: str, fp16: bool) -> XttsModel:
    skip_unused_sklearn_import()
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    metadata: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        metadata = json.loads((directory / METADATA_FILE).read_text())
    try:
        config = XttsConfig()
        config.load_json(str(directory / "config.json"))
        model = Xtts(config)
        model.load_checkpoint(
            config,
            checkpoint_dir=str(directory),
            vocab_path=str(directory / "vocab.json"),
            eval=True,
            use_deepspeed=False,
        )
        model.to(device)
    except Exception as exc:
        raise ModelLoadError(
            f"loading the XTTS checkpoint in {directory} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return XttsModel(
        model,
        name=name or str(metadata.get("name") or directory.name),
        weights_sha256=weights_checksum(directory / "model.pth"),
        device=device,
        fp16=fp16,
        checkpoint_dir=directory,
        default_max_new_tokens=metadata.get("default_max_new_tokens"),
    )


def load_model(
    source: str | None = None, *, device: str | None = None, fp16: bool | None = None
) -> XttsModel:
    """The process's model, loaded on first call (thread-safe); later calls return it.

    ``source``: ``"tiny"``, ``"xtts_v2"`` or a checkpoint directory; default
    ``$HONORA_XTTS_CHECKPOINT``, else ``$HONORA_XTTS_MODEL``, else ``"xtts_v2"``. ``device``:
    default ``$HONORA_DEVICE``, else CUDA when available. ``fp16``: default ``$HONORA_FP16``;
    CUDA only. Raises :class:`ModelLoadError`."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _load_lock:
        if _loaded is not None:
            return _loaded
        resolved_device = _resolve_device(device)
        half = _resolve_fp16(fp16, resolved_device)
        directory, name = _resolve_source(source)
        started = time.perf_counter()
        model = _open_checkpoint(directory, name, resolved_device, half)
        logger.info("loaded %s (%s) on %s%s in %.1f s", model.name, model.weights_sha256[:12],
                    resolved_device, " fp16" if half else "", time.perf_counter() - started)
        from honora_tts.version import record_loaded_model

        record_loaded_model(model.name, model.weights_sha256, resolved_device)
        _loaded = model
        return model


def reset_loaded_model() -> None:
    """Forget the process's model (tests): the next :func:`load_model` loads again."""
    global _loaded
    with _load_lock:
        _loaded = None
