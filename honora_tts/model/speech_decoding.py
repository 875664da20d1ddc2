"""The one decode path: an utterance's pieces become rows of the batch scheduler, their codes and
stream latents become audio in the vocoder lane, whole or streamed.

:class:`~honora_tts.model.xtts_model.XttsModel` prepares a request once (language, text pieces
as token ids, the sampling of :class:`~honora_tts.protocol.SamplingParams`, the bound on codes,
the speaker latents) and hands it here; nothing here calls back up. Every synthesis, alone or
concurrent, goes through the same scheduler (a lone request is a batch of one), so the path a
GPU worker runs is the path the tests run.

- Each piece is a row. It hands its stream latents (``final_norm`` of each step's last hidden
  state, which the decoding computes anyway) to an
  :class:`~honora_tts.model.vocoder.IncrementalVocoder` in the vocoder lane
  (:mod:`honora_tts.model.vocoder_lane`), which runs a piece's chunks in order and its end
  after its last chunk, beside the decoding. coqui's ``Xtts.inference`` instead runs the GPT
  once more over text and codes (``return_latent=True``), which by causality gives the same
  latents up to float rounding (checked by tests) and costs about a prefill of the whole
  utterance.
- Streaming: a chunk every ``stream_chunk_size`` codes, so the first comes after
  ``stream_chunk_size`` steps of the batch, as alone.
- Whole utterances: a chunk every :data:`WHOLE_CHUNK_LATENTS` codes (one vocoder pass for a
  piece up to that long: the audio is then exactly one HiFi-GAN pass over the piece), vocoded
  while the row and the next piece decode; the pieces are joined with short fades and a pause.
- Seeds: one CPU ``torch.Generator`` per request, seeded with the request's seed (or fresh),
  drawn from by its pieces in order: the same seed gives the same codes and audio whether the
  request ran alone or with others.
- Cancelling: the request's :class:`~honora_tts.cancellation.CancelToken` takes its row out of
  the batch between two steps (a row still waiting never starts) and raises
  :class:`~honora_tts.cancellation.SynthesisCancelled`; closing a stream early cancels its row.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from honora_tts import audio
from honora_tts.cancellation import CancelToken, SynthesisCancelled
from honora_tts.model.batch_scheduler import BatchScheduler, DecodeCancelled
from honora_tts.model.constants import SAMPLE_RATE
from honora_tts.model.gpt_decoder import (
    DecodeRequest,
    DecodeRequestError,
    DecodeResult,
    GptDecoder,
)
from honora_tts.model.vocoder import IncrementalVocoder
from honora_tts.model.vocoder_lane import VocoderLane, lane_pays
from honora_tts.protocol import ErrorCode, SamplingParams, WorkerError

if TYPE_CHECKING:
    import torch

    from honora_tts.model.latent_cache import Latents

#: Codes per vocoder pass of a whole utterance's piece: longer pieces are vocoded in parts
#: (each part re-decodes :attr:`IncrementalVocoder.context_frames` on each side, about 8 % more
#: vocoder work), so that a cancellation waits for one part at most.
WHOLE_CHUNK_LATENTS = 128
#: Silence between two pieces of one text, and the fade at each joint (milliseconds).
PIECE_PAUSE_MS = 120.0
PIECE_FADE_MS = 10.0

_DONE = object()


@dataclass(frozen=True)
class Synthesis:
    """One utterance: float32 mono samples at 24 kHz
    (:data:`~honora_tts.model.constants.SAMPLE_RATE`)."""

    samples: np.ndarray
    pieces: int
    generation_ms: float


@dataclass(frozen=True)
class Utterance:
    """A request as the model prepared it: each text piece's token ids, the speaker latents,
    the sampling, the bound on codes per piece, and the request's cancellation."""

    pieces: Sequence[Sequence[int]]
    latents: Latents
    sampling: SamplingParams
    max_new_tokens: int
    cancel: CancelToken | None = None


class _Failed:
    """A chunk whose vocoding failed: its reader raises ``error``."""

    def __init__(self, error: BaseException):
        self.error = error


class _PieceAudio:
    """One piece's audio as its row decodes: the row's latent chunks vocoded in the lane, in
    order, into :attr:`ready` (``(samples, final)`` items, a :class:`_Failed`, then
    :data:`_DONE`). Once :meth:`abandon` is called (the reader is gone, or the request was
    cancelled) the chunks still queued are skipped."""

    def __init__(self, decoding: SpeechDecoding, latents: Latents, speed: float,
                 cancel: CancelToken | None):
        self._decoding = decoding
        self._vocoder = IncrementalVocoder(decoding.xtts.hifigan_decoder,
                                           latents.speaker_embedding.to(decoding.device), speed)
        self._cancel = cancel
        self._abandoned = threading.Event()
        self.ready: queue.Queue[Any] = queue.Queue()

    def abandon(self) -> None:
        self._abandoned.set()

    def _render(self, new: torch.Tensor, final: bool) -> None:
        if self._abandoned.is_set() or (self._cancel is not None and self._cancel.cancelled):
            return
        try:
            with self._decoding.model_context():
                if new.numel():
                    self._vocoder.push(list(new))
                self.ready.put((self._vocoder.render(final=final), final))
        except BaseException as exc:  # noqa: BLE001 - raised to the piece's reader
            self.ready.put(_Failed(exc))

    def on_latents(self, new: torch.Tensor, _codes: list[int], final: bool) -> None:
        # On the scheduler thread, between steps: hand the chunk to the vocoder lane.
        self._decoding.vocoder_lane.submit(functools.partial(self._render, new, final))

    def end(self, _: Any) -> None:
        """The row's future is done: the end comes through the lane, after its chunks."""
        try:
            self._decoding.vocoder_lane.submit(lambda: self.ready.put(_DONE))
        except Exception:  # noqa: BLE001 - lane or scheduler closed: nothing is queued
            self.ready.put(_DONE)

    def chunks(self) -> Iterator[tuple[np.ndarray, bool]]:
        """The vocoded chunks as they come, until the end."""
        while True:
            item = self.ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item


class SpeechDecoding:
    """The decoder, the scheduler and the vocoder lane of one loaded XTTS (``xtts``, coqui's
    ``Xtts``); :meth:`synthesize` and :meth:`stream` take an :class:`Utterance`."""

    def __init__(self, xtts: Any, device: str, *, fp16: bool = False, max_batch: int = 1,
                 vocoder_thread: bool | None = None):
        self.xtts = xtts
        self.device = device
        self.fp16 = fp16
        self.decoder = GptDecoder(xtts.gpt, device, fp16=fp16)
        self.scheduler = BatchScheduler(self.decoder, max_batch=max_batch)
        threaded = lane_pays(device) if vocoder_thread is None else vocoder_thread
        self.vocoder_lane = VocoderLane(self.scheduler.call, threaded=threaded)

    @property
    def max_batch(self) -> int:
        return self.scheduler.max_batch

    def resize(self, max_batch: int) -> None:
        """Decode up to ``max_batch`` rows together from now on."""
        self.scheduler.resize(max_batch)

    def stats(self) -> dict[str, Any]:
        """The scheduler's counters, the voice prefix cache's, and where the vocoder runs."""
        return {**self.scheduler.stats.as_dict(), "prefix_hits": self.decoder.prefixes.hits,
                "prefix_misses": self.decoder.prefixes.misses,
                "vocoder_lane": "thread" if self.vocoder_lane.threaded else "between steps"}

    def close(self) -> None:
        self.scheduler.close()
        self.vocoder_lane.close()

    @contextlib.contextmanager
    def model_context(self) -> Iterator[None]:
        """Inference mode, and fp16 autocast where the model runs in half precision (each
        thread that runs the model enters it)."""
        import torch

        autocast = (torch.autocast("cuda", dtype=torch.float16) if self.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            yield

    # ------------------------------------------------------------------ one piece

    @staticmethod
    def _generator(seed: int | None) -> torch.Generator:
        import torch

        generator = torch.Generator(device="cpu")
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator

    def _start(self, utterance: Utterance, index: int, generator: torch.Generator,
               chunk: int, first_chunk: int = 0) -> tuple[Future[DecodeResult], _PieceAudio]:
        """Submit piece ``index``'s row, its latents vocoded every ``chunk`` codes (the first
        time after ``first_chunk``, when given)."""
        if utterance.cancel is not None:
            utterance.cancel.raise_if_cancelled()
        latents = utterance.latents
        piece = _PieceAudio(self, latents, utterance.sampling.speed, utterance.cancel)
        future = self.scheduler.submit(DecodeRequest(
            latents.gpt_cond_latent, utterance.pieces[index], utterance.max_new_tokens,
            utterance.sampling, prefix_key=latents.key, generator=generator,
            stream_chunk_size=chunk, first_chunk_size=first_chunk, on_latents=piece.on_latents,
            cancel=utterance.cancel,
            label=f"piece {index + 1}/{len(utterance.pieces)}"))
        future.add_done_callback(piece.end)
        return future, piece

    @contextlib.contextmanager
    def _linked(self, utterance: Utterance, future: Future[DecodeResult],
                piece: _PieceAudio) -> Iterator[None]:
        """While the block runs, the request's cancellation takes the row out at once; after
        it, a row still decoding (the reader gave up) is taken out, and its audio abandoned."""
        token = utterance.cancel

        def stop() -> None:
            piece.abandon()
            self.scheduler.cancel(future)

        try:
            with token.on_cancel(stop) if token is not None else contextlib.nullcontext():
                yield
        finally:
            if not future.done():
                stop()

    def _decoded(self, utterance: Utterance, future: Future[DecodeResult]) -> DecodeResult:
        if future.cancelled():
            raise DecodeCancelled("cancelled before it started decoding")
        return future.result()

    def _failure(self, exc: BaseException, utterance: Utterance, index: int) -> WorkerError:
        if isinstance(exc, (DecodeCancelled, CancelledError)) or (
                utterance.cancel is not None and utterance.cancel.cancelled):
            token = utterance.cancel
            return SynthesisCancelled(token.reason if token and token.reason
                                      else "its decoding was cancelled")
        if isinstance(exc, DecodeRequestError):
            return WorkerError(ErrorCode.INVALID_INPUT, str(exc))
        return WorkerError(
            ErrorCode.SYNTHESIS_FAILED,
            f"XTTS decoding failed on piece {index + 1}/{len(utterance.pieces)}: "
            f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ whole utterances

    def synthesize(self, utterance: Utterance) -> Synthesis:
        """The utterance as one array: each piece decoded in the shared batch and vocoded in
        the lane while it and the next piece decode, the pieces joined with fades and a
        pause."""
        started = time.perf_counter()
        generator = self._generator(utterance.sampling.seed)
        pieces: list[_PieceAudio] = []
        index = 0
        try:
            with contextlib.ExitStack() as stack:
                for index in range(len(utterance.pieces)):
                    future, piece = self._start(utterance, index, generator,
                                                WHOLE_CHUNK_LATENTS)
                    stack.enter_context(self._linked(utterance, future, piece))
                    self._decoded(utterance, future)  # the next piece's draws follow this one's
                    pieces.append(piece)
                wavs = []
                for index, piece in enumerate(pieces):
                    parts = [samples for samples, _ in piece.chunks()]
                    if utterance.cancel is not None:
                        utterance.cancel.raise_if_cancelled()
                    wavs.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        except WorkerError:
            raise
        except Exception as exc:
            raise self._failure(exc, utterance, index) from exc
        samples = audio.join(wavs, SAMPLE_RATE, pause_ms=PIECE_PAUSE_MS,
                             crossfade_ms=PIECE_FADE_MS)
        elapsed = (time.perf_counter() - started) * 1000.0
        return Synthesis(samples=samples, pieces=len(utterance.pieces), generation_ms=elapsed)

    # ------------------------------------------------------------------ streaming

    def stream(self, utterance: Utterance) -> Iterator[np.ndarray]:
        """The utterance as float32 chunks, the first after ``stream_first_chunk_size`` codes of
        its first piece (then every ``stream_chunk_size``); the pieces fade out, pause and fade in as :func:`honora_tts.audio.join`
        joins them. Closing the iterator early cancels the row."""
        sampling = utterance.sampling
        generator = self._generator(sampling.seed)
        # never more than the chunks after it: a small first chunk, then larger
        first_chunk = min(sampling.stream_first_chunk_size, sampling.stream_chunk_size)
        fade = int(SAMPLE_RATE * PIECE_FADE_MS / 1000)
        pause = np.zeros(int(SAMPLE_RATE * PIECE_PAUSE_MS / 1000), dtype=np.float32)
        count = len(utterance.pieces)
        for index in range(count):
            fade_in, fade_out = index > 0, index < count - 1
            try:
                future, piece = self._start(utterance, index, generator, sampling.stream_chunk_size,
                                            first_chunk)
                with self._linked(utterance, future, piece):
                    for chunk, final in piece.chunks():
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
                    self._decoded(utterance, future)
                    if utterance.cancel is not None:  # its last chunks skipped, not vocoded
                        utterance.cancel.raise_if_cancelled()
            except WorkerError:
                raise
            except Exception as exc:
                raise self._failure(exc, utterance, index) from exc
