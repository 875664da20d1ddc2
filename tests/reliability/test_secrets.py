"""Secrets: the endpoint API key and the storage keys never appear in logs (client, localpod,
worker processes), exceptions, responses, version records or notebook outputs.

A pod runs with a marked API key; its worker holds marked storage keys (RunPod's output bucket
on a moto S3 server, AWS and Supabase keys) and serves real jobs: synthesis delivered through
the bucket, a voice fetched through a URL with a signed token, failures, health probes. Then
everything those produced is scanned for the marks, and the deploy-verification notebook is
run against the pod (key in the kernel's environment, as ``make verify`` does) and its
executed file and every artifact it wrote are scanned too.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from reliability_support import TINY, PodDriver, ScriptedServer, record, voice_bytes

from honora_tts.client import (
    AuthenticationError,
    EndpointClient,
    HonoraClientError,
    JobFailed,
)
from honora_tts.localpod import LocalPod
from honora_tts.qa import notebook_runner
from honora_tts.version import version_record

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

API_KEY = f"rpa_RELIABILITY{secrets.token_hex(12).upper()}"
STORAGE = {
    "BUCKET_SECRET_ACCESS_KEY": f"bucketsecret{secrets.token_hex(12)}",
    "AWS_SECRET_ACCESS_KEY": f"awssecret{secrets.token_hex(12)}",
    "SUPABASE_KEY": f"supabasekey{secrets.token_hex(12)}",
}
SIGNED_TOKEN = f"sig{secrets.token_hex(16)}"
SECRETS = {"RUNPOD_API_KEY": API_KEY, **STORAGE, "signed URL token": SIGNED_TOKEN}
BUCKET = "honora-outputs"
#: What the deploy-verification notebook runs with in CI (tests/notebooks uses the same).
NOTEBOOK_PARAMETERS = {"probes": 4, "parallel": 4, "max_new_tokens": 8, "tiny_text": "Hi.",
                       "voice_text": "A short test.", "stress_text": "Stress."}
SCANNED: dict[str, int] = {}
LEAKS: list[str] = []


def _assert_clean(where: str, text: str) -> None:
    found = [name for name, value in SECRETS.items() if value in text]
    LEAKS.extend(f"{name} in {where}" for name in found)
    SCANNED[where] = SCANNED.get(where, 0) + len(text)
    assert not found, f"{', '.join(found)} leaked in {where}"


@pytest.fixture(scope="module")
def bucket_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="AKIARELIABILITY",
        aws_secret_access_key=STORAGE["BUCKET_SECRET_ACCESS_KEY"], region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def pod(bucket_endpoint: str) -> Iterator[LocalPod]:
    env = {
        **STORAGE,
        "BUCKET_ENDPOINT_URL": bucket_endpoint,
        "BUCKET_ACCESS_KEY_ID": "AKIARELIABILITY",
        "BUCKET_NAME": BUCKET,
        "AWS_ACCESS_KEY_ID": "AKIARELIABILITY",
        "HONORA_LOG_LEVEL": "DEBUG",
    }
    with LocalPod(workers=1, api_key=API_KEY, worker_env=env) as pod:
        yield pod
    record("secrets", secrets_scanned=sorted(SECRETS), characters_scanned=SCANNED,
           leaks=len(LEAKS), leaked=LEAKS)


@pytest.fixture(scope="module")
def voices() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def _exception_text(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def test_secrets_stay_out_of_logs_exceptions_responses_and_versions(
    pod, voices, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[Any] = []
    errors: list[BaseException] = []
    voice = voices.file("/signed.wav", voice_bytes(2.0, 16_000, pitch_hz=175))
    signed = f"{voice}?X-Amz-Signature={SIGNED_TOKEN}&token={SIGNED_TOKEN}"

    with EndpointClient(pod.endpoint_id, API_KEY, pod.base_url) as client:
        answers.append(repr(client))
        result = client.synthesize("Through the bucket.", delivery="url", params=TINY)
        assert result.audio and result.version.handler_version >= 2
        answers.append(result.to_dict())
        answers.append(client.synthesize("Signed voice.", voice=signed, params=TINY).version)
        answers.append(client.health())
        answers.append(client.census(probes=2).to_dict())
        for job_input in ({"text": ""}, {"text": "Hi.", "voice_url": f"{voice}x?t={SIGNED_TOKEN}"},
                          {"action": "health"}):
            status = client.wait(client.run(job_input).id)
            answers.append(status.raw)
        with pytest.raises(JobFailed) as failed:
            client.synthesize("Hi.", voice=f"http://127.0.0.1:1/v.wav?sig={SIGNED_TOKEN}",
                              params=TINY)
        errors.append(failed.value)

    wrong_key = API_KEY[:-4] + "XXXX"
    with (
        EndpointClient(pod.endpoint_id, wrong_key, pod.base_url) as intruder,
        pytest.raises(AuthenticationError) as refused,
    ):
        intruder.synthesize("Hi.", params=TINY)
    errors.append(refused.value)
    assert wrong_key not in _exception_text(refused.value)

    with PodDriver(pod) as driver:
        for route in ("health", "localpod/workers", "localpod/jobs", "localpod/counters"):
            answers.append(driver.get(f"/{route}").json())

    for name, value in STORAGE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    answers.append(version_record().model_dump(mode="json"))

    _assert_clean("responses and version records", json.dumps(answers, default=repr))
    for exc in errors:
        assert isinstance(exc, HonoraClientError)
        _assert_clean("client exceptions", _exception_text(exc))
    assert "submitted" in caplog.text  # the client's own log lines were captured
    _assert_clean("client and localpod logs", caplog.text)
    for worker in pod.workers():
        log = Path(worker["log_path"]).read_text(encoding="utf-8", errors="replace")
        assert "Handler output" in log or "request" in log  # the log is the real one
        _assert_clean("worker logs", log)


def test_notebook_outputs_and_artifacts_hold_no_secret(pod, tmp_path) -> None:
    artifacts = tmp_path / "artifacts"
    executed = tmp_path / "01_deploy_verification.executed.ipynb"
    notebook_runner.run_notebook(
        "01_deploy_verification", executed,
        {"endpoint": pod.endpoint_id, "api_base": pod.base_url, **NOTEBOOK_PARAMETERS,
         "artifacts_dir": str(artifacts)},
        cwd=tmp_path, execution_timeout=300, env={"RUNPOD_API_KEY": API_KEY, **STORAGE},
    )
    summary = json.loads((artifacts / "summary.json").read_text())
    assert summary["verdict"] == "PASS", summary.get("reasons")
    _assert_clean("executed notebook", executed.read_text(encoding="utf-8"))
    written = [path for path in artifacts.rglob("*") if path.is_file()]
    assert written
    for path in written:
        _assert_clean("notebook artifacts", path.read_bytes().decode("utf-8", errors="replace"))
