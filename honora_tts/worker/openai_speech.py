"""OpenAI's speech API on honora's protocol: the request of ``POST /v1/audio/speech``, its
errors and its server-sent events, in one place.

A speech request becomes a worker protocol request (:func:`to_protocol_input`), so the HTTP mode
validates, synthesizes and fails exactly as the queue worker does; only the shapes differ:

- Reference audio inside the request (the old clients' ``speaker_wav`` and the like) is
  refused with ``voice_embedded``, as the queue worker refuses it.
- Fields: OpenAI's ``model``, ``input``, ``voice``, ``response_format``, ``speed``,
  ``stream_format`` and ``instructions``, plus honora's ``language``, ``voice_url``,
  ``voice_sha256``, ``params`` and ``request_id``. Unknown fields are refused, as honora's
  protocol refuses them.
- ``model``: any of :data:`MODELS` (all are the one XTTS-v2 model the worker loaded).
- ``voice``: a name (or OpenAI's ``{"id": name}``): a voice of the library
  (:mod:`honora_tts.voices.library`), else one of OpenAI's own names (:data:`OPENAI_VOICES`),
  which speak with the worker's default voice. ``voice_url`` wins over ``voice``.
- ``speed`` is honora's ``params.speed`` (0.5 to 2.0; OpenAI allows 0.25 to 4.0, and a value
  XTTS cannot do is refused, not clipped). ``instructions`` cannot steer XTTS: it is accepted,
  not used, and the answer says so (``X-Honora-Ignored: instructions``).
- Errors: ``{"error": {"message", "type", "param", "code"}}`` with honora's stable codes and the
  HTTP status of :data:`STATUS_FOR_CODE`; ``param`` is the request's own field name.
- ``stream_format: "sse"``: ``data: {"type": "speech.audio.delta", "audio": <base64>}`` events,
  then ``data: {"type": "speech.audio.done", "usage": {...}}`` (the shapes of OpenAI's
  ``SpeechAudioDeltaEvent`` / ``SpeechAudioDoneEvent``); ``usage`` counts the input's characters
  (``input_tokens``) and the audio's GPT codes (``output_tokens``, XTTS's 21.5 per second), and
  the done event adds ``honora`` (request id, timings, cache facts, version).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from honora_tts.protocol import (
    EMBEDDED_VOICE_KEYS,
    MAX_REQUEST_ID_CHARS,
    MAX_URL_CHARS,
    ErrorCode,
    ErrorInfo,
    SynthesisResponse,
    validation_error,
)

#: What ``model`` may name; every one is the XTTS-v2 model this worker serves.
MODELS = ("xtts-v2", "xtts_v2", "tts-1", "tts-1-hd", "gpt-4o-mini-tts",
          "gpt-4o-mini-tts-2025-12-15")
#: OpenAI's built-in voices: without a library voice of the same name, the default voice.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
#: OpenAI's speech API speaks at 24 kHz (its ``pcm`` is 24 kHz); so does XTTS.
SAMPLE_RATE = 24_000
#: GPT audio codes per second of XTTS audio (22 050 Hz / 1024).
CODES_PER_SECOND = 22_050 / 1_024
LIBRARY_PREFIX = "library:"

#: The HTTP status of each error code (OpenAI's clients raise their typed errors from it).
STATUS_FOR_CODE: dict[str, int] = {
    ErrorCode.INVALID_INPUT: 400, ErrorCode.TEXT_EMPTY: 400, ErrorCode.TEXT_TOO_LONG: 400,
    ErrorCode.UNSUPPORTED_LANGUAGE: 400, ErrorCode.VOICE_EMBEDDED: 400,
    ErrorCode.VOICE_URL_FORBIDDEN: 400, ErrorCode.VOICE_TOO_LARGE: 400,
    ErrorCode.VOICE_NOT_AUDIO: 400, ErrorCode.VOICE_CHECKSUM_MISMATCH: 400,
    ErrorCode.STREAMING_UNAVAILABLE: 400, ErrorCode.VOICE_NOT_FOUND: 404,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    # An unreachable voice URL is the request's problem, and a 5xx would be retried by
    # OpenAI's clients (twice, each up to the 60 s fetch deadline).
    ErrorCode.VOICE_FETCH_FAILED: 422,
    ErrorCode.SYNTHESIS_FAILED: 500, ErrorCode.OUTPUT_UPLOAD_FAILED: 500,
    ErrorCode.INTERNAL_ERROR: 500, ErrorCode.MODEL_NOT_READY: 503,
}  # fmt: skip
#: The request's field for each protocol field an error may name.
_PARAM_FOR_FIELD = {"text": "input", "voice_url": "voice_url", "params.speed": "speed",
                    "output.format": "response_format"}


class VoiceId(BaseModel):
    """OpenAI's custom voice reference."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64)]


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``'s body (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str
    voice: Annotated[str, Field(min_length=1, max_length=64)] | VoiceId
    response_format: SpeechFormat = "mp3"
    speed: float | None = None
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: Annotated[str, Field(max_length=4096)] | None = None
    # honora's extras
    language: str = "en"
    voice_url: Annotated[str, Field(max_length=MAX_URL_CHARS)] | None = None
    voice_sha256: str | None = None
    params: dict[str, Any] | None = None
    request_id: Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_CHARS)] | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"this endpoint serves XTTS-v2; model must be one of "
                             f"{', '.join(MODELS)}")
        return value

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceId) else self.voice


def parse_speech_request(body: Any) -> SpeechRequest | ErrorInfo:
    """Validate a speech request's JSON; never raises."""
    if not isinstance(body, dict):
        kind = type(body).__name__ if body is not None else "nothing"
        return ErrorInfo(code=ErrorCode.INVALID_INPUT, field="body",
                         message=f"the body must be a JSON object, got {kind}")
    embedded = next((key for key in EMBEDDED_VOICE_KEYS if key in body), None)
    if embedded is not None:
        return ErrorInfo(code=ErrorCode.VOICE_EMBEDDED, field=embedded,
                         message=f"{embedded}: reference audio embedded in the request is not "
                         "accepted; upload it to /v1/audio/voices and name it in voice, or "
                         "send voice_url")
    try:
        return SpeechRequest.model_validate(body)
    except ValidationError as exc:
        return validation_error(exc)


def to_protocol_input(request: SpeechRequest, library_voice: bool) -> dict[str, Any]:
    """The worker protocol's request for ``request`` (what the queue worker would be sent).
    ``library_voice``: the voice name is one of the library's (else the default voice)."""
    params = dict(request.params or {})
    if request.speed is not None:
        params["speed"] = request.speed
    voice_url = request.voice_url
    if voice_url is None and library_voice:
        voice_url = LIBRARY_PREFIX + request.voice_name
    job: dict[str, Any] = {
        "text": request.input, "language": request.language, "params": params,
        "output": {"format": request.response_format, "sample_rate": SAMPLE_RATE,
                   "delivery": "base64"},
    }
    optional = {"voice_url": voice_url, "voice_sha256": request.voice_sha256,
                "request_id": request.request_id}
    job.update({key: value for key, value in optional.items() if value is not None})
    return job


def error_status(info: ErrorInfo) -> int:
    return STATUS_FOR_CODE.get(info.code, 500)


def error_body(info: ErrorInfo) -> dict[str, Any]:
    """OpenAI's error shape carrying honora's code."""
    kind = "invalid_request_error" if error_status(info) < 500 else "server_error"
    param = _PARAM_FOR_FIELD.get(info.field or "", info.field)
    return {"error": {"message": info.message, "type": kind, "param": param,
                      "code": info.code.value}}


def delta_event(audio: bytes) -> bytes:
    """One ``speech.audio.delta`` server-sent event."""
    return _event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode()})


def done_event(text: str, response: SynthesisResponse) -> bytes:
    """The closing ``speech.audio.done`` event, with honora's facts about the synthesis."""
    seconds = response.streamed_duration_s or 0.0
    output_tokens = round(seconds * CODES_PER_SECOND)
    honora = response.model_dump(
        mode="json", exclude_none=True, include={"request_id", "timings", "cache", "version",
                                                 "streamed_duration_s", "language"},
    )
    return _event({
        "type": "speech.audio.done",
        "usage": {"input_tokens": len(text), "output_tokens": output_tokens,
                  "total_tokens": len(text) + output_tokens},
        "honora": honora,
    })


def error_event(info: ErrorInfo) -> bytes:
    """A stream that failed after its first event ends with this one."""
    return _event({"type": "error", **error_body(info)})


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
