"""Retries never duplicate a job: POSTs are counted on a scripted endpoint."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from client_testing import API_KEY, Reached

from honora_tts.client import (
    AuthenticationError,
    EndpointUnavailable,
    JobTimedOut,
    RateLimited,
    SubmissionUncertain,
)
from honora_tts.client._base_client import parse_retry_after


def test_connect_error_on_run_is_retried_and_creates_exactly_one_job(fake, client, sleeps):
    fake.fail("run", httpx.ConnectError, httpx.ConnectTimeout)

    result = client.synthesize("Hello world.")

    assert len(fake.jobs) == 1
    assert fake.calls["POST run"] == 1  # the two failed attempts never reached the endpoint
    assert len([r for r in fake.requests if r.url.path.endswith("/run")]) == 3
    assert len(sleeps) >= 2
    assert result.job_id == "job-1"


def test_read_timeout_after_run_reached_the_endpoint_is_not_resent(fake, client):
    fake.fail("run", Reached(httpx.ReadTimeout))

    with pytest.raises(SubmissionUncertain) as caught:
        client.synthesize("Hello world.", request_id="req-lost")

    assert fake.calls["POST run"] == 1
    assert len(fake.jobs) == 1
    assert caught.value.request_id == "req-lost"
    assert "not re-sent" in str(caught.value)


def test_remote_protocol_error_on_run_is_not_resent(fake, client):
    fake.fail("run", Reached(httpx.RemoteProtocolError))

    with pytest.raises(SubmissionUncertain):
        client.synthesize("Hello world.")

    assert fake.calls["POST run"] == 1


def test_429_on_run_honours_retry_after_and_creates_one_job(fake, client, sleeps):
    fake.fail("run", (429, {"Retry-After": "2"}))

    client.synthesize("Hello world.")

    assert 2.0 in sleeps
    assert fake.calls["POST run"] == 2
    assert len(fake.jobs) == 1


def test_429_with_retry_after_beyond_the_cap_raises_rate_limited_at_once(fake, client):
    fake.fail("run", (429, {"Retry-After": "3600"}))

    with pytest.raises(RateLimited) as caught:
        client.synthesize("Hello world.")

    assert caught.value.retry_after_s == 3600
    assert fake.calls["POST run"] == 1
    assert len(fake.jobs) == 0


def test_503_on_run_is_not_retried(fake, client):
    fake.fail("run", 503)

    with pytest.raises(EndpointUnavailable) as caught:
        client.synthesize("Hello world.")

    assert caught.value.status_code == 503
    assert fake.calls["POST run"] == 1


def test_status_polling_is_retried_on_503_and_read_timeouts(fake, client, sleeps):
    fake.fail("status", 503, Reached(httpx.ReadTimeout), (502, {"Retry-After": "1"}))

    result = client.synthesize("Hello world.")

    assert result.audio
    assert fake.calls["POST run"] == 1
    assert fake.calls["GET status"] >= 4
    assert 1.0 in sleeps


def test_status_failing_past_the_retries_cancels_the_job(fake, client):
    fake.fail("status", *([503] * 10))

    with pytest.raises(EndpointUnavailable):
        client.synthesize("Hello world.")

    assert fake.calls["POST cancel"] == 1
    assert fake.jobs["job-1"].status == "CANCELLED"


def test_cancel_is_retried_because_it_is_idempotent(fake, make_client):
    fake.never_finish = True
    client = make_client(sleep=time.sleep)
    fake.fail("cancel", httpx.ReadTimeout)

    with pytest.raises(JobTimedOut) as caught:
        client.synthesize("Hello world.", deadline_s=0.3)

    assert caught.value.cancelled
    assert len([r for r in fake.requests if "/cancel/" in r.url.path]) == 2


def test_deadline_cancels_the_job(fake, make_client):
    fake.never_finish = True
    client = make_client(sleep=time.sleep)

    with pytest.raises(JobTimedOut) as caught:
        client.synthesize("Hello world.", deadline_s=0.3)

    assert caught.value.cancelled
    assert caught.value.job_id == "job-1"
    assert fake.calls["POST cancel"] == 1
    assert fake.calls["POST run"] == 1
    assert fake.jobs["job-1"].status == "CANCELLED"


def test_the_policy_carries_the_deadline(fake, client):
    client.synthesize("Hello world.", deadline_s=42)

    body = next(r for r in fake.requests if r.url.path.endswith("/run"))
    policy = httpx.Response(200, content=body.content).json()["policy"]
    assert 5_000 <= policy["executionTimeout"] <= 42_000
    assert policy["ttl"] > policy["executionTimeout"]


def test_401_is_not_retried_and_names_the_fix_without_the_key(fake, make_client):
    client = make_client()
    fake.fail("run", 401)

    with pytest.raises(AuthenticationError) as caught:
        client.synthesize("Hello world.")

    assert fake.posts == 1
    assert "RUNPOD_API_KEY" in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_every_call_of_a_job_carries_the_request_id(fake, client):
    client.synthesize("Hello world.", request_id="req-corr-1")

    run, *polls = [r for r in fake.requests if "/run" in r.url.path or "/status/" in r.url.path]
    assert run.headers["X-Request-ID"] == "req-corr-1"
    assert fake.job_inputs[0]["request_id"] == "req-corr-1"
    assert polls and all(p.headers["X-Request-ID"] == "req-corr-1" for p in polls)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(httpx.Headers({"retry-after": when})) <= 31
