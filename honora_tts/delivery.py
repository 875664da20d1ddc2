"""How encoded audio leaves the worker: inline as base64, or uploaded to the output bucket and
sent as a URL (RunPod keeps results in its own store; big base64 bodies slow every poll)."""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import SecretStr

from honora_tts.audio import OUTPUT_FORMATS
from honora_tts.protocol import AudioPayload, ErrorCode, OutputSpec, WorkerError
from honora_tts.settings import WorkerSettings

#: Encoded audio above this size goes out as a URL when ``delivery`` is ``auto`` and an output
#: bucket is configured.
DEFAULT_URL_DELIVERY_BYTES: int = WorkerSettings.model_fields["url_delivery_bytes"].default

BUCKET_ENV = tuple(WorkerSettings.env_names()[name] for name in (
    "bucket_endpoint_url", "bucket_access_key_id", "bucket_secret_access_key", "bucket_name"))


class OutputBucket(Protocol):
    """Where URL-delivered audio is uploaded (:class:`~honora_tts.voices.S3VoiceStore`)."""

    def put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key``; return a URL the client can fetch."""
        ...


@functools.lru_cache(maxsize=4)
def _bucket_for(*values: str) -> OutputBucket | None:
    """One boto3 client per bucket setting."""
    from honora_tts.voices.s3_store import S3VoiceStore

    return S3VoiceStore.from_runpod_bucket_env(dict(zip(BUCKET_ENV, values, strict=True)))


def _no_bucket() -> OutputBucket | None:
    return None


def output_bucket_for(settings: WorkerSettings) -> Callable[[], OutputBucket | None]:
    """The output bucket RunPod's upload helper would use (``BUCKET_*`` of ``settings``),
    made on first use; None when none is configured."""
    def secret(value: SecretStr | None) -> str:
        return value.get_secret_value() if value is not None else ""

    values = (settings.bucket_endpoint_url or "", secret(settings.bucket_access_key_id),
              secret(settings.bucket_secret_access_key), settings.bucket_name or "")
    return functools.partial(_bucket_for, *values)


@dataclass(frozen=True)
class AudioDelivery:
    """Turns encoded audio into the response's :class:`AudioPayload`."""

    output_bucket: Callable[[], OutputBucket | None] = _no_bucket
    url_delivery_bytes: int = DEFAULT_URL_DELIVERY_BYTES

    @classmethod
    def for_settings(cls, settings: WorkerSettings) -> AudioDelivery:
        """Delivery as the worker's settings configure it (bucket, size threshold)."""
        return cls(output_bucket_for(settings), settings.url_delivery_bytes)

    def payload(
        self, data: bytes, duration_s: float, output: OutputSpec
    ) -> AudioPayload:
        """Base64, or (``delivery`` ``url``, or ``auto`` above :attr:`url_delivery_bytes` with
        a bucket) uploaded under ``outputs/{content sha256}.{format}``."""
        sha = hashlib.sha256(data).hexdigest()

        def described(
            delivery: Literal["base64", "url"], *, inline: str | None = None,
            url: str | None = None,
        ) -> AudioPayload:
            return AudioPayload(
                format=output.format, sample_rate=output.sample_rate,
                duration_s=round(duration_s, 4), bytes=len(data), sha256=sha,
                delivery=delivery, base64=inline, url=url,
            )

        bucket = None
        if output.delivery == "url" or (
            output.delivery == "auto" and len(data) > self.url_delivery_bytes
        ):
            bucket = self.output_bucket()
            if bucket is None and output.delivery == "url":
                raise WorkerError(
                    ErrorCode.OUTPUT_UPLOAD_FAILED,
                    "delivery=url needs an output bucket: set BUCKET_ENDPOINT_URL, "
                    "BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint",
                    field="output.delivery",
                )
        if bucket is None:
            return described("base64", inline=base64.b64encode(data).decode("ascii"))
        # The worker names the object by its content, never by the caller's request_id: no
        # caller can place it elsewhere, and a repeat can only rewrite the same bytes.
        key = f"outputs/{sha}.{output.format}"
        try:
            url = bucket.put_bytes(key, data, OUTPUT_FORMATS[output.format].media_type)
        except Exception as exc:
            raise WorkerError(
                ErrorCode.OUTPUT_UPLOAD_FAILED, f"could not upload the audio: {type(exc).__name__}"
            ) from exc
        return described("url", url=url)
