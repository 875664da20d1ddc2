"""Synthesis and streaming of an :class:`~honora_tts.model.xtts_model.XttsModel` through the batch scheduler.

Same inputs, validation, text pieces, fades and pauses as ``XttsModel.synthesize`` / ``stream``
(this class calls the model's own helpers for them); only the GPT decoding differs: each piece
is a row of the shared batch (:mod:`honora_tts.model.batch_scheduler`), so requests that arrive
together decode together.

- Whole utterances: when a piece's row finishes, the HiFi-GAN decoder turns its latents into
  audio in the vocoder lane (:mod:`honora_tts.model.vocoder_lane`: a thread of its own beside
  the decoding where that pays, else the scheduler thread between steps).
  ``latents_from="decode"`` (default) uses the latents the decoding steps computed anyway
  (``final_norm`` of each step's last hidden state); coqui's ``Xtts.inference`` instead runs
  the GPT once more over text and codes (``return_latent=True``), which by causality gives the
  same latents up to float rounding and costs about a prefill of the whole utterance (2.5 s of 10 s per request for the full-size
  model on this CPU). ``latents_from="forward"`` does what coqui does: given the same codes
  the audio is then bit for bit coqui's.
- Streaming: the row hands its stream latents every ``stream_chunk_size`` codes to an
  :class:`~honora_tts.model.vocoder.IncrementalVocoder` in the vocoder lane, so the first
  chunk comes after ``stream_chunk_size`` steps of the batch, as alone; the lane runs a
  stream's chunks in order, and its end after its last chunk.
- Seeds: one CPU ``torch.Generator`` per request, seeded with ``params.seed`` (or fresh), used
  by its pieces in order: the same seed gives the same codes and audio whether the request ran
  alone or with others.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from honora_tts import audio
from honora_tts.model.batch_scheduler import BatchScheduler
from honora_tts.model.batched_decoding import (
    BatchedGptDecoder,
    DecodeRequest,
    DecodeRequestError,
    DecodeResult,
    SamplingParams,
)
from honora_tts.model.vocoder_lane import VocoderLane, lane_pays
from honora_tts.protocol import ErrorCode, WorkerError

if TYPE_CHECKING:
    import torch

    from honora_tts.model.latent_cache import Latents
    from honora_tts.model.utterance import Synthesis
    from honora_tts.model.xtts_model import XttsModel

_DONE = object()


class _Failed:
    """A streamed chunk whose vocoding failed: its reader raises ``error``."""

    def __init__(self, error: BaseException):
        self.error = error


class BatchedSynthesis:
    """Batched ``synthesize`` and ``stream`` for one loaded model (see the module docstring)."""

    def __init__(self, model: XttsModel, *, max_batch: int,
                 latents_from: Literal["decode", "forward"] = "decode",
                 vocoder_thread: bool | None = None):
        if latents_from not in ("decode", "forward"):
            raise ValueError(f"latents_from must be 'decode' or 'forward', got {latents_from!r}")
        self.latents_from = latents_from
        self.model = model
        self.xtts = model.coqui_model
        self.device = model.device
        self.decoder = BatchedGptDecoder(self.xtts.gpt, model.device, fp16=model.fp16)
        self.scheduler = BatchScheduler(self.decoder, max_batch=max_batch)
        self.max_batch = max_batch
        threaded = lane_pays(model.device) if vocoder_thread is None else vocoder_thread
        self.vocoder_lane = VocoderLane(self.scheduler.call, threaded=threaded)

    def close(self) -> None:
        self.scheduler.close()
        self.vocoder_lane.close()

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _model_context(self) -> Iterator[None]:
        import torch

        autocast = (torch.autocast("cuda", dtype=torch.float16) if self.model.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            yield

    @staticmethod
    def _generator(seed: int | None) -> torch.Generator:
        import torch

        generator = torch.Generator(device="cpu")
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator

    @staticmethod
    def _sampling(generation: Any) -> SamplingParams:
        kwargs = generation.kwargs
        return SamplingParams(
            temperature=kwargs["temperature"], top_p=kwargs["top_p"], top_k=kwargs["top_k"],
            repetition_penalty=kwargs["repetition_penalty"],
            length_penalty=kwargs["length_penalty"], do_sample=kwargs["do_sample"],
        )

    def _decode(self, request: DecodeRequest) -> DecodeResult:
        future = self.scheduler.submit(request)
        try:
            return future.result()
        except DecodeRequestError as exc:
            raise WorkerError(ErrorCode.INVALID_INPUT, str(exc)) from exc
        finally:
            if not future.done():  # the caller gave up (interrupt): free the row
                self.scheduler.cancel(future)

    def vocode(self, tokens: list[int], result: DecodeResult, latents: Latents,
               speed: float) -> np.ndarray:
        """Audio of one decoded piece (see ``latents_from`` in the module docstring)."""
        if self.latents_from == "forward":
            return self.vocode_codes(tokens, result.codes, latents, speed)
        with self._model_context():
            return self._hifigan(result.latents[None].to(self.device), latents, speed)

    def vocode_codes(self, tokens: list[int], codes: list[int], latents: Latents,
                     speed: float) -> np.ndarray:
        """Audio of one piece from its codes: the second half of coqui's ``Xtts.inference``."""
        import torch

        xtts, device = self.xtts, self.device
        with self._model_context():
            text_tokens = torch.IntTensor(tokens).unsqueeze(0).to(device)
            gpt_codes = torch.tensor([codes], dtype=torch.long, device=device)
            expected = torch.tensor([gpt_codes.shape[-1] * xtts.gpt.code_stride_len],
                                    device=device)
            text_len = torch.tensor([text_tokens.shape[-1]], device=device)
            cond = latents.gpt_cond_latent.to(device)
            gpt_latents = xtts.gpt(text_tokens, text_len, gpt_codes, expected, cond_latents=cond,
                                   return_attentions=False, return_latent=True)
            return self._hifigan(gpt_latents, latents, speed)

    def _hifigan(self, gpt_latents: torch.Tensor, latents: Latents, speed: float) -> np.ndarray:
        import torch.nn.functional as F

        length_scale = 1.0 / max(speed, 0.05)
        if length_scale != 1.0:
            gpt_latents = F.interpolate(gpt_latents.transpose(1, 2), scale_factor=length_scale,
                                        mode="linear").transpose(1, 2)
        wav = self.xtts.hifigan_decoder(gpt_latents,
                                        g=latents.speaker_embedding.to(self.device))
        return np.asarray(wav.float().cpu().squeeze().numpy(), dtype=np.float32).reshape(-1)

    # ------------------------------------------------------------------ synthesis

    def synthesize(self, text: str, language: str, latents: Latents,
                   params: dict[str, Any] | None = None) -> Synthesis:
        """Like ``XttsModel.synthesize``, each piece decoded in the shared batch."""
        from honora_tts.model.constants import SAMPLE_RATE
        from honora_tts.model.utterance import PIECE_FADE_MS, PIECE_PAUSE_MS, Synthesis

        model = self.model
        lang = model._language(language)
        generation = model._generation(params)
        pieces = model._pieces(text, lang)
        generator = self._generator(generation.seed)
        sampling = self._sampling(generation)
        started = time.perf_counter()
        wavs: list[np.ndarray] = []
        for index, piece in enumerate(pieces):
            tokens = model._text_tokens(piece, lang)
            try:
                result = self._decode(DecodeRequest(
                    latents.gpt_cond_latent, tokens, generation.max_new_tokens, sampling,
                    generator=generator, label=f"piece {index + 1}/{len(pieces)}"))
                vocoded = self.vocoder_lane.submit(functools.partial(
                    self.vocode, tokens, result, latents, generation.speed))
                wavs.append(vocoded.result())
            except WorkerError:
                raise
            except Exception as exc:
                raise WorkerError(
                    ErrorCode.SYNTHESIS_FAILED,
                    f"XTTS batched inference failed on piece {index + 1}/{len(pieces)} "
                    f"({len(piece)} characters): {type(exc).__name__}: {exc}",
                ) from exc
        samples = audio.join(wavs, SAMPLE_RATE, pause_ms=PIECE_PAUSE_MS,
                             crossfade_ms=PIECE_FADE_MS)
        elapsed = (time.perf_counter() - started) * 1000.0
        return Synthesis(samples=samples, pieces=len(pieces), generation_ms=elapsed)

    # ------------------------------------------------------------------ streaming

    def stream(self, text: str, language: str, latents: Latents,
               params: dict[str, Any] | None = None) -> Iterator[np.ndarray]:
        """Like ``XttsModel.stream`` (incremental vocoder), each piece decoded in the shared
        batch. Invalid input raises here, before the first chunk is asked for; closing the
        iterator early cancels the row."""
        model = self.model
        lang = model._language(language)
        generation = model._generation(params)
        pieces = model._pieces(text, lang)
        generator = self._generator(generation.seed)
        chunks_of = functools.partial(self._chunks, generator=generator)
        unused_rng = model._rng(None)  # the pieces share ``generator`` instead
        return model._stream_pieces(pieces, lang, latents, generation, unused_rng, chunks_of)

    def _chunks(self, piece: str, lang: str, latents: Latents, generation: Any, _rng: Any, *,
                generator: torch.Generator) -> Iterator[tuple[np.ndarray, bool]]:
        from honora_tts.model.vocoder import IncrementalVocoder

        vocoder = IncrementalVocoder(self.xtts.hifigan_decoder,
                                     latents.speaker_embedding.to(self.device), generation.speed)
        ready: queue.Queue[Any] = queue.Queue()

        def render(new: torch.Tensor, final: bool) -> None:
            try:
                with self._model_context():
                    if new.numel():
                        vocoder.push(list(new))
                    ready.put((vocoder.render(final=final), final))
            except BaseException as exc:  # noqa: BLE001 - raised to the stream's reader
                ready.put(_Failed(exc))

        def on_latents(new: torch.Tensor, _codes: list[int], final: bool) -> None:
            # On the scheduler thread, between steps: hand the chunk to the vocoder lane.
            self.vocoder_lane.submit(functools.partial(render, new, final))

        request = DecodeRequest(
            latents.gpt_cond_latent, self.model._text_tokens(piece, lang),
            generation.max_new_tokens, self._sampling(generation), generator=generator,
            stream_chunk_size=generation.stream_chunk_size, on_latents=on_latents,
            first_chunk_size=generation.first_chunk_size,
        )
        future = self.scheduler.submit(request)
        # Through the lane, so that the end comes after the chunks queued before it.
        def end(_: Any) -> None:
            try:
                self.vocoder_lane.submit(lambda: ready.put(_DONE))
            except Exception:  # noqa: BLE001 - lane or scheduler closed: nothing is queued
                ready.put(_DONE)

        future.add_done_callback(end)
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failed):
                    raise item.error
                yield item
            try:
                future.result()
            except DecodeRequestError as exc:
                raise WorkerError(ErrorCode.INVALID_INPUT, str(exc)) from exc
        finally:
            if not future.done():
                self.scheduler.cancel(future)

