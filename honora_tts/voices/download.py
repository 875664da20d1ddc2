"""Downloading one voice file: pinned connections, manual redirects, size and time limits.

Each hop is vetted by :class:`~honora_tts.voices.url_safety.UrlPolicy` and then dialled at the
vetted IP address itself (the request goes to ``scheme://<ip>:<port>``; the original host name
travels in the ``Host`` header and, for https, as the TLS SNI name that the certificate is
checked against, through httpcore's ``sni_hostname`` request extension). A second DNS lookup
never happens, so DNS rebinding cannot redirect the connection. Requests go straight through an
``httpcore.ConnectionPool`` (no environment proxies, no keep-alive pooling across hosts, no
cookie jar, and no ``httpx`` request log line that would print signed query strings).

Limits: one wall-clock deadline (``total_timeout_s``) over the whole download, every hop's
connect, TLS handshake, headers and body included: each socket operation waits at most the
time left (:mod:`honora_tts.deadline_backend`), so a server that drips header or
handshake bytes is cut off at the deadline like one that drips the body; within it, connect and
read timeouts per operation. ``Content-Length`` is refused up front when over the cap, and the
body read stops as soon as it passes the cap. Content is requested with
``Accept-Encoding: identity`` and read raw, so nothing is decompressed in memory.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpcore
import httpx

from honora_tts.deadline_backend import DeadlineBackend, deadline_scope
from honora_tts.protocol import ErrorCode, WorkerError
from honora_tts.voices.url_safety import FIELD, UrlPolicy, VettedUrl, describe_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "honora-tts-voice-cache"


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds on one download (all hops together for the total deadline)."""

    max_bytes: int = 25 * 2**20
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    max_redirects: int = 5


@dataclass(frozen=True)
class Download:
    """A completed download: the body and the hops it took."""

    data: bytes
    final_url: str
    redirects: int


class VoiceDownloader:
    """Fetches voice files under a :class:`UrlPolicy` and :class:`DownloadLimits`.

    Thread-safe; ``bytes_received`` counts every body byte read, including downloads that were
    cut off.
    """

    def __init__(
        self,
        policy: UrlPolicy,
        limits: DownloadLimits,
        *,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.policy = policy
        self.limits = limits
        ssl_context = (
            verify if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )  # fmt: skip
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=64,
            max_keepalive_connections=0,
            retries=0,
            network_backend=DeadlineBackend(),
        )
        self._lock = threading.Lock()
        self.bytes_received = 0

    def close(self) -> None:
        self._pool.close()

    def download(self, url: str) -> Download:
        """Fetch ``url``; every failure is a :class:`WorkerError` for ``voice_url``."""
        deadline = time.monotonic() + self.limits.total_timeout_s
        with deadline_scope(deadline):
            return self._download(url, deadline)

    def _download(self, url: str, deadline: float) -> Download:
        current = url
        previous: VettedUrl | None = None
        for hop in range(self.limits.max_redirects + 1):
            vetted = self._vet_hop(current, previous)
            response = self._open(vetted, deadline)
            status = response.status
            headers = httpx.Headers(response.headers)
            try:
                if status in REDIRECT_STATUSES:
                    location = headers.get("location")
                    if not location:
                        raise _failed(
                            f"{vetted.display} answered HTTP {status} without a Location header"
                        )
                    previous, current = vetted, urljoin(current, location)
                    continue
                if status >= 400:
                    reason = response.extensions.get("reason_phrase", b"")
                    reason = reason.decode("ascii", "replace") if isinstance(reason, bytes) else ""
                    raise _failed(f"{vetted.display} answered HTTP {status} {reason}".rstrip())
                if not 200 <= status < 300:
                    raise _failed(f"{vetted.display} answered HTTP {status}, which is not a file")
                body = self._read_body(response, headers, vetted, deadline)
                return Download(body, current, hop)
            finally:
                response.close()
        raise _failed(
            f"{describe_url(url)} redirected more than {self.limits.max_redirects} times"
        )

    def _vet_hop(self, url: str, previous: VettedUrl | None) -> VettedUrl:
        if previous is None:
            return self.policy.vet(url)
        try:
            return self.policy.vet(url)
        except WorkerError as exc:
            raise WorkerError(
                exc.code, f"redirect from {previous.display}: {exc.message}", FIELD
            ) from None

    def _open(self, vetted: VettedUrl, deadline: float) -> httpcore.Response:
        """Send the GET to each vetted address in turn until one connects."""
        problem = "no address to connect to"
        for address in vetted.addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._too_slow(vetted)
            timeout = {
                "connect": min(self.limits.connect_timeout_s, remaining),
                "read": min(self.limits.read_timeout_s, remaining),
                "write": min(self.limits.read_timeout_s, remaining),
                "pool": min(self.limits.connect_timeout_s, remaining),
            }
            extensions: dict[str, object] = {"timeout": timeout}
            if vetted.scheme == "https":
                extensions["sni_hostname"] = vetted.host
            request = httpcore.Request(
                "GET",
                httpcore.URL(
                    scheme=vetted.scheme, host=address, port=vetted.port,
                    target=vetted.target.encode("ascii"),
                ),
                headers=[
                    (b"Host", vetted.host_header.encode("ascii")),
                    (b"Accept-Encoding", b"identity"),
                    (b"User-Agent", _USER_AGENT.encode("ascii")),
                ],
                extensions=extensions,
            )
            try:
                return self._pool.handle_request(request)
            except httpcore.ConnectTimeout:
                if time.monotonic() >= deadline - 0.05:
                    raise self._too_slow(vetted) from None
                problem = (
                    f"connection to {address} timed out after "
                    f"{self.limits.connect_timeout_s:g} s"
                )
            except httpcore.ConnectError as exc:
                problem = f"cannot connect to {address}: {exc}"
            except httpcore.TimeoutException:
                raise self._read_timeout(vetted, deadline) from None
            except (httpcore.NetworkError, httpcore.ProtocolError,
                    httpcore.UnsupportedProtocol) as exc:
                raise _failed(f"{vetted.display}: {type(exc).__name__}: {exc}") from None
        raise _failed(f"{vetted.display}: {problem}")

    def _read_body(
        self,
        response: httpcore.Response,
        headers: httpx.Headers,
        vetted: VettedUrl,
        deadline: float,
    ) -> bytes:
        cap = self.limits.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_large(f"{vetted.display} declares {int(declared)} bytes", cap)
        body = bytearray()
        try:
            for chunk in response.iter_stream():
                body += chunk
                with self._lock:
                    self.bytes_received += len(chunk)
                if len(body) > cap:
                    raise _too_large(f"{vetted.display} sent more than {cap} bytes", cap)
                if time.monotonic() > deadline:
                    raise self._too_slow(vetted)
        except httpcore.TimeoutException:
            raise self._read_timeout(vetted, deadline) from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _failed(
                f"{vetted.display}: download broke off after {len(body)} bytes "
                f"({type(exc).__name__}: {exc})"
            ) from None
        return bytes(body)

    def _too_slow(self, vetted: VettedUrl) -> WorkerError:
        return _failed(
            f"{vetted.display}: download took longer than {self.limits.total_timeout_s:g} s"
        )

    def _read_timeout(self, vetted: VettedUrl, deadline: float) -> WorkerError:
        # Read timeouts are shortened to the time left, so a late one means the deadline hit.
        if time.monotonic() >= deadline - 0.05:
            return self._too_slow(vetted)
        return _failed(
            f"{vetted.display}: no data for {self.limits.read_timeout_s:g} s (read timeout)"
        )


def _failed(message: str) -> WorkerError:
    return WorkerError(ErrorCode.VOICE_FETCH_FAILED, f"voice download failed: {message}", FIELD)


def _too_large(what: str, cap: int) -> WorkerError:
    return WorkerError(
        ErrorCode.VOICE_TOO_LARGE,
        f"voice file too large: {what}; the limit is {cap} bytes ({cap / 2**20:g} MiB)",
        FIELD,
    )
