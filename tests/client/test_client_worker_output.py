"""Reading finished jobs: every error format, stale workers, crossed answers."""

from __future__ import annotations

import json

import pytest
from client_testing import version_dict

from honora_tts.client import (
    InvalidResponse,
    JobCancelled,
    JobFailed,
    JobStatus,
    JobTimedOut,
    RequestIdMismatch,
    StaleWorkerError,
)
from honora_tts.client._worker_output import interpret, parse_worker_error

STRUCTURED = {"code": "voice_fetch_failed", "message": "404 from the store", "field": "voice_url"}


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
    info = parse_worker_error(raw)
    assert (info.code, info.message, info.field) == (
        "voice_fetch_failed", "404 from the store", "voice_url"
    )


def test_a_handler_exception_is_read():
    raw = json.dumps({"error_type": "<class 'RuntimeError'>", "error_message": "CUDA OOM",
                      "error_traceback": "..."})
    info = parse_worker_error(raw)
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
