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
"""

from __future__ import annotations

import base64
import json
from typing import Any

from honora_tts.protocol import StreamChunk, SynthesisResponse


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
