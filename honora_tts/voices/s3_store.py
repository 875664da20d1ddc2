"""A voice store in any S3-compatible bucket (AWS S3, R2, MinIO, DigitalOcean Spaces, ...).

boto3 with SigV4; ``head_object`` before ``put_object`` so a voice is uploaded once; presigned
GET URLs valid for ``url_ttl_s``. :meth:`S3VoiceStore.put_bytes` is the generic upload the
worker reuses to deliver large output audio as a URL, configured by RunPod's ``rp_upload``
variables through :meth:`S3VoiceStore.from_runpod_bucket_env`.

Tested against a real S3-protocol server: moto in server mode on 127.0.0.1 (including its IAM
signature check for the wrong-credentials case).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from honora_tts.files import file_sha256
from honora_tts.voices.stores import (
    StoredVoice,
    VoiceStoreError,
    content_key,
    content_type_for,
)
from honora_tts.voices.url_safety import describe_url

logger = logging.getLogger(__name__)

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_AUTH_CODES = frozenset({
    "403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "ExpiredToken", "InvalidClientTokenId", "Forbidden", "AuthorizationHeaderMalformed",
})  # fmt: skip
_CREDENTIAL_VARS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
_ENDPOINT_VARS = "HONORA_S3_ENDPOINT_URL"
_BUCKET_VARS = "HONORA_S3_BUCKET"
_RUNPOD_CREDENTIAL_VARS = "BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY"


def region_from_endpoint_url(endpoint_url: str) -> str | None:
    """The region in an S3 endpoint URL, the way RunPod's ``rp_upload`` reads it: the label
    after ``.s3.`` (AWS, Backblaze) or before ``.digitaloceanspaces.com``."""
    if ".s3." in endpoint_url:
        return endpoint_url.split(".s3.")[1].split(".")[0]
    if urlparse(endpoint_url).netloc.endswith(".digitaloceanspaces.com"):
        return endpoint_url.split(".")[1].split(".digitaloceanspaces.com")[0]
    return None


class S3VoiceStore:
    """Voices in ``s3://{bucket}/{prefix}<sha256><suffix>``, fetched through presigned URLs.

    Credentials default to boto3's own chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    profiles, instance roles). ``heads`` and ``puts`` count the calls made. The secret key is
    handed to boto3 and kept nowhere else.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
        prefix: str = "voices/",
        url_ttl_s: int = 3600,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self.url_ttl_s = url_ttl_s
        self.heads = 0
        self.puts = 0
        self._credential_vars = _CREDENTIAL_VARS
        self._endpoint_vars = _ENDPOINT_VARS
        self._bucket_vars = _BUCKET_VARS
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def __repr__(self) -> str:
        where = describe_url(self.endpoint_url) if self.endpoint_url else "aws"
        return f"S3VoiceStore(bucket={self.bucket!r}, endpoint={where!r}, prefix={self.prefix!r})"

    @classmethod
    def from_runpod_bucket_env(cls, env: Mapping[str, str]) -> S3VoiceStore | None:
        """The bucket RunPod's ``rp_upload`` would use, or None when it is not configured.

        Reads ``BUCKET_ENDPOINT_URL``, ``BUCKET_ACCESS_KEY_ID`` and ``BUCKET_SECRET_ACCESS_KEY``
        and follows ``rp_upload``: the region comes from the endpoint URL
        (:func:`region_from_endpoint_url`) and the bucket name is not derived from the URL but
        passed separately, defaulting to the month (``time.strftime("%m-%y")``). With
        RunPod's recommended virtual-hosted endpoint (``https://<bucket>.s3.<region>...``)
        boto3 sends path-style requests, so that name becomes the first path segment: a key
        prefix inside the endpoint's bucket. ``BUCKET_NAME`` overrides it (the ``bucketName``
        of ``rp_upload``'s credential dict). Keys are written exactly as given to
        :meth:`put_bytes` (no prefix).
        """
        endpoint = (env.get("BUCKET_ENDPOINT_URL") or "").strip()
        access_key_id = (env.get("BUCKET_ACCESS_KEY_ID") or "").strip()
        secret = (env.get("BUCKET_SECRET_ACCESS_KEY") or "").strip()
        if not (endpoint and access_key_id and secret):
            return None
        store = cls(
            (env.get("BUCKET_NAME") or "").strip() or time.strftime("%m-%y"),
            endpoint_url=endpoint,
            access_key_id=access_key_id,
            secret_access_key=secret,
            region=region_from_endpoint_url(endpoint),
            prefix="",
        )
        store._credential_vars = _RUNPOD_CREDENTIAL_VARS
        store._endpoint_vars = "BUCKET_ENDPOINT_URL"
        store._bucket_vars = "BUCKET_NAME"
        return store

    def upload(self, path: Path) -> StoredVoice:
        """Upload ``path`` unless ``{prefix}<sha256><suffix>`` already exists."""
        path = Path(path)
        sha = file_sha256(path)
        key = content_key(sha, path.suffix, self.prefix)
        present = self._exists(key)
        if not present:
            with open(path, "rb") as body:
                self._put(key, body, content_type_for(path.suffix), sha)
        logger.info("voice %s in s3 bucket %s (%s)", key, self.bucket,
                    "already there" if present else "uploaded")
        return StoredVoice(url=self.presigned_url(key), sha256=sha, key=key, uploaded=not present)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` at ``key`` (overwriting) and return a presigned GET URL for it."""
        self._put(key, data, content_type, None)
        return self.presigned_url(key)

    def presigned_url(self, key: str) -> str:
        """A GET URL for ``key`` valid for ``url_ttl_s`` seconds (signed locally)."""
        try:
            return str(self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.url_ttl_s,
            ))
        except BotoCoreError as exc:
            raise self._error(exc, f"signing a URL for {key}") from exc

    def _exists(self, key: str) -> bool:
        self.heads += 1
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                return False
            raise self._error(exc, f"checking for {key}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"checking for {key}") from exc
        return True

    def _put(self, key: str, body: object, content_type: str, sha: str | None) -> None:
        self.puts += 1
        extra = {"Metadata": {"sha256": sha}} if sha else {}
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **extra
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"uploading {key}") from exc

    def _error(self, exc: Exception, action: str) -> VoiceStoreError:
        where = f"bucket {self.bucket!r} at {self._endpoint_name()}"
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _AUTH_CODES or status in (401, 403):
                return VoiceStoreError(
                    f"S3 store refused the credentials ({code}) while {action} in {where}: "
                    f"check {self._credential_vars} and that they may access the bucket"
                )
            if code == "NoSuchBucket":
                return VoiceStoreError(
                    f"S3 {where} does not exist: check {self._bucket_vars}"
                )
            return VoiceStoreError(
                f"S3 store error {code} (HTTP {status}) while {action} in {where}"
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return VoiceStoreError(
                f"no S3 credentials found while {action} in {where}: set {self._credential_vars}"
            )
        if isinstance(exc, BotoConnectionError):
            return VoiceStoreError(
                f"cannot reach the S3 endpoint {self._endpoint_name()} while {action} "
                f"({type(exc).__name__}): check {self._endpoint_vars} and the network"
            )
        return VoiceStoreError(f"S3 store failed while {action} in {where}: {type(exc).__name__}")

    def _endpoint_name(self) -> str:
        return describe_url(self.endpoint_url).rstrip("/") if self.endpoint_url else "AWS S3"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
