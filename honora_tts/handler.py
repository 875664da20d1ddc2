"""The worker's job handler: validate, fetch the voice, get speaker latents, synthesize, encode,
answer. ``worker/handler.py`` hands one of two functions to ``runpod.serverless.start``:

- :func:`handle` (default): a plain function. Its answer is the documented response object; on
  failure the object carries ``error`` (RunPod then marks the job FAILED and keeps the rest of the
  object, version included, as ``output``). RunPod types a job's ``error`` as a string (its own
  local API rejects anything else), so ``error`` is the JSON text of the structured error:
  ``json.loads(error)`` gives ``{"code", "message", "field"}``. Errors of single batch sections
  sit inside ``output`` and stay objects.
- :func:`handle_stream` (``HONORA_STREAMING=1``): a generator, which RunPod needs in order to
  stream. RunPod then turns every job's output into the list of yielded items and flattens a
  yielded ``error`` into a string, so a streaming worker is a separate deployment of the same
  image: its items are :class:`~honora_tts.protocol.StreamChunk` objects (``chunk`` items, then
  one ``final`` item holding the documented response), and a failure ends the job FAILED with
  ``error`` = the JSON text of the structured error (with ``request_id`` and ``version``).

- :func:`handle_async` (``HONORA_PREFETCH=1``): :func:`handle` in a thread, one job at a time,
  for a worker that takes its next job while one runs (``concurrency_modifier`` ->
  :data:`ASYNC_CONCURRENCY`); saves the SDK worker loop's idle second between jobs.

None of them raises: every failure becomes a structured error, and the worker goes on to the
next job.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from honora_tts import audio
from honora_tts.protocol import (
    AudioPayload,
    CacheFacts,
    ErrorCode,
    ErrorInfo,
    OutputSpec,
    ParsedRequest,
    SectionResult,
    StageTimings,
    StreamChunk,
    SynthesisResponse,
    SynthesizeRequest,
    WorkerError,
    parse_request,
)
from honora_tts.version import streaming_enabled, version_record

log = logging.getLogger("honora_tts.worker")

#: Encoded audio above this size goes out as a URL when ``delivery`` is ``auto`` and an output
#: bucket is configured (RunPod keeps results in its own store; big base64 bodies slow every poll).
URL_DELIVERY_BYTES = int(os.environ.get("HONORA_URL_DELIVERY_BYTES", str(5 * 2**20)))

_CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}
_LATENT_ARGS = ("gpt_cond_len", "max_ref_length")


@dataclass
class _WorkerState:
    started_at: float
    model: Any = None
    model_error: str | None = None
    load_ms: float = 0.0
    jobs_served: int = 0
    jobs_failed: int = 0


_state = _WorkerState(started_at=time.time())
_state_lock = threading.Lock()


# ------------------------------------------------------------------------------- model


def warm_up() -> None:
    """Load the model (and the default voice's latents) before taking jobs. A load failure is
    kept, not raised: the worker then answers every job with ``model_not_ready`` and its
    version, so a broken image is visible instead of crash-looping."""
    try:
        model = _model()
    except WorkerError:
        return  # already logged; every answer will carry model_not_ready
    try:
        from honora_tts.xtts import DEFAULT_PARAMS

        path, sha = model.default_voice()
        latents = model.latents(path, sha)
        # One short generation pays the first-call costs (allocator, kernels) before any job.
        model.synthesize("Ready.", "en", latents.latents, {**DEFAULT_PARAMS, "max_new_tokens": 4})
    except Exception:  # warm-up is best effort: the first job tries again
        log.exception("default voice warm-up failed")


def _model() -> Any:
    with _state_lock:
        if _state.model is None and _state.model_error is None:
            from honora_tts import xtts

            started = time.perf_counter()
            try:
                _state.model = xtts.load_model()
            except Exception as exc:  # noqa: BLE001 - reported in every answer
                _state.model_error = f"{type(exc).__name__}: {exc}"
                log.error("model failed to load: %s", _state.model_error)
            _state.load_ms = (time.perf_counter() - started) * 1000
    if _state.model is None:
        raise WorkerError(
            ErrorCode.MODEL_NOT_READY,
            f"the XTTS model is not loaded on this worker ({_state.model_error}); check "
            "HONORA_XTTS_CHECKPOINT / HONORA_XTTS_MODEL in the image",
        )
    return _state.model


# ---------------------------------------------------------------------------- handlers


def handle(job: dict[str, Any]) -> dict[str, Any]:
    """RunPod handler (plain). Returns the response as a JSON-ready dict; never raises."""
    job_id, raw = _job_parts(job)
    request_id = _request_id(raw, job_id)
    with _logged(job_id, request_id):
        response = _respond(job_id, request_id, raw, streaming=False)
        return _dump(response)


#: The ``concurrency_modifier`` answer that goes with :func:`handle_async`.
ASYNC_CONCURRENCY = 2
_one_at_a_time: asyncio.Semaphore | None = None


async def handle_async(job: dict[str, Any]) -> dict[str, Any]:
    """RunPod handler (async) for a worker that takes its next job while one runs
    (``concurrency_modifier`` returning :data:`ASYNC_CONCURRENCY`). Jobs still run one at a
    time, in a thread, so the SDK's worker loop keeps running and the waiting job starts the
    moment the previous one ends. With :func:`handle` the loop is blocked during a job and then
    sleeps in 1 s steps before taking the next (``rp_scale.get_jobs``): up to 1 s idle per job
    (``honora-tts bench p3``). Same answers as :func:`handle`; never raises."""
    global _one_at_a_time
    if _one_at_a_time is None:
        _one_at_a_time = asyncio.Semaphore(1)
    async with _one_at_a_time:
        return await asyncio.to_thread(handle, job)


def handle_stream(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """RunPod handler (generator) for streaming workers; never raises."""
    job_id, raw = _job_parts(job)
    request_id = _request_id(raw, job_id)
    with _logged(job_id, request_id):
        parsed = parse_request(raw)
        if isinstance(parsed, ParsedRequest) and parsed.request.stream and parsed.request.text:
            yield from _stream_simple(job_id, request_id, parsed.request)
            return
        response = _respond(job_id, request_id, raw, streaming=True, parsed=parsed)
        _count(failed=response.error is not None)
        yield _final_item(response)
        if response.error is not None:
            yield {"error": _stream_error_text(response)}


def _respond(
    job_id: str | None,
    request_id: str,
    raw: Any,
    *,
    streaming: bool,
    parsed: ParsedRequest | ErrorInfo | None = None,
) -> SynthesisResponse:
    started = time.perf_counter()
    try:
        parsed = parse_request(raw) if parsed is None else parsed
        if isinstance(parsed, ErrorInfo):
            return _error_response(job_id, request_id, parsed)
        request = parsed.request
        if request.action == "health":
            return _health_response(job_id, request_id)
        if request.stream and not streaming:
            raise WorkerError(
                ErrorCode.STREAMING_UNAVAILABLE,
                "this worker is not a streaming deployment (HONORA_STREAMING=1); send "
                "stream=false or use the streaming endpoint",
                field="stream",
            )
        if request.is_batch:
            return _batch_response(job_id, request_id, parsed, started)
        return _simple_response(job_id, request_id, request, started)
    except WorkerError as exc:
        return _error_response(job_id, request_id, exc.to_info())
    except Exception as exc:  # noqa: BLE001 - the worker must answer, not crash
        log.error("unexpected failure: %s\n%s", exc, traceback.format_exc())
        return _error_response(
            job_id,
            request_id,
            ErrorInfo(code=ErrorCode.INTERNAL_ERROR, message=f"{type(exc).__name__}: {exc}"),
        )


# ---------------------------------------------------------------------------- synthesis


@dataclass
class _Voice:
    path: Path
    sha256: str
    cache: str
    fetch_ms: float


def _voice(voice_url: str | None, voice_sha256: str | None, model: Any) -> _Voice:
    if not voice_url:
        path, sha = model.default_voice()
        return _Voice(path=Path(path), sha256=sha, cache="default", fetch_ms=0.0)
    from honora_tts.voices import default_voice_cache

    fetched = default_voice_cache().fetch(voice_url, expected_sha256=voice_sha256)
    return _Voice(fetched.path, fetched.sha256, fetched.cache, fetched.fetch_ms)


def _synthesize_text(
    text: str,
    language: str,
    voice_url: str | None,
    voice_sha256: str | None,
    request: SynthesizeRequest,
    request_id: str,
    audio_key: str,
) -> tuple[AudioPayload, StageTimings, CacheFacts, int]:
    model = _model()
    voice = _voice(voice_url, voice_sha256, model)
    overrides = request.params.overrides()
    latent_args = {k: overrides.pop(k) for k in _LATENT_ARGS if k in overrides}
    latents = model.latents(voice.path, voice.sha256, **latent_args)
    from honora_tts.xtts import DEFAULT_PARAMS

    try:
        synthesis = model.synthesize(text, language, latents.latents, {**DEFAULT_PARAMS, **overrides})
    except WorkerError:
        raise
    except Exception as exc:
        raise WorkerError(ErrorCode.SYNTHESIS_FAILED, f"{type(exc).__name__}: {exc}") from exc
    encode_started = time.perf_counter()
    payload = _deliver(synthesis.samples, model.sample_rate, request.output, request_id, audio_key)
    timings = StageTimings(
        voice_fetch_ms=round(voice.fetch_ms, 2),
        latents_ms=round(latents.elapsed_ms, 2),
        generation_ms=round(synthesis.generation_ms, 2),
        encode_ms=round((time.perf_counter() - encode_started) * 1000, 2),
    )
    return payload, timings, CacheFacts(voice=voice.cache, latents=latents.cache), synthesis.pieces


def _deliver(
    samples: np.ndarray, sample_rate: int, output: OutputSpec, request_id: str, audio_key: str
) -> AudioPayload:
    data = audio.encode(samples, sample_rate, output.format, target_rate=output.sample_rate)
    sha = hashlib.sha256(data).hexdigest()
    common = {
        "format": output.format,
        "sample_rate": output.sample_rate,
        "duration_s": round(audio.duration_s(samples, sample_rate), 4),
        "bytes": len(data),
        "sha256": sha,
    }
    bucket = None
    if output.delivery == "url" or (output.delivery == "auto" and len(data) > URL_DELIVERY_BYTES):
        bucket = _output_bucket(*(os.environ.get(name, "") for name in _BUCKET_ENV))
        if bucket is None and output.delivery == "url":
            raise WorkerError(
                ErrorCode.OUTPUT_UPLOAD_FAILED,
                "delivery=url needs an output bucket: set BUCKET_ENDPOINT_URL, "
                "BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint",
                field="output.delivery",
            )
    if bucket is None:
        return AudioPayload(
            **common, delivery="base64", base64=base64.b64encode(data).decode("ascii")
        )
    key = f"outputs/{request_id}/{audio_key}.{output.format}"
    try:
        url = bucket.put_bytes(key, data, _CONTENT_TYPES[output.format])
    except Exception as exc:
        raise WorkerError(
            ErrorCode.OUTPUT_UPLOAD_FAILED, f"could not upload the audio: {type(exc).__name__}"
        ) from exc
    return AudioPayload(**common, delivery="url", url=url)


_BUCKET_ENV = ("BUCKET_ENDPOINT_URL", "BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY", "BUCKET_NAME")


@functools.lru_cache(maxsize=4)
def _output_bucket(*values: str) -> Any:
    """The output bucket RunPod's upload helper would use (one boto3 client per setting)."""
    from honora_tts.voices import S3VoiceStore

    return S3VoiceStore.from_runpod_bucket_env(dict(zip(_BUCKET_ENV, values, strict=True)))


def _simple_response(
    job_id: str | None, request_id: str, request: SynthesizeRequest, started: float
) -> SynthesisResponse:
    assert request.text is not None
    payload, timings, cache, pieces = _synthesize_text(
        request.text, request.language, request.voice_url, request.voice_sha256, request,
        request_id, "audio",
    )
    timings.total_ms = round((time.perf_counter() - started) * 1000, 2)
    return SynthesisResponse(
        request_id=request_id, job_id=job_id, status="ok", version=version_record(),
        audio=payload, timings=timings, cache=cache, language=request.language,
        text_chars=len(request.text), pieces=pieces,
    )


def _batch_response(
    job_id: str | None, request_id: str, parsed: ParsedRequest, started: float
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
    hits = {"voice": [], "latents": []}
    for index, section in zip(indexes, request.sections, strict=True):
        try:
            payload, timings, cache, pieces = _synthesize_text(
                section.text,
                section.language or request.language,
                section.voice_url or request.voice_url,
                section.voice_sha256 or (None if section.voice_url else request.voice_sha256),
                request, request_id, f"section-{index}",
            )
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
            setattr(totals, stage, round(getattr(totals, stage) + getattr(timings, stage), 2))
        hits["voice"].append(cache.voice)
        hits["latents"].append(cache.latents)
        results.append(SectionResult(
            id=section.id, index=index, status="ok", audio=payload, timings=timings,
            cache=cache, text_chars=len(section.text), pieces=pieces,
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


def _stream_simple(
    job_id: str | None, request_id: str, request: SynthesizeRequest
) -> Iterator[dict[str, Any]]:
    started = time.perf_counter()
    try:
        model = _model()
        voice = _voice(request.voice_url, request.voice_sha256, model)
        overrides = request.params.overrides()
        latent_args = {k: overrides.pop(k) for k in _LATENT_ARGS if k in overrides}
        latents = model.latents(voice.path, voice.sha256, **latent_args)
        from honora_tts.xtts import DEFAULT_PARAMS

        generation_started = time.perf_counter()
        total_samples = 0
        first_chunk_ms = None
        seq = 0
        assert request.text is not None
        for chunk in model.stream(
            request.text, request.language, latents.latents, {**DEFAULT_PARAMS, **overrides}
        ):
            elapsed = (time.perf_counter() - started) * 1000
            first_chunk_ms = elapsed if first_chunk_ms is None else first_chunk_ms
            total_samples += len(chunk)
            yield StreamChunk(
                type="chunk", request_id=request_id, seq=seq, sample_rate=model.sample_rate,
                pcm16_base64=base64.b64encode(audio.to_pcm16(chunk)).decode("ascii"),
                duration_s=round(len(chunk) / model.sample_rate, 4), elapsed_ms=round(elapsed, 2),
            ).model_dump(mode="json", exclude_none=True)
            seq += 1
        timings = StageTimings(
            voice_fetch_ms=round(voice.fetch_ms, 2),
            latents_ms=round(latents.elapsed_ms, 2),
            generation_ms=round((time.perf_counter() - generation_started) * 1000, 2),
            total_ms=round((time.perf_counter() - started) * 1000, 2),
            first_chunk_ms=round(first_chunk_ms or 0.0, 2),
            chunks=seq,
        )
        response = SynthesisResponse(
            request_id=request_id, job_id=job_id, status="ok", version=version_record(),
            timings=timings, cache=CacheFacts(voice=voice.cache, latents=latents.cache),
            language=request.language, text_chars=len(request.text),
            streamed_duration_s=round(total_samples / model.sample_rate, 4),
        )
        _count(failed=False)
        yield _final_item(response)
    except Exception as exc:  # noqa: BLE001 - the worker must answer, not crash
        info = exc.to_info() if isinstance(exc, WorkerError) else ErrorInfo(
            code=ErrorCode.SYNTHESIS_FAILED, message=f"{type(exc).__name__}: {exc}"
        )
        if not isinstance(exc, WorkerError):
            log.error("stream failed: %s\n%s", exc, traceback.format_exc())
        response = _error_response(job_id, request_id, info)
        yield _final_item(response)
        yield {"error": _stream_error_text(response)}


# ----------------------------------------------------------------------------- answers


def _health_response(job_id: str | None, request_id: str) -> SynthesisResponse:
    from honora_tts.voices import default_voice_cache

    model = _state.model
    try:
        if model is None:
            _model()
            model = _state.model
    except WorkerError:
        model = None
    health = {
        "model_loaded": model is not None,
        "model_error": _state.model_error,
        "model_load_ms": round(_state.load_ms, 1),
        "uptime_s": round(time.time() - _state.started_at, 1),
        "jobs_served": _state.jobs_served,
        "jobs_failed": _state.jobs_failed,
        "streaming": streaming_enabled(),
        "voice_cache": default_voice_cache().stats(),
        "latent_cache": model.stats() if model is not None else {},
        "batching": (model.batching.scheduler.stats.as_dict()
                     if getattr(model, "batching", None) is not None else None),
    }
    return SynthesisResponse(
        request_id=request_id, job_id=job_id,
        status="healthy" if model is not None else "error",
        version=version_record(), health=health,
        error=None if model is not None else ErrorInfo(
            code=ErrorCode.MODEL_NOT_READY, message=str(_state.model_error)
        ),
    )


def _error_response(job_id: str | None, request_id: str, info: ErrorInfo) -> SynthesisResponse:
    log.warning("request failed: %s (%s) %s", info.code.value, info.field or "-", info.message)
    return SynthesisResponse(
        request_id=request_id, job_id=job_id, status="error", version=version_record(),
        error=info,
    )


def _answer(response: SynthesisResponse) -> dict[str, Any]:
    """The response as JSON: fields without a value left out, except in the version record,
    which names every field (``gpu_name: null`` on a CPU says more than a missing key)."""
    answer = response.model_dump(mode="json", exclude_none=True, exclude={"version"})
    return {**answer, "version": response.version.model_dump(mode="json")}


def _dump(response: SynthesisResponse) -> dict[str, Any]:
    _count(failed=response.error is not None)
    answer = _answer(response)
    if "error" in answer:
        answer["error"] = json.dumps(answer["error"])
    return answer


def _final_item(response: SynthesisResponse) -> dict[str, Any]:
    item = StreamChunk(type="final", request_id=response.request_id, response=response)
    return {**item.model_dump(mode="json", exclude_none=True, exclude={"response"}),
            "response": _answer(response)}


def _stream_error_text(response: SynthesisResponse) -> str:
    assert response.error is not None
    return json.dumps({
        **response.error.model_dump(mode="json", exclude_none=True),
        "request_id": response.request_id,
        "version": response.version.model_dump(mode="json"),
    })


def _count(*, failed: bool) -> None:
    with _state_lock:
        _state.jobs_served += 1
        _state.jobs_failed += int(failed)


def _job_parts(job: Any) -> tuple[str | None, Any]:
    if not isinstance(job, dict):
        return None, None
    job_id = job.get("id")
    return (str(job_id) if job_id is not None else None), job.get("input")


def _request_id(raw: Any, job_id: str | None) -> str:
    if isinstance(raw, dict):
        value = raw.get("request_id")
        if isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable():
            return value
    return f"job-{job_id}" if job_id else f"req-{uuid.uuid4().hex[:16]}"


@contextmanager
def _logged(job_id: str | None, request_id: str) -> Iterator[None]:
    started = time.perf_counter()
    log.info("request %s job %s: started", request_id, job_id)
    try:
        yield
    finally:
        log.info(
            "request %s job %s: finished in %.0f ms",
            request_id, job_id, (time.perf_counter() - started) * 1000,
        )
