"""The wire envelope: the worker's encoding read back by the client; every error format,
stale workers, crossed answers."""

from __future__ import annotations

import json

import pytest
from client_testing import version_dict

from honora_tts import envelope
from honora_tts.client import (
    InvalidResponse,
    JobCancelled,
    JobFailed,
    JobStatus,
    JobTimedOut,
    RequestIdMismatch,
    StaleWorkerError,
)
from honora_tts.client._response_reader import ResponseReader
from honora_tts.protocol import (
    CacheFacts,
    ErrorCode,
    ErrorInfo,
    StageTimings,
    SynthesisResponse,
    VersionRecord,
)

STRUCTURED = {"code": "voice_fetch_failed", "message": "404 from the store", "field": "voice_url"}


def interpret(job, *, request_id: str, min_handler_version: int):
    """The client's finished-job decision for ``job``."""
    return ResponseReader(min_handler_version).read(job, request_id)


def job(status: str, output=None, error=None, worker_id: str | None = "w-1") -> JobStatus:
    return JobStatus(id="job-9", status=status, output=output, error=error, worker_id=worker_id)


def ok_output(request_id: str = "req-1", **version) -> dict:
    return {"request_id": request_id, "status": "healthy", "version": version_dict(**version),
            "health": {}}


@pytest.mark.parametrize(
    "raw",
    [
        STRUCTURED,
        json.dumps(STRUCTURED),
        repr(STRUCTURED),
        {"error": STRUCTURED},
    ],
    ids=["dict", "json", "python-repr", "nested"],
)
def test_structured_errors_are_read_in_every_shape(raw):
    info = envelope.decode_error(raw)
    assert (info.code, info.message, info.field) == (
        "voice_fetch_failed", "404 from the store", "voice_url"
    )


def test_a_handler_exception_is_read():
    raw = json.dumps({"error_type": "<class 'RuntimeError'>", "error_message": "CUDA OOM",
                      "error_traceback": "..."})
    info = envelope.decode_error(raw)
    assert info.code == "handler_exception"
    assert "CUDA OOM" in info.message


def test_failed_job_raises_job_failed_with_the_workers_code_and_version():
    output = {"request_id": "req-1", "status": "error", "version": version_dict()}
    with pytest.raises(JobFailed) as caught:
        interpret(job("FAILED", output, STRUCTURED), request_id="req-1", min_handler_version=2)
    assert caught.value.code == "voice_fetch_failed"
    assert caught.value.field == "voice_url"
    assert caught.value.version.git_sha == "a" * 40


def test_streaming_worker_failure_is_read_from_the_error_text():
    error = json.dumps({**STRUCTURED, "request_id": "req-1", "version": version_dict()})
    with pytest.raises(JobFailed) as caught:
        interpret(job("FAILED", None, error), request_id="req-1", min_handler_version=2)
    assert caught.value.code == "voice_fetch_failed"
    assert caught.value.version is not None


def test_streaming_worker_answer_to_a_plain_request_is_unwrapped():
    output = [{"type": "final", "request_id": "req-1", "response": ok_output()}]
    response = interpret(job("COMPLETED", output), request_id="req-1", min_handler_version=2)
    assert response.status == "healthy"


def test_the_old_workers_answer_is_a_stale_worker():
    with pytest.raises(StaleWorkerError) as caught:
        interpret(job("FAILED", None, "No sections provided"), request_id="req-1",
                  min_handler_version=2)
    assert "No sections provided" in caught.value.seen
    assert "unique tag" in str(caught.value)
    assert "restart" in str(caught.value)
    assert caught.value.worker_id == "w-1"


def test_a_completed_answer_without_version_is_a_stale_worker():
    with pytest.raises(StaleWorkerError) as caught:
        interpret(job("COMPLETED", {"audio_base64": "AAAA"}), request_id="req-1",
                  min_handler_version=2)
    assert "without a version record" in caught.value.seen


def test_a_handler_version_below_the_minimum_is_a_stale_worker():
    with pytest.raises(StaleWorkerError) as caught:
        interpret(job("COMPLETED", ok_output(handler_version=1)), request_id="req-1",
                  min_handler_version=2)
    assert caught.value.version.handler_version == 1
    assert "handler version 1" in str(caught.value)


def test_a_crossed_answer_raises_request_id_mismatch():
    with pytest.raises(RequestIdMismatch):
        interpret(job("COMPLETED", ok_output("req-other")), request_id="req-1",
                  min_handler_version=2)


def test_a_job_whose_worker_died_is_a_failed_job_not_a_stale_worker():
    error = {"code": "worker_died", "message": "worker w-1 died while running this job"}
    with pytest.raises(JobFailed) as caught:
        interpret(job("FAILED", None, error), request_id="req-1", min_handler_version=2)
    assert not isinstance(caught.value, StaleWorkerError)
    assert caught.value.code == "worker_died"


def test_a_bare_failure_without_handler_answer_is_worker_lost():
    with pytest.raises(JobFailed) as caught:
        interpret(job("FAILED", None, "connection reset"), request_id="req-1",
                  min_handler_version=2)
    assert caught.value.code == "worker_lost"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [("CANCELLED", JobCancelled), ("TIMED_OUT", JobTimedOut), ("IN_PROGRESS", InvalidResponse)],
)
def test_other_final_states(status, error_type):
    with pytest.raises(error_type):
        interpret(job(status), request_id="req-1", min_handler_version=2)


def test_a_response_breaking_the_protocol_is_invalid():
    output = {"request_id": "req-1", "status": "weird", "version": version_dict()}
    with pytest.raises(InvalidResponse):
        interpret(job("COMPLETED", output), request_id="req-1", min_handler_version=2)


# ------------------------------------------------------------------ both directions


def _response(**fields) -> SynthesisResponse:
    return SynthesisResponse(request_id="req-1", job_id="job-9",
                             version=VersionRecord(**version_dict()), **fields)


def test_a_plain_workers_answer_reads_back_as_the_same_response():
    sent = _response(status="ok", language="en", text_chars=5, pieces=1,
                     timings=StageTimings(generation_ms=12.5, total_ms=20.0),
                     cache=CacheFacts(voice="hit", latents="miss"))
    output = envelope.job_answer(sent)
    assert "first_chunk_ms" not in output["timings"]  # unset fields stay off the wire
    assert interpret(job("COMPLETED", output), request_id="req-1",
                     min_handler_version=2) == sent


def test_a_plain_workers_failure_reads_back_as_job_failed():
    failed = _response(status="error", error=ErrorInfo(
        code=ErrorCode.VOICE_FETCH_FAILED, message="404", field="voice_url"))
    answer = envelope.job_answer(failed)
    assert isinstance(answer["error"], str)  # RunPod types a job's error as a string
    # RunPod marks the job FAILED and keeps the rest of the answer as its output.
    error = answer.pop("error")
    with pytest.raises(JobFailed) as caught:
        interpret(job("FAILED", answer, error), request_id="req-1", min_handler_version=2)
    assert (caught.value.code, caught.value.field) == ("voice_fetch_failed", "voice_url")
    assert caught.value.version.git_sha == "a" * 40


def test_a_stream_reads_back_with_its_declared_fields():
    final = _response(
        status="ok", streamed_duration_s=1.25,
        timings=StageTimings(first_chunk_ms=80.0, chunks=3, total_ms=400.0),
    )
    pcm = b"\x01\x00" * 480
    items = [envelope.chunk_item("req-1", seq, 24_000, pcm, 10.0 * seq) for seq in range(3)]
    items.append(envelope.final_item(final))
    decoded = [envelope.decode_stream_item(item) for item in items]
    assert [d.type for d in decoded] == ["chunk"] * 3 + ["final"]
    assert envelope.chunk_pcm16(decoded[0]) == pcm and decoded[0].duration_s == 0.02
    response = interpret(job("COMPLETED", items), request_id="req-1", min_handler_version=2)
    assert response.streamed_duration_s == 1.25
    assert (response.timings.first_chunk_ms, response.timings.chunks) == (80.0, 3)


def test_a_failed_stream_reads_back_as_job_failed():
    failed = _response(status="error", error=ErrorInfo(code=ErrorCode.TEXT_EMPTY,
                                                       message="text is empty", field="text"))
    items = [envelope.final_item(failed), envelope.stream_error_item(failed)]
    with pytest.raises(JobFailed) as caught:
        # RunPod turns the error item into the job's error and keeps the items before it.
        interpret(job("FAILED", items[:1], items[1]["error"]), request_id="req-1",
                  min_handler_version=2)
    assert caught.value.code == "text_empty" and caught.value.version is not None


def test_responses_refuse_fields_the_protocol_does_not_declare():
    output = {**ok_output(), "surprise": 1}
    with pytest.raises(InvalidResponse, match="surprise"):
        interpret(job("COMPLETED", output), request_id="req-1", min_handler_version=2)
    chunk = envelope.chunk_item("req-1", 0, 24_000, b"\x00\x00", 0.0)
    with pytest.raises(ValueError):
        envelope.decode_stream_item({**chunk, "loudness": 3})
    assert envelope.decode_stream_item({"error": "x"}) is None


def test_an_oversized_python_literal_is_not_evaluated():
    huge = "{'code': 'x', 'message': '" + "y" * 70_000 + "'}"
    info = envelope.decode_error(huge)
    assert info.code == "worker_error"  # read as text, not parsed
