"""S3VoiceStore against a real S3-protocol server: moto in server mode on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import boto3
import httpx
import pytest
from moto.core.authorization import enable_iam_authentication
from voice_test_support import assert_secret_absent, closed_port, voice_bytes

from honora_tts.voices.s3_store import S3VoiceStore, region_from_endpoint_url
from honora_tts.voices.stores import VoiceStoreError

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY-do-not-leak"


def _store(endpoint: str, bucket: str, **kwargs: object) -> S3VoiceStore:
    kwargs.setdefault("access_key_id", "testing")
    kwargs.setdefault("secret_access_key", SECRET)
    kwargs.setdefault("region", "us-east-1")
    return S3VoiceStore(bucket, endpoint_url=endpoint, **kwargs)  # type: ignore[arg-type]


def _keys(endpoint: str, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_upload_once_then_reuse_and_fetch_through_the_presigned_url(
    moto_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    voice = tmp_path / "narrator.wav"
    voice.write_bytes(voice_bytes())
    sha = hashlib.sha256(voice.read_bytes()).hexdigest()
    store = _store(moto_endpoint, s3_bucket, url_ttl_s=600)

    first = store.upload(voice)
    second = store.upload(voice)

    assert first.key == second.key == f"voices/{sha}.wav"
    assert first.sha256 == sha
    assert (first.uploaded, second.uploaded) == (True, False)
    assert (store.heads, store.puts) == (2, 1)
    assert _keys(moto_endpoint, s3_bucket) == [f"voices/{sha}.wav"]
    assert "X-Amz-Signature=" in first.url and "X-Amz-Expires=600" in first.url
    response = httpx.get(second.url)
    assert response.status_code == 200
    assert response.content == voice.read_bytes()
    assert response.headers["content-type"] == "audio/wav"
    assert "X-Amz-Signature" not in repr(first)


def test_put_bytes_returns_a_working_presigned_url(moto_endpoint: str, s3_bucket: str) -> None:
    store = _store(moto_endpoint, s3_bucket)
    url = store.put_bytes("outputs/job-1/audio.flac", b"fLaC-bytes", "audio/flac")
    response = httpx.get(url)
    assert response.content == b"fLaC-bytes"
    assert response.headers["content-type"] == "audio/flac"
    assert store.puts == 1 and store.heads == 0
    assert httpx.get(url.split("?", 1)[0]).status_code == 403  # unsigned: refused


def test_from_runpod_bucket_env(moto_endpoint: str, s3_bucket: str) -> None:
    env = {
        "BUCKET_ENDPOINT_URL": moto_endpoint,
        "BUCKET_ACCESS_KEY_ID": "testing",
        "BUCKET_SECRET_ACCESS_KEY": SECRET,
        "BUCKET_NAME": s3_bucket,
    }
    store = S3VoiceStore.from_runpod_bucket_env(env)
    assert store is not None
    assert store.bucket == s3_bucket and store.prefix == ""
    url = store.put_bytes("job-7/out.wav", b"RIFF-bytes", "audio/wav")
    assert httpx.get(url).content == b"RIFF-bytes"
    assert _keys(moto_endpoint, s3_bucket) == ["job-7/out.wav"]


def test_from_runpod_bucket_env_defaults_and_absence() -> None:
    env = {
        "BUCKET_ENDPOINT_URL": "https://my-bucket.s3.eu-west-3.amazonaws.com",
        "BUCKET_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "BUCKET_SECRET_ACCESS_KEY": SECRET,
    }
    months = {time.strftime("%m-%y")}
    store = S3VoiceStore.from_runpod_bucket_env(env)
    months.add(time.strftime("%m-%y"))
    assert store is not None
    assert store.bucket in months  # rp_upload's default bucket name: the month
    assert store._client.meta.region_name == "eu-west-3"
    assert SECRET not in repr(store)
    for missing in env:
        assert S3VoiceStore.from_runpod_bucket_env(
            {k: v for k, v in env.items() if k != missing}
        ) is None


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("https://my-bucket.s3.us-west-2.amazonaws.com", "us-west-2"),
        ("https://bucket.s3.eu-central-003.backblazeb2.com", "eu-central-003"),
        ("https://my-bucket.nyc3.digitaloceanspaces.com", "nyc3"),
        ("https://abc123.r2.cloudflarestorage.com", None),
        ("http://127.0.0.1:9000", None),
    ],
)
def test_region_is_read_from_the_endpoint_like_rp_upload(
    endpoint: str, region: str | None
) -> None:
    assert region_from_endpoint_url(endpoint) == region


def test_wrong_credentials_name_the_variables_and_never_the_secret(
    moto_endpoint: str, s3_bucket: str, tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    voice = tmp_path / "v.wav"
    voice.write_bytes(voice_bytes())
    store = _store(moto_endpoint, s3_bucket, access_key_id="AKIANOTAUSER0000")
    with enable_iam_authentication(), pytest.raises(VoiceStoreError) as caught:
        store.upload(voice)
    message = str(caught.value)
    assert "refused the credentials" in message
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert_secret_absent(SECRET, caught.value, debug_logs.text)
    assert SECRET not in repr(store)


def test_store_down_says_what_to_check(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    voice = tmp_path / "v.wav"
    voice.write_bytes(voice_bytes())
    store = _store(f"http://127.0.0.1:{closed_port()}", "voices")
    with pytest.raises(VoiceStoreError) as caught:
        store.upload(voice)
    assert "cannot reach the S3 endpoint" in str(caught.value)
    assert "HONORA_S3_ENDPOINT_URL" in str(caught.value)
    assert_secret_absent(SECRET, caught.value, debug_logs.text)

    runpod = S3VoiceStore.from_runpod_bucket_env({
        "BUCKET_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        "BUCKET_ACCESS_KEY_ID": "k", "BUCKET_SECRET_ACCESS_KEY": SECRET, "BUCKET_NAME": "b",
    })
    assert runpod is not None
    with pytest.raises(VoiceStoreError, match="BUCKET_ENDPOINT_URL") as caught:
        runpod.put_bytes("k", b"x", "audio/wav")
    assert_secret_absent(SECRET, caught.value, debug_logs.text)


def test_missing_bucket_names_the_setting(moto_endpoint: str, tmp_path: Path) -> None:
    voice = tmp_path / "v.wav"
    voice.write_bytes(voice_bytes())
    store = _store(moto_endpoint, "no-such-bucket-here")
    with pytest.raises(VoiceStoreError) as caught:
        store.upload(voice)
    # HEAD on a missing bucket answers a bare 404, so the PUT reports NoSuchBucket.
    assert "does not exist" in str(caught.value) and "HONORA_S3_BUCKET" in str(caught.value)
