"""The synthesis pipeline, once: voice -> speaker latents -> synthesis -> encoding -> timings.

:class:`SynthesisService` is built from a model, a voice cache and plain settings. The RunPod
worker (:mod:`honora_tts.worker`) and the in-process engine (``xtts-local``) both call it;
neither repeats a step of the pipeline nor merges synthesis defaults itself (the one step from
the wire to the decoder is :meth:`~honora_tts.protocol.SynthesisParams.to_sampling_params`).

- :meth:`SynthesisService.render`: one text, one voice, encoded audio plus timings and cache
  facts (what the local engine needs).
- :meth:`SynthesisService.synthesize`: a validated request, simple or batch, as the documented
  :class:`~honora_tts.protocol.SynthesisResponse` (audio delivered as base64 or URL).
- :meth:`SynthesisService.stream`: a simple request as audio chunks, then the response.
- :meth:`SynthesisService.health`: what the model and caches report.

Request-level failures raise :class:`~honora_tts.protocol.WorkerError`; a failed batch section
fails only itself.

Cancelling: every call takes a :class:`~honora_tts.cancellation.CancelToken` from its caller
(any thread: the RunPod worker's stop signal, an HTTP server's client disconnect). The work stops
at its next check (between stages, between two decoding steps) and raises
:class:`~honora_tts.cancellation.SynthesisCancelled`; a cancelled batch stops at its next
section. Concurrent calls from any threads decode together in the model's one batch.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from honora_tts import audio
from honora_tts.cancellation import CancelToken, SynthesisCancelled
from honora_tts.delivery import AudioDelivery
from honora_tts.protocol import (
    AudioPayload,
    CacheFacts,
    ErrorCode,
    ErrorInfo,
    OutputSpec,
    ParsedRequest,
    SamplingParams,
    SectionResult,
    StageTimings,
    SynthesisParams,
    SynthesisResponse,
    SynthesizeRequest,
    WorkerError,
)
from honora_tts.version import version_record

if TYPE_CHECKING:
    from honora_tts.model.latent_cache import Latents, LatentsResult
    from honora_tts.model.speech_decoding import Synthesis
    from honora_tts.voices.cache import VoiceFile

log = logging.getLogger("honora_tts.worker")


class SpeechModel(Protocol):
    """What the service needs of a model (:class:`honora_tts.model.XttsModel`)."""

    sample_rate: int
    #: How long loading took, phase by phase (milliseconds; ``total_ms`` the whole load).
    load_phases: dict[str, float]

    def default_voice(self) -> tuple[Path, str]: ...

    def latents(
        self,
        voice_path: Path,
        voice_sha256: str,
        *,
        gpt_cond_len: int | None = None,
        max_ref_length: int | None = None,
    ) -> LatentsResult: ...

    def synthesize(self, text: str, language: str, latents: Latents,
                   sampling: SamplingParams | None = None, *,
                   cancel: CancelToken | None = None) -> Synthesis: ...

    def stream(self, text: str, language: str, latents: Latents,
               sampling: SamplingParams | None = None, *,
               cancel: CancelToken | None = None) -> Iterator[np.ndarray]: ...

    def stats(self) -> dict[str, int]: ...

    def decoding_stats(self) -> dict[str, Any]: ...

    def size_batch(self, concurrency: int | None) -> int: ...


class VoiceFetcher(Protocol):
    """Turns a ``voice_url`` into a checked local file (:class:`honora_tts.voices.VoiceCache`)."""

    def fetch(self, url: str, expected_sha256: str | None = None) -> VoiceFile: ...

    def stats(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class VoiceSample:
    """A request's reference voice as a local file, and where it came from."""

    path: Path
    sha256: str
    cache: Literal["hit", "miss", "default"]
    fetch_ms: float = 0.0


@dataclass(frozen=True)
class RenderedSpeech:
    """One text spoken and encoded: ``data`` in ``format`` at ``sample_rate``."""

    data: bytes
    format: str
    sample_rate: int
    duration_s: float
    pieces: int
    timings: StageTimings
    cache: CacheFacts


@dataclass(frozen=True)
class StreamedChunk:
    """One chunk of a stream: float32 samples, its place and when it was ready."""

    seq: int
    samples: np.ndarray
    sample_rate: int
    elapsed_ms: float


class SynthesisService:
    """The pipeline around one model. ``model`` None (with ``model_error``) is a worker whose
    model failed to load: every synthesis raises ``model_not_ready`` and health says why.

    ``cold_start`` holds how long the process took to get here, phase by phase (milliseconds):
    the model's own load phases (:attr:`SpeechModel.load_phases`, timed where they happen), the
    warm-up, and what the caller adds (the worker: its imports and start to ready)."""

    def __init__(
        self,
        model: SpeechModel | None,
        voices: VoiceFetcher | None = None,
        *,
        model_error: str | None = None,
        delivery: AudioDelivery | None = None,
    ) -> None:
        if model is None and not model_error:
            raise ValueError("a service without a model needs the model_error that explains it")
        self._model = model
        self.voices = voices
        self.model_error = model_error
        self.delivery = delivery or AudioDelivery()
        self.cold_start: dict[str, float] = dict(getattr(model, "load_phases", {}) or {})

    @classmethod
    def loading(
        cls,
        loader: Callable[[], SpeechModel],
        voices: VoiceFetcher | None = None,
        *,
        delivery: AudioDelivery | None = None,
    ) -> SynthesisService:
        """Load the model now. A load failure is kept, not raised: the service then answers
        ``model_not_ready`` (a worker stays up and says why instead of crash-looping)."""
        model: SpeechModel | None = None
        error: str | None = None
        try:
            model = loader()
        except Exception as exc:  # noqa: BLE001 - reported in every answer
            error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", error)
        return cls(model, voices, model_error=error, delivery=delivery)

    @property
    def model(self) -> SpeechModel:
        """The model; raises ``model_not_ready`` when it failed to load."""
        if self._model is None:
            raise WorkerError(
                ErrorCode.MODEL_NOT_READY,
                f"the XTTS model is not loaded on this worker ({self.model_error}); check "
                "HONORA_XTTS_CHECKPOINT / HONORA_XTTS_MODEL in the image",
            )
        return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @property
    def model_load_ms(self) -> float:
        """The model's load, as timed where it happened (0 when it did not load)."""
        return float(self.cold_start.get("total_ms", 0.0))

    def warm_up(self) -> None:
        """The default voice's latents and one short generation, so the first job does not pay
        for them (timed: ``cold_start["warm_up_ms"]``). Best effort: a failure is logged and
        the first job tries again."""
        if self._model is None:
            return
        started = time.perf_counter()
        try:
            path, sha = self._model.default_voice()
            latents = self._model.latents(path, sha)
            self._model.synthesize("Ready.", "en", latents.latents,
                                   SamplingParams(max_new_tokens=4))
        except Exception:
            log.exception("default voice warm-up failed")
        self.cold_start["warm_up_ms"] = round((time.perf_counter() - started) * 1000, 1)

    # ------------------------------------------------------------------ the pipeline

    def voice(self, voice_url: str | None, voice_sha256: str | None = None) -> VoiceSample:
        """The reference voice: the model's default without a URL, else fetched (cached)."""
        if not voice_url:
            path, sha = self.model.default_voice()
            return VoiceSample(path=Path(path), sha256=sha, cache="default")
        if self.voices is None:
            raise WorkerError(
                ErrorCode.VOICE_FETCH_FAILED,
                "this synthesis service has no voice cache: it takes local voices only",
                field="voice_url",
            )
        fetched = self.voices.fetch(voice_url, expected_sha256=voice_sha256)
        return VoiceSample(fetched.path, fetched.sha256, fetched.cache, fetched.fetch_ms)

    def render(
        self,
        text: str,
        language: str,
        voice: VoiceSample,
        params: SynthesisParams,
        output: OutputSpec,
        *,
        cancel: CancelToken | None = None,
    ) -> RenderedSpeech:
        """Speak ``text`` in ``voice`` and encode it as ``output`` asks."""
        model = self.model
        cancel = cancel or CancelToken()
        sampling = params.to_sampling_params()
        cancel.raise_if_cancelled()
        latents = model.latents(voice.path, voice.sha256, **_latent_args(params))
        cancel.raise_if_cancelled()
        try:
            synthesis = model.synthesize(text, language, latents.latents, sampling, cancel=cancel)
        except WorkerError:
            raise
        except Exception as exc:
            raise WorkerError(ErrorCode.SYNTHESIS_FAILED, f"{type(exc).__name__}: {exc}") from exc
        cancel.raise_if_cancelled()
        encode_started = time.perf_counter()
        data = audio.encode(
            synthesis.samples, model.sample_rate, output.format, target_rate=output.sample_rate
        )
        timings = StageTimings(
            voice_fetch_ms=round(voice.fetch_ms, 2),
            latents_ms=round(latents.elapsed_ms, 2),
            generation_ms=round(synthesis.generation_ms, 2),
            encode_ms=round((time.perf_counter() - encode_started) * 1000, 2),
        )
        return RenderedSpeech(
            data=data, format=output.format, sample_rate=output.sample_rate,
            duration_s=audio.duration_s(synthesis.samples, model.sample_rate),
            pieces=synthesis.pieces, timings=timings,
            cache=CacheFacts(voice=voice.cache, latents=latents.cache),
        )

    def synthesize(
        self, parsed: ParsedRequest, *, request_id: str, job_id: str | None = None,
        cancel: CancelToken | None = None,
    ) -> SynthesisResponse:
        """The whole response to a simple or batch request. Raises :class:`WorkerError` when
        the request as a whole fails (:class:`~honora_tts.cancellation.SynthesisCancelled` when
        ``cancel`` stopped it); a batch whose every section failed is answered with the
        sections and an ``error``."""
        started = time.perf_counter()
        cancel = cancel or CancelToken()
        request = parsed.request
        if request.is_batch:
            return self._batch(parsed, request_id, job_id, started, cancel)
        assert request.text is not None
        rendered, payload = self._deliver_one(
            request.text, request.language, request.voice_url, request.voice_sha256, request,
            cancel,
        )
        timings = rendered.timings.model_copy(
            update={"total_ms": round((time.perf_counter() - started) * 1000, 2)}
        )
        return SynthesisResponse(
            request_id=request_id, job_id=job_id, status="ok", version=version_record(),
            audio=payload, timings=timings, cache=rendered.cache, language=request.language,
            text_chars=len(request.text), pieces=rendered.pieces,
        )

    def stream(
        self, request: SynthesizeRequest, *, request_id: str, job_id: str | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamedChunk | SynthesisResponse]:
        """A simple request as :class:`StreamedChunk` items, then the response (timings,
        cache facts, ``streamed_duration_s``; no audio). Raises :class:`WorkerError` (or what
        the model raised) from the iteration; closing it early, or ``cancel``, stops the
        decoding."""
        assert request.text is not None
        started = time.perf_counter()
        cancel = cancel or CancelToken()
        model = self.model
        voice = self.voice(request.voice_url, request.voice_sha256)
        cancel.raise_if_cancelled()
        latents = model.latents(voice.path, voice.sha256, **_latent_args(request.params))
        generation_started = time.perf_counter()
        total_samples = 0
        first_chunk_ms: float | None = None
        seq = 0
        chunks = model.stream(request.text, request.language, latents.latents,
                              request.params.to_sampling_params(), cancel=cancel)
        try:
            for samples in chunks:
                elapsed = (time.perf_counter() - started) * 1000
                first_chunk_ms = elapsed if first_chunk_ms is None else first_chunk_ms
                total_samples += len(samples)
                yield StreamedChunk(seq=seq, samples=samples, sample_rate=model.sample_rate,
                                    elapsed_ms=round(elapsed, 2))
                seq += 1
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        timings = StageTimings(
            voice_fetch_ms=round(voice.fetch_ms, 2),
            latents_ms=round(latents.elapsed_ms, 2),
            generation_ms=round((time.perf_counter() - generation_started) * 1000, 2),
            total_ms=round((time.perf_counter() - started) * 1000, 2),
            first_chunk_ms=round(first_chunk_ms or 0.0, 2),
            chunks=seq,
        )
        yield SynthesisResponse(
            request_id=request_id, job_id=job_id, status="ok", version=version_record(),
            timings=timings, cache=CacheFacts(voice=voice.cache, latents=latents.cache),
            language=request.language, text_chars=len(request.text),
            streamed_duration_s=round(total_samples / model.sample_rate, 4),
        )

    def health(self) -> dict[str, Any]:
        """``model_loaded``, ``model_error``, ``model_load_ms`` (the load, timed where it
        happened), ``cold_start`` (its phases and the warm-up, milliseconds), the
        ``voice_cache`` and ``latent_cache`` counters, and the decoding batch's (``batching``;
        None without a model)."""
        model = self._model
        return {
            "model_loaded": model is not None,
            "model_error": self.model_error,
            "model_load_ms": round(self.model_load_ms, 1),
            "cold_start": dict(self.cold_start),
            "voice_cache": self.voices.stats() if self.voices is not None else {},
            "latent_cache": model.stats() if model is not None else {},
            "batching": model.decoding_stats() if model is not None else None,
        }

    # ------------------------------------------------------------------ internals

    def _deliver_one(
        self,
        text: str,
        language: str,
        voice_url: str | None,
        voice_sha256: str | None,
        request: SynthesizeRequest,
        cancel: CancelToken,
    ) -> tuple[RenderedSpeech, AudioPayload]:
        voice = self.voice(voice_url, voice_sha256)
        rendered = self.render(text, language, voice, request.params, request.output,
                               cancel=cancel)
        delivered = time.perf_counter()
        payload = self.delivery.payload(rendered.data, rendered.duration_s, request.output)
        # Uploading to the output bucket is part of encoding, as the response documents it.
        encode_ms = rendered.timings.encode_ms + (time.perf_counter() - delivered) * 1000
        timings = rendered.timings.model_copy(update={"encode_ms": round(encode_ms, 2)})
        return RenderedSpeech(
            data=rendered.data, format=rendered.format, sample_rate=rendered.sample_rate,
            duration_s=rendered.duration_s, pieces=rendered.pieces, timings=timings,
            cache=rendered.cache,
        ), payload

    def _batch(
        self, parsed: ParsedRequest, request_id: str, job_id: str | None, started: float,
        cancel: CancelToken,
    ) -> SynthesisResponse:
        request = parsed.request
        assert request.sections is not None
        results: list[SectionResult] = [
            SectionResult(id=bad.id, index=bad.index, status="error", error=bad.error)
            for bad in parsed.invalid_sections
        ]
        taken = {bad.index for bad in parsed.invalid_sections}
        indexes = (i for i in range(len(request.sections) + len(taken)) if i not in taken)
        totals = StageTimings()
        for index, section in zip(indexes, request.sections, strict=True):
            cancel.raise_if_cancelled()  # the request as a whole stops
            try:
                rendered, payload = self._deliver_one(
                    section.text,
                    section.language or request.language,
                    section.voice_url or request.voice_url,
                    section.voice_sha256 or (None if section.voice_url else request.voice_sha256),
                    request,
                    cancel,
                )
            except SynthesisCancelled:
                raise
            except WorkerError as exc:
                results.append(SectionResult(
                    id=section.id, index=index, status="error", error=exc.to_info(),
                    text_chars=len(section.text),
                ))
                continue
            except Exception as exc:  # noqa: BLE001 - one section must not sink the batch
                log.error("section %s failed: %s\n%s", section.id, exc, traceback.format_exc())
                results.append(SectionResult(
                    id=section.id, index=index, status="error", text_chars=len(section.text),
                    error=ErrorInfo(code=ErrorCode.SYNTHESIS_FAILED, message=f"{exc}"),
                ))
                continue
            for stage in ("voice_fetch_ms", "latents_ms", "generation_ms", "encode_ms"):
                value = getattr(totals, stage) + getattr(rendered.timings, stage)
                setattr(totals, stage, round(value, 2))
            results.append(SectionResult(
                id=section.id, index=index, status="ok", audio=payload, timings=rendered.timings,
                cache=rendered.cache, text_chars=len(section.text), pieces=rendered.pieces,
            ))
        results.sort(key=lambda r: r.index)
        failed = [r for r in results if r.status == "error"]
        totals.total_ms = round((time.perf_counter() - started) * 1000, 2)
        response = SynthesisResponse(
            request_id=request_id, job_id=job_id,
            status="ok" if not failed else "partial", version=version_record(),
            sections=results, timings=totals, language=request.language,
            text_chars=sum(r.text_chars for r in results),
            pieces=sum(r.pieces for r in results),
        )
        if failed and len(failed) == len(results):
            first = failed[0].error
            assert first is not None
            response.status = "error"
            response.error = ErrorInfo(
                code=first.code,
                message=f"all {len(results)} sections failed; first: {first.message}",
                field=first.field,
            )
        return response


def _latent_args(params: SynthesisParams) -> dict[str, Any]:
    return params.to_sampling_params().latent_args()
