"""RunPod's result shape, both directions: how the worker encodes a response into a job's
``output``/``error`` and stream items, and how the client decodes them.

Worker encoding
    A plain worker returns the response object; on failure the object carries ``error``, and
    RunPod marks the job FAILED and keeps the rest of the object as ``output``. RunPod types a
    job's ``error`` as a string (its own local API rejects anything else), so ``error`` is the
    JSON text of the structured error: ``json.loads(error)`` gives ``{"code", "message",
    "field"}``. Errors of single batch sections sit inside ``output`` and stay objects.

    A streaming worker yields items (:class:`~honora_tts.protocol.StreamChunk`): ``chunk``
    items with 16-bit PCM, then one ``final`` item holding the response. A failure ends the job
    with one more item, ``{"error": <JSON text>}`` (the structured error with ``request_id`` and
    ``version``), which RunPod turns into the job's ``error``.

Client decoding
    :func:`decode_error` reads a job's ``error`` in every shape it arrives in,
    :func:`response_of` finds the response in a plain or streaming worker's ``output``,
    :func:`decode_response` types it (unknown fields are refused), :func:`decode_stream_item`
    and :func:`chunk_pcm16` read stream items, :func:`mentions_stale_signature` recognises the
    batch-only worker (handler version 1), which answers :data:`STALE_SIGNATURE` and sends no
    version record. Which client error a job ends in is the client's decision
    (:func:`honora_tts.client._exceptions.interpret`).

Standard library and pydantic only (the light client install imports it).
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from honora_tts.protocol import StreamChunk, SynthesisResponse, VersionRecord

# ------------------------------------------------------------------ worker encoding


def response_body(response: SynthesisResponse) -> dict[str, Any]:
    """The response as JSON: fields without a value left out, except in the version record,
    which names every field (``gpu_name: null`` on a CPU says more than a missing key)."""
    answer = response.model_dump(mode="json", exclude_none=True, exclude={"version"})
    return {**answer, "version": response.version.model_dump(mode="json")}


def job_answer(response: SynthesisResponse) -> dict[str, Any]:
    """What a plain handler returns: the response body, ``error`` as JSON text."""
    answer = response_body(response)
    if "error" in answer:
        answer["error"] = json.dumps(answer["error"])
    return answer


def chunk_item(
    request_id: str, seq: int, sample_rate: int, pcm16: bytes, elapsed_ms: float
) -> dict[str, Any]:
    """A streaming worker's ``chunk`` item: 16-bit little-endian mono PCM, base64."""
    return StreamChunk(
        type="chunk", request_id=request_id, seq=seq, sample_rate=sample_rate,
        pcm16_base64=base64.b64encode(pcm16).decode("ascii"),
        duration_s=round(len(pcm16) / 2 / sample_rate, 4), elapsed_ms=round(elapsed_ms, 2),
    ).model_dump(mode="json", exclude_none=True)


def final_item(response: SynthesisResponse) -> dict[str, Any]:
    """A streaming worker's ``final`` item: the response body (``error`` stays an object)."""
    item = StreamChunk(type="final", request_id=response.request_id, response=response)
    return {**item.model_dump(mode="json", exclude_none=True, exclude={"response"}),
            "response": response_body(response)}


def stream_error_item(response: SynthesisResponse) -> dict[str, str]:
    """The item that fails a stream: ``error`` = JSON text of the structured error with
    ``request_id`` and ``version``."""
    assert response.error is not None
    return {"error": json.dumps({
        **response.error.model_dump(mode="json", exclude_none=True),
        "request_id": response.request_id,
        "version": response.version.model_dump(mode="json"),
    })}


# ------------------------------------------------------------------ client decoding

#: What the batch-only worker (handler version 1) answers to every simple request.
STALE_SIGNATURE = "No sections provided"

_MESSAGE_CHARS = 500
#: Longest error text read as a Python literal (RunPod's str() of a dict).
_LITERAL_CHARS = 64 * 1024


@dataclass(frozen=True)
class WorkerFailure:
    """A job's ``error``, normalised from whatever shape it arrived in."""

    code: str
    message: str
    field: str | None = None
    request_id: str | None = None
    version: dict[str, Any] | None = None


def decode_error(raw: Any) -> WorkerFailure | None:
    """A job's ``error`` in any of the shapes it arrives in: the worker's JSON text (a plain
    worker's ``{"code", "message", "field"}``, a streaming worker's with ``request_id`` and
    ``version``), the same as an object or as its Python repr (RunPod's ``str()`` of a yielded
    dict), nested under ``error``, a handler exception's ``error_type``/``error_message``, or
    plain text. None when there is no error."""
    if raw is None or raw == "" or raw == {}:
        return None
    value = _structured(raw) if isinstance(raw, str) else raw
    if isinstance(value, dict):
        inner = value.get("error")
        if isinstance(inner, (dict, str)) and "code" not in value and "error_type" not in value:
            nested = decode_error(inner)
            if nested is not None:
                return WorkerFailure(
                    code=nested.code, message=nested.message, field=nested.field,
                    request_id=nested.request_id or _text(value.get("request_id")),
                    version=nested.version or _dict(value.get("version")),
                )
        if "code" in value or "message" in value:
            return WorkerFailure(
                code=str(value.get("code") or "worker_error"),
                message=_clip(str(value.get("message") or value)),
                field=_text(value.get("field")),
                request_id=_text(value.get("request_id")),
                version=_dict(value.get("version")),
            )
        if "error_type" in value or "error_message" in value:
            return WorkerFailure(
                code="handler_exception",
                message=_clip(f"{value.get('error_type', '')}: {value.get('error_message', '')}"
                              .strip(": ")),
            )
        return WorkerFailure(code="worker_error", message=_clip(json.dumps(value)[:1000]))
    return WorkerFailure(code="worker_error", message=_clip(str(raw)))


def response_of(output: Any) -> dict[str, Any] | None:
    """The response object inside a job's ``output``: the object itself (plain worker), or the
    ``final`` item's response (a streaming worker's item or list of items)."""
    if isinstance(output, dict):
        if output.get("type") == "final" and isinstance(output.get("response"), dict):
            return output["response"]
        return output
    if isinstance(output, list):
        for item in reversed(output):
            if isinstance(item, dict) and item.get("type") == "final":
                response = item.get("response")
                return response if isinstance(response, dict) else None
    return None


def decode_stream_item(item: Any) -> StreamChunk | None:
    """One item a streaming worker yielded, typed; None for what is not a stream item (the
    ``error`` item, RunPod's own). Raises ValueError when a chunk or final item breaks the
    protocol."""
    if not isinstance(item, dict) or item.get("type") not in ("chunk", "final"):
        return None
    try:
        return StreamChunk.model_validate(item)
    except ValidationError as exc:
        raise ValueError(f"stream item {item.get('seq')}: {exc.errors()[0]['msg']}") from exc


def chunk_pcm16(chunk: StreamChunk) -> bytes:
    """A ``chunk`` item's 16-bit PCM; raises ValueError when it is not base64."""
    try:
        return base64.b64decode(chunk.pcm16_base64 or "", validate=True)
    except binascii.Error as exc:
        raise ValueError(f"stream chunk {chunk.seq} is not base64: {exc}") from exc


def mentions_stale_signature(value: Any) -> bool:
    """Whether the batch-only worker's answer (:data:`STALE_SIGNATURE`) appears anywhere in an
    ``output`` or ``error`` (audio left out)."""
    if isinstance(value, str):
        return STALE_SIGNATURE.lower() in value.lower()
    if isinstance(value, dict):
        return any(mentions_stale_signature(v) for k, v in value.items() if k != "audio")
    if isinstance(value, list):
        return any(mentions_stale_signature(v) for v in value[:50])
    return False


def version_of(raw: Any) -> VersionRecord | None:
    """A version record, or None when ``raw`` is not one."""
    if not isinstance(raw, dict):
        return None
    try:
        return VersionRecord.model_validate(raw)
    except ValidationError:
        return None


def _structured(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return text
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    if len(stripped) > _LITERAL_CHARS:
        return text
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def decode_response(body: dict[str, Any]) -> SynthesisResponse:
    """A response body as the typed response; raises ValueError naming the first field that
    breaks the protocol (unknown fields included)."""
    try:
        return SynthesisResponse.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from exc
