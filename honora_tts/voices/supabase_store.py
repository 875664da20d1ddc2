"""A voice store in Supabase Storage, through the official ``storage3`` client.

Storage lives at ``{SUPABASE_URL}/storage/v1/``; requests carry the key both as
``Authorization: Bearer <key>`` and ``apikey`` (as supabase-py does). Redirects are followed
only within ``SUPABASE_URL``'s origin: every request is checked before it is sent, and one to
another scheme, host or port is refused (httpx strips ``Authorization`` on such a redirect,
but not ``apikey``), so the key never leaves for another host. Upload is ``exists``
(object info) then ``upload`` without upsert (a concurrent upload of the same content answers
"Duplicate", which counts as present). URLs are public (``public=True``; the bucket must be
public) or signed for ``url_ttl_s`` seconds.

Tested against a local imitation of the Storage endpoints that ``storage3`` calls
(``tests/fixtures/fake_supabase_storage.py``: upload, object info, sign, public and signed
object GETs, header and token checks), not against Supabase itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException

from honora_tts.files import file_sha256
from honora_tts.voices.stores import (
    StoredVoice,
    VoiceStoreError,
    content_key,
    content_type_for,
    scrub,
)
from honora_tts.voices.url_safety import describe_url

logger = logging.getLogger(__name__)

T = TypeVar("T")
_AUTH_CODES = frozenset({"Unauthorized", "InvalidJWT", "invalid_jwt", "AccessDenied"})
#: Content-addressed objects never change.
_CACHE_CONTROL = "31536000"


class SupabaseVoiceStore:
    """Voices in Supabase Storage bucket ``bucket`` under ``{prefix}<sha256><suffix>``.

    ``uploads`` counts objects written. The key is given to the storage client only; it never
    appears in ``repr()`` or in error messages.
    """

    name = "supabase"

    def __init__(
        self,
        url: str,
        key: str,
        *,
        bucket: str = "voices",
        public: bool = False,
        url_ttl_s: int = 3600,
        prefix: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.public = public
        self.url_ttl_s = url_ttl_s
        self.prefix = prefix
        self.uploads = 0
        self._key = key
        self._origin = _origin(httpx.URL(self.url))
        self._http = httpx.Client(
            timeout=httpx.Timeout(30.0, connect=5.0),
            follow_redirects=True,
            event_hooks={"request": [self._same_origin_only]},
        )
        self._storage = SyncStorageClient(
            f"{self.url}/storage/v1/",
            {"apiKey": key, "Authorization": f"Bearer {key}"},
            http_client=self._http,
        )

    def __repr__(self) -> str:
        return (
            f"SupabaseVoiceStore(url={describe_url(self.url).rstrip('/')!r}, "
            f"bucket={self.bucket!r}, public={self.public})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def upload(self, path: Path) -> StoredVoice:
        """Upload ``path`` unless its content-addressed key already exists."""
        path = Path(path)
        sha = file_sha256(path)
        key = content_key(sha, path.suffix, self.prefix)
        bucket = self._storage.from_(self.bucket)
        present = self._call(f"checking for {key}", lambda: bucket.exists(key))
        if not present:
            options: Any = {"content-type": content_type_for(path.suffix), "upsert": "false",
                            "cache-control": _CACHE_CONTROL}  # storage3's FileOptions
            try:
                self._call(f"uploading {key}", lambda: bucket.upload(key, path, options))
                self.uploads += 1
            except _Duplicate:
                present = True  # uploaded meanwhile by someone else: same content
        logger.info("voice %s in supabase bucket %s (%s)", key, self.bucket,
                    "already there" if present else "uploaded")
        return StoredVoice(url=self.url_for(key), sha256=sha, key=key, uploaded=not present)

    def url_for(self, key: str) -> str:
        """The public URL, or a URL signed for ``url_ttl_s`` seconds."""
        bucket = self._storage.from_(self.bucket)
        if self.public:
            return bucket.get_public_url(key)
        signed = self._call(
            f"signing a URL for {key}", lambda: bucket.create_signed_url(key, self.url_ttl_s)
        )
        url = signed.get("signedURL") or signed.get("signedUrl")
        if not url:
            raise VoiceStoreError(f"Supabase Storage returned no signed URL for {key}")
        return str(url)

    def _call(self, action: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except StorageApiError as exc:
            if str(exc.code) == "Duplicate" or str(exc.status) == "409":
                raise _Duplicate() from None
            raise self._api_error(exc, action) from None
        except httpx.TimeoutException as exc:
            raise VoiceStoreError(
                f"Supabase Storage at {self._host()} timed out while {action} "
                f"({type(exc).__name__}): check SUPABASE_URL and the network"
            ) from None
        except httpx.HTTPError as exc:
            raise VoiceStoreError(
                f"cannot reach Supabase Storage at {self._host()} while {action} "
                f"({type(exc).__name__}): check SUPABASE_URL and the network"
            ) from None
        except StorageException as exc:
            raise VoiceStoreError(
                f"Supabase Storage failed while {action}: {scrub(str(exc), self._key)}"
            ) from None

    def _api_error(self, exc: StorageApiError, action: str) -> VoiceStoreError:
        status, code = str(exc.status), str(exc.code)
        message = scrub(str(exc.message), self._key)[:200]
        if status in ("401", "403") or code in _AUTH_CODES:
            return VoiceStoreError(
                f"Supabase Storage at {self._host()} refused the key while {action} "
                f"({code}, {status}: {message}): check SUPABASE_KEY (a service-role key, or an "
                f"anon key whose policies allow bucket {self.bucket!r})"
            )
        if "bucket" in message.lower() and "not found" in message.lower():
            return VoiceStoreError(
                f"Supabase Storage bucket {self.bucket!r} not found at {self._host()}: create "
                "it or set HONORA_SUPABASE_BUCKET"
            )
        return VoiceStoreError(
            f"Supabase Storage error while {action} ({code}, {status}: {message}); "
            f"check SUPABASE_URL and bucket {self.bucket!r}"
        )

    def _host(self) -> str:
        return describe_url(self.url).rstrip("/")

    def _same_origin_only(self, request: httpx.Request) -> None:
        """Refuse, before it is sent with the key, any request (a redirect) that leaves
        ``SUPABASE_URL``'s origin."""
        if _origin(request.url) != self._origin:
            target = describe_url(str(request.url)).split("/", 1)[0]
            raise VoiceStoreError(
                f"Supabase Storage at {self._host()} redirected to {target}, another host; "
                "the key is not sent there. Check SUPABASE_URL (use the project's own "
                "https://<ref>.supabase.co address)"
            )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"https": 443, "http": 80}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class _Duplicate(Exception):
    """The object already exists (a concurrent upload of the same content)."""
