"""The load-balancing worker's HTTP routes (``HONORA_SERVE=http``): OpenAI's speech API and a
voice library over the same service, protocol, errors and version record as the queue worker.

Routes::

    POST /v1/audio/speech        OpenAI's speech request -> audio, streamed as it is
                                 synthesized (``stream_format: audio``) or as server-sent events
                                 (``sse``); see :mod:`honora_tts.worker.openai_speech`
    GET  /v1/audio/voices        the voice library's names (and OpenAI's voice names, which
                                 speak with the default voice)
    POST /v1/audio/voices        multipart ``audio_sample`` + ``name`` (OpenAI's
                                 ``audio.voices.create``; ``consent`` is accepted, not used):
                                 checks and stores the voice, answers its name
    GET  /ping                   204 while the model loads, then 200 (RunPod's health check)
    GET  /health                 the version record, the health job's facts and the counters
    POST /honora/v1/runsync      ``{"input": <the worker protocol's request>}`` -> RunPod's job
                                 object (``status`` COMPLETED or FAILED, ``output``, ``error``):
                                 what :class:`~honora_tts.client.EndpointClient` sends in
                                 load-balancing mode
    POST /honora/v1/stream       the same, streamed: one JSON line per item the queue worker's
                                 stream would yield (``{"output": item}``), then the job object

Every answer carries the build (``X-Honora-Git-Sha``, ``X-Honora-Handler-Version``,
``X-Honora-Model-Sha256``, ``X-Honora-Worker-Id``) and ``X-Honora-Request-Id``. Errors are
OpenAI's shape with honora's codes. Bodies are bounded before they are read (JSON 20 MiB,
RunPod's ``/runsync`` limit, under the load balancer's 30 MB; a voice upload 25 MiB plus its
form), parsed strictly (no NaN, valid UTF-8, at most 800 levels deep); no exception leaves a
route, and the worker serves the next request. At most ``concurrency`` syntheses run at once;
more wait their turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.formparsers import MultiPartParser

from honora_tts import audio
from honora_tts.envelope import response_body
from honora_tts.http_body import loads_strict, read_capped
from honora_tts.protocol import (
    ErrorCode,
    ErrorInfo,
    ParsedRequest,
    SynthesisResponse,
    WorkerError,
    parse_request,
)
from honora_tts.synthesis import StreamedChunk
from honora_tts.version import version_record
from honora_tts.voices.library import MAX_UPLOAD_BYTES, VoiceLibrary, check_name
from honora_tts.worker import openai_speech as oai
from honora_tts.worker.runpod_adapter import RunPodAdapter

log = logging.getLogger("honora_tts.worker")

#: The largest JSON body read (RunPod's ``/runsync`` limit; the load balancer allows 30 MB).
MAX_JSON_BYTES = 20 * 2**20
#: The largest voice upload body: the voice itself plus room for the form around it.
MAX_UPLOAD_BODY_BYTES = MAX_UPLOAD_BYTES + 256 * 1024
#: What a client should wait before asking a loading worker again.
RETRY_AFTER_S = 5
REQUEST_ID_HEADER = "X-Honora-Request-Id"


class HttpWorker:
    """What the routes share: the adapter once the model is loaded (None while it loads), the
    voice library, how many syntheses may run at once, and the counters /health reports."""

    def __init__(self, library: VoiceLibrary, *, concurrency: int = 1) -> None:
        self.library = library
        self.concurrency = max(1, concurrency)
        self.adapter: RunPodAdapter | None = None
        self.started_at = time.time()
        self.ready_at: float | None = None
        self.counters: Counter[str] = Counter()
        self._slots: asyncio.Semaphore | None = None

    def set_ready(self, adapter: RunPodAdapter) -> None:
        """The model is loaded (or failed to: the adapter then answers model_not_ready); its
        concurrency (the settings' or the device's) becomes the routes' when none has run yet."""
        self.adapter = adapter
        if self._slots is None:
            self.concurrency = max(1, adapter.concurrency)
        self.ready_at = time.time()

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:  # made on the server's event loop
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    def http_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = dict(sorted(self.counters.items()))
        facts["concurrency"] = self.concurrency
        if self.ready_at is not None:
            facts["ready_after_s"] = round(self.ready_at - self.started_at, 2)
        return facts


def build_headers(request_id: str) -> dict[str, str]:
    """The build that answers, in every answer's headers."""
    version = version_record()
    return {
        "X-Honora-Git-Sha": version.git_sha,
        "X-Honora-Handler-Version": str(version.handler_version),
        "X-Honora-Model-Sha256": version.model_sha256 or "",
        "X-Honora-Worker-Id": version.worker_id or "",
        REQUEST_ID_HEADER: request_id,
    }


def _request_id(request: Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return f"req-{uuid.uuid4().hex[:16]}"


def build_app(worker: HttpWorker) -> FastAPI:
    """The ASGI application of one HTTP worker."""
    app = FastAPI(title="honora-tts worker", docs_url=None, redoc_url=None, openapi_url=None)

    def error(info: ErrorInfo, request_id: str, **headers: str) -> JSONResponse:
        worker.counters[f"errors:{info.code.value}"] += 1
        log.warning("request %s refused: %s (%s) %s", request_id, info.code.value,
                    info.field or "-", info.message)
        return JSONResponse(oai.error_body(info), status_code=oai.error_status(info),
                            headers={**build_headers(request_id), **headers})

    def not_ready(request_id: str) -> JSONResponse:
        return error(ErrorInfo(code=ErrorCode.MODEL_NOT_READY,
                               message="the model is still loading on this worker; retry in a "
                               "few seconds (RunPod holds requests until /ping answers 200)"),
                     request_id, **{"Retry-After": str(RETRY_AFTER_S)})

    async def json_body(request: Request, request_id: str) -> Any:
        """The parsed JSON body, or the error response refusing it."""
        raw = await read_capped(request, MAX_JSON_BYTES)
        if isinstance(raw, int):
            return error(ErrorInfo(
                code=ErrorCode.REQUEST_TOO_LARGE, field="body",
                message=f"the request body has {raw} bytes; this worker reads at most "
                f"{MAX_JSON_BYTES} ({MAX_JSON_BYTES // 2**20} MiB). Send reference audio as "
                "voice_url or upload it to /v1/audio/voices, never inline."), request_id)
        try:
            return loads_strict(raw)
        except ValueError as exc:
            return error(ErrorInfo(code=ErrorCode.INVALID_INPUT, field="body",
                                   message=f"the request body is not valid JSON: {exc}"),
                         request_id)

    def unexpected(exc: BaseException, request_id: str) -> JSONResponse:
        log.error("request %s: unexpected failure: %s\n%s", request_id, exc,
                  traceback.format_exc())
        return error(ErrorInfo(code=ErrorCode.INTERNAL_ERROR,
                               message=f"{type(exc).__name__}: {exc}"), request_id)

    # ---------------------------------------------------------------- health

    @app.get("/ping")
    async def ping() -> Response:
        if worker.adapter is None:
            return Response(status_code=204)
        loaded = worker.adapter.service.model_loaded
        return JSONResponse({"status": "healthy" if loaded else "model_not_ready"})

    @app.get("/health")
    async def health(request: Request) -> Response:
        request_id = _request_id(request)
        headers = build_headers(request_id)
        if worker.adapter is None:
            return JSONResponse({"status": "loading", "request_id": request_id,
                                 "version": version_record().model_dump(mode="json"),
                                 "health": {"http": worker.http_facts()}},
                                status_code=503, headers={**headers, "Retry-After": "5"})
        answer = response_body(worker.adapter.health_response(None, request_id))
        answer.setdefault("health", {})["http"] = worker.http_facts()
        answer["health"]["voice_library"] = worker.library.stats()
        return JSONResponse(answer, headers=headers)

    # ---------------------------------------------------------------- voices

    @app.get("/v1/audio/voices")
    async def list_voices(request: Request) -> Response:
        request_id = _request_id(request)
        named = await run_in_threadpool(worker.library.names)
        data = [_voice_object(v.name, v.created_at, v.sha256, v.duration_s) for v in named]
        listed = {v.name for v in named}
        return JSONResponse({
            "object": "list", "data": data,
            "default_voices": [name for name in oai.OPENAI_VOICES if name not in listed],
        }, headers=build_headers(request_id))

    @app.post("/v1/audio/voices")
    async def upload_voice(request: Request) -> Response:
        request_id = _request_id(request)
        worker.counters["voice_uploads"] += 1
        try:
            raw = await read_capped(request, MAX_UPLOAD_BODY_BYTES)
            if isinstance(raw, int):
                return error(ErrorInfo(
                    code=ErrorCode.VOICE_TOO_LARGE, field="audio_sample",
                    message=f"the upload has {raw} bytes; a voice sample may have at most "
                    f"{MAX_UPLOAD_BYTES} ({MAX_UPLOAD_BYTES // 2**20} MiB)"), request_id)
            form = await _form(request, raw)
            if isinstance(form, ErrorInfo):
                return error(form, request_id)
            name, data = form
            voice = await run_in_threadpool(worker.library.add, name, data)
        except WorkerError as exc:
            return error(exc.to_info(), request_id)
        except Exception as exc:  # noqa: BLE001 - the worker answers, never crashes
            return unexpected(exc, request_id)
        log.info("request %s: voice %r stored (sha256 %s, %.1f s)", request_id, voice.name,
                 voice.sha256[:12], voice.duration_s)
        return JSONResponse(_voice_object(voice.name, voice.created_at, voice.sha256,
                                          voice.duration_s),
                            headers=build_headers(request_id))

    # ---------------------------------------------------------------- speech

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        request_id = _request_id(request)
        worker.counters["speech_requests"] += 1
        try:
            body = await json_body(request, request_id)
            if isinstance(body, Response):
                return body
            speech_request = oai.parse_speech_request(body)
            if isinstance(speech_request, ErrorInfo):
                return error(speech_request, request_id)
            request_id = speech_request.request_id or request_id
            if worker.adapter is None:
                return not_ready(request_id)
            parsed = _protocol_request(worker.library, speech_request)
            if isinstance(parsed, ErrorInfo):
                return error(parsed, request_id)
            return await _speak(worker, parsed, speech_request, request_id, error)
        except Exception as exc:  # noqa: BLE001 - the worker answers, never crashes
            return unexpected(exc, request_id)

    # ---------------------------------------------------------------- honora's jobs

    @app.post("/honora/v1/runsync")
    async def runsync(request: Request) -> Response:
        request_id = _request_id(request)
        worker.counters["jobs"] += 1
        try:
            taken = await _job(request, request_id)
            if isinstance(taken, Response):
                return taken
            job, adapter = taken
            started = time.perf_counter()
            async with worker.slots:
                answer = await run_in_threadpool(adapter.handle, job)
            output = dict(answer)  # a dict with ``error`` fails the job; the rest is its output
            status = _job_status(job["id"], output.pop("error", None), started)
            return JSONResponse({**status, "output": output}, headers=build_headers(request_id))
        except Exception as exc:  # noqa: BLE001 - the worker answers, never crashes
            return unexpected(exc, request_id)

    @app.post("/honora/v1/stream")
    async def stream(request: Request) -> Response:
        request_id = _request_id(request)
        worker.counters["stream_jobs"] += 1
        try:
            taken = await _job(request, request_id)
        except Exception as exc:  # noqa: BLE001 - the worker answers, never crashes
            return unexpected(exc, request_id)
        if isinstance(taken, Response):
            return taken
        job, adapter = taken
        return StreamingResponse(_job_lines(worker, adapter, job), headers=build_headers(
            request_id), media_type="application/x-ndjson")

    async def _job(request: Request,
                   request_id: str) -> tuple[dict[str, Any], RunPodAdapter] | Response:
        """RunPod's job for the body and the adapter to run it, or the refusal."""
        body = await json_body(request, request_id)
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict) or body.get("input") is None:
            return error(ErrorInfo(code=ErrorCode.INVALID_INPUT, field="input",
                                   message='the body must be {"input": <request>}, as RunPod '
                                   "sends a job"), request_id)
        if worker.adapter is None:
            return not_ready(request_id)
        return {"id": f"lb-{request_id}", "input": body["input"]}, worker.adapter

    return app


# -------------------------------------------------------------------- speech, step by step


def _protocol_request(library: VoiceLibrary,
                      request: oai.SpeechRequest) -> ParsedRequest | ErrorInfo:
    """The speech request as the worker protocol's, validated by the protocol."""
    name = request.voice_name
    library_voice = request.voice_url is None and library.get(name) is not None
    if request.voice_url is None and not library_voice and name not in oai.OPENAI_VOICES:
        try:
            library.resolve(name)  # the voice_not_found error, naming the library's voices
        except WorkerError as exc:
            return exc.to_info()
    return parse_request(oai.to_protocol_input(request, library_voice))


async def _speak(worker: HttpWorker, parsed: ParsedRequest, speech_request: oai.SpeechRequest,
                 request_id: str, error: Any) -> Response:
    """Start the synthesis; its first chunk decides between audio and an error answer."""
    adapter = worker.adapter
    assert adapter is not None
    fmt = speech_request.response_format
    sse = speech_request.stream_format == "sse"
    encoder = audio.StreamEncoder(fmt, oai.SAMPLE_RATE)
    started = time.perf_counter()
    await worker.slots.acquire()
    events = adapter.service.stream(parsed.request, request_id=request_id)
    items = iterate_in_threadpool(events)
    try:
        first = await items.__anext__()
    except BaseException as exc:
        await _close(events, items, encoder, worker)
        if isinstance(exc, WorkerError):
            return error(exc.to_info(), request_id)
        if not isinstance(exc, Exception):  # cancelled: the client went away
            raise
        log.error("request %s: synthesis failed: %s\n%s", request_id, exc,
                  traceback.format_exc())
        return error(ErrorInfo(code=ErrorCode.SYNTHESIS_FAILED,
                               message=f"{type(exc).__name__}: {exc}"), request_id)
    headers = build_headers(request_id)
    headers["X-Honora-First-Chunk-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
    if speech_request.instructions:
        headers["X-Honora-Ignored"] = "instructions"
    media_type = "text/event-stream" if sse else encoder.media_type
    body = _speech_body(worker, first, items, events, encoder, speech_request, request_id)
    return StreamingResponse(body, media_type=media_type, headers=headers)


async def _speech_body(worker: HttpWorker, first: Any, items: AsyncIterator[Any],
                       events: Iterator[Any], encoder: audio.StreamEncoder,
                       speech_request: oai.SpeechRequest, request_id: str) -> AsyncIterator[bytes]:
    sse = speech_request.stream_format == "sse"
    final: SynthesisResponse | None = None
    finished = False
    try:
        event = first
        while True:
            if isinstance(event, StreamedChunk):
                data = encoder.encode(event.samples)
                if data:
                    yield oai.delta_event(data) if sse else data
            else:
                final = event
            try:
                event = await items.__anext__()
            except StopAsyncIteration:
                break
        tail = encoder.finish()
        if tail:
            yield oai.delta_event(tail) if sse else tail
        if sse and final is not None:
            yield oai.done_event(speech_request.input, final)
        worker.counters["speech_completed"] += 1
        finished = True
    except Exception as exc:
        info = exc.to_info() if isinstance(exc, WorkerError) else ErrorInfo(
            code=ErrorCode.SYNTHESIS_FAILED, message=f"{type(exc).__name__}: {exc}")
        worker.counters[f"errors:{info.code.value}"] += 1
        log.error("request %s: stream failed after its first chunk: %s", request_id, exc)
        if not sse:
            raise  # the connection ends without its last chunk: the client sees the failure
        yield oai.error_event(info)
    finally:
        if not finished:
            worker.counters["speech_abandoned"] += 1
        await _close(events, items, encoder, worker)


async def _close(events: Iterator[Any], items: AsyncIterator[Any],
                 encoder: audio.StreamEncoder, worker: HttpWorker) -> None:
    """Stop a synthesis (the client left, or it failed) and free its slot."""
    try:
        await items.aclose()  # type: ignore[attr-defined]
        close = getattr(events, "close", None)
        if close is not None:
            await run_in_threadpool(close)
        encoder.close()
    finally:
        worker.slots.release()


# -------------------------------------------------------------------- honora's job routes


def _job_status(job_id: str, error: Any, started: float) -> dict[str, Any]:
    """RunPod's job object for a job that ended, failed when it has an ``error``."""
    status: dict[str, Any] = {
        "id": job_id, "status": "FAILED" if error is not None else "COMPLETED",
        "delayTime": 0, "executionTime": round((time.perf_counter() - started) * 1000),
        "workerId": version_record().worker_id,
    }
    if error is not None:
        status["error"] = error
    return status


async def _job_lines(worker: HttpWorker, adapter: RunPodAdapter,
                     job: dict[str, Any]) -> AsyncIterator[bytes]:
    """One line per stream item, then the job object; the stream's ``error`` item fails it."""
    started = time.perf_counter()
    error: Any = None
    async with worker.slots:
        items = adapter.handle_stream(job)
        try:
            async for item in iterate_in_threadpool(items):
                if isinstance(item, dict) and set(item) == {"error"}:
                    error = item["error"]
                    continue
                yield _line({"output": item})
        finally:
            await run_in_threadpool(getattr(items, "close", lambda: None))
    yield _line(_job_status(job["id"], error, started))


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


# -------------------------------------------------------------------- voice uploads


async def _form(request: Request, raw: bytes) -> tuple[str, bytes] | ErrorInfo:
    """``name`` and ``audio_sample`` of a multipart upload already read (and bounded)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return ErrorInfo(code=ErrorCode.INVALID_INPUT, field="body",
                         message="upload a voice as multipart/form-data with the fields "
                         "audio_sample (the file) and name")

    async def replay() -> AsyncGenerator[bytes, None]:
        yield raw

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=1, max_fields=8,
                                     max_part_size=64 * 1024).parse()
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several kinds
        return ErrorInfo(code=ErrorCode.INVALID_INPUT, field="body",
                         message=f"the upload is not a valid multipart form: {exc}")
    sample = form.get("audio_sample")
    if sample is None or isinstance(sample, str):
        return ErrorInfo(code=ErrorCode.INVALID_INPUT, field="audio_sample",
                         message="the form needs a file field audio_sample")
    try:
        name = check_name(form.get("name"))
        data = await sample.read()
    finally:
        await form.close()
    return name, data


def _voice_object(name: str, created_at: float, sha256: str, duration_s: float) -> dict[str, Any]:
    """A library voice as OpenAI's ``Voice`` object (with honora's facts)."""
    return {"id": name, "object": "audio.voice", "name": name, "created_at": int(created_at),
            "type": "audio_sample", "sha256": sha256, "duration_s": duration_s}
