"""Issue 11 #8: the output object's key is derived by the worker, never from the caller's
``request_id``: URL delivery into a real S3-protocol bucket (moto) through the worker's
adapter."""

from __future__ import annotations

import hashlib

import pytest

from honora_tts.settings import WorkerSettings
from honora_tts.voices import VoiceCache
from honora_tts.worker import build_adapter
from honora_tts.worker.runpod_adapter import RunPodAdapter

SHORT = {"max_new_tokens": 24}
BUCKET = "issue-11-output-keys"


@pytest.fixture
def bucket():
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
        # moto keeps buckets per process: a bucket of this test's own, empty.
        s3.create_bucket(Bucket=BUCKET)
        yield s3, endpoint
    finally:
        server.stop()


@pytest.fixture
def adapter(bucket, tmp_path):
    """A worker whose output bucket is the moto one (``BUCKET_*`` settings)."""
    _, endpoint = bucket
    settings = WorkerSettings.from_env({
        "HONORA_XTTS_MODEL": "tiny", "BUCKET_ENDPOINT_URL": endpoint,
        "BUCKET_ACCESS_KEY_ID": "test", "BUCKET_SECRET_ACCESS_KEY": "test",
        "BUCKET_NAME": BUCKET,
    })
    with VoiceCache(tmp_path / "voice-cache") as voices:
        yield build_adapter(settings, voices=voices)


def _deliver(adapter: RunPodAdapter, text: str, request_id: str, seed: int, job_id: str) -> dict:
    answer = adapter.handle({"id": job_id, "input": {
        "text": text, "request_id": request_id, "output": {"delivery": "url"},
        "params": {**SHORT, "seed": seed},
    }})
    assert answer["status"] == "ok", answer.get("error")
    return answer["audio"]


def test_the_caller_cannot_choose_or_overwrite_the_output_object(bucket, adapter) -> None:
    """Before the fix the key was ``outputs/{request_id}/audio.wav``: ``../`` segments left the
    prefix, and a second job with the same request_id overwrote an object whose signed URL
    was already handed out."""
    import httpx

    s3, _ = bucket
    first = _deliver(adapter, "The first sentence.", "../../escaped", 1, "job-a")
    second = _deliver(adapter, "Another sentence, quite different.", "../../escaped", 2, "job-b")
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(keys) == sorted(f"outputs/{a['sha256']}.wav" for a in (first, second))
    assert not any(".." in key or "escaped" in key for key in keys)
    for audio in (first, second):  # each URL still serves its own audio
        body = httpx.get(audio["url"], timeout=10).content
        assert hashlib.sha256(body).hexdigest() == audio["sha256"]
