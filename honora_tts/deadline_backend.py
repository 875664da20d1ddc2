"""One wall-clock deadline over a whole HTTP exchange: connect, TLS, headers and body.

httpcore gives each socket operation its own timeout: a server that sends one header byte (or
one TLS handshake byte, or one body byte) just inside the read timeout, again and again, holds
a connection for ever. Here every connect, TLS handshake step, read and write waits at most the
smaller of its own timeout and the time left before the calling thread's deadline, so the whole
exchange ends by the deadline (plus at most one operation's scheduling slack).

The deadline is per thread: :func:`deadline_scope` sets it around one exchange, and every socket
operation the thread makes inside the block is held to it, on a new connection or a pooled one.
TLS runs over memory BIOs (as httpcore's TLS-in-TLS stream does) so that the handshake's reads
are ours to time, one by one.

Two users, one mechanism: the worker's voice download (:mod:`honora_tts.voices.download`, an
httpcore pool on :class:`DeadlineBackend`) and the endpoint client (:class:`DeadlineTransport`,
an httpx transport on the same backend, with the environment's HTTP(S) proxies).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpcore
import httpx

T = TypeVar("T")
_TLS_RECORD_BYTES = 16_384
_local = threading.local()


@contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Socket operations of this thread inside the block end by ``deadline``
    (``time.monotonic()`` seconds; None: only their own timeouts). Scopes nest: the inner
    deadline applies inside it, never later than the outer one."""
    previous = _current()
    if previous is not None and (deadline is None or previous < deadline):
        deadline = previous
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


def _current() -> float | None:
    """The calling thread's deadline, if it is inside a :func:`deadline_scope`."""
    return getattr(_local, "deadline", None)


class DeadlineBackend(httpcore.NetworkBackend):
    """Plain TCP (and TLS through :meth:`DeadlineStream.start_tls`) under the calling thread's
    :func:`deadline_scope`; without a scope, only the per-operation timeouts apply."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = _budget(timeout, httpcore.ConnectTimeout)
        source = None if local_address is None else (local_address, 0)
        try:
            sock = socket.create_connection((host, port), wait, source_address=source)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from None
        return DeadlineStream(sock)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not supported here")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    """One connection; TLS over memory BIOs once :meth:`start_tls` ran. Each operation is held
    to the deadline of the thread using the connection at that moment."""

    def __init__(
        self,
        sock: socket.socket,
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None = None,
    ) -> None:
        self._sock = sock
        self._tls = tls

    # ---------------------------------------------------------------- raw socket

    def _recv(self, max_bytes: int, timeout: float | None, expired: type[Exception]) -> bytes:
        self._sock.settimeout(_budget(timeout, expired))
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError:
            raise expired("no data before the timeout or the deadline") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from None

    def _send(self, data: bytes, timeout: float | None, expired: type[Exception]) -> None:
        if not data:
            return
        # sendall's timeout bounds the whole call (Python 3.5+).
        self._sock.settimeout(_budget(timeout, expired))
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise expired("sending did not finish before the deadline") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from None

    # ---------------------------------------------------------------- TLS

    def _tls_io(self, action: Callable[[], T], timeout: float | None,
                expired: type[Exception]) -> T:
        assert self._tls is not None
        _, incoming, outgoing = self._tls
        while True:
            try:
                result = action()
                wants_read = False
            except ssl.SSLWantReadError:
                wants_read = True
            self._send(outgoing.read(), timeout, expired)
            if not wants_read:
                return result
            data = self._recv(_TLS_RECORD_BYTES, timeout, expired)
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl_context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        stream = DeadlineStream(self._sock, (tls, incoming, outgoing))
        try:
            stream._tls_io(tls.do_handshake, timeout, httpcore.ConnectTimeout)
        except (ssl.SSLError, httpcore.ReadError, httpcore.WriteError) as exc:
            self.close()
            raise httpcore.ConnectError(f"TLS handshake failed: {exc}") from None
        except BaseException:
            self.close()
            raise
        return stream

    # ---------------------------------------------------------------- NetworkStream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._tls is None:
            return self._recv(max_bytes, timeout, httpcore.ReadTimeout)
        tls = self._tls[0]
        try:
            return self._tls_io(lambda: tls.read(max_bytes), timeout, httpcore.ReadTimeout)
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLError as exc:
            raise httpcore.ReadError(str(exc)) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._tls is None:
            self._send(buffer, timeout, httpcore.WriteTimeout)
            return
        tls = self._tls[0]
        view = memoryview(buffer)
        while view:
            part = view

            def write_part(part: memoryview = part) -> int:
                return tls.write(part)

            try:
                written = self._tls_io(write_part, timeout, httpcore.WriteTimeout)
            except ssl.SSLError as exc:
                raise httpcore.WriteError(str(exc)) from None
            view = view[written:]

    def close(self) -> None:
        self._sock.close()

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return None if self._tls is None else self._tls[0]
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


def _budget(timeout: float | None, expired: type[Exception]) -> float | None:
    """The wait for one operation: its own timeout, cut to the time left before the thread's
    deadline; raises ``expired`` when no time is left."""
    deadline = _current()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the deadline passed")
    return left if timeout is None else min(timeout, left)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would not block (data or EOF waiting): a pooled connection that is
    readable while idle was closed by the server."""
    if sock.fileno() < 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


# ------------------------------------------------------------------------ httpx transport

#: httpcore's exceptions as httpx raises them (most specific first).
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise _httpx_error(exc) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError,
            httpcore.UnsupportedProtocol) as exc:
        raise _httpx_error(exc) from exc


def _httpx_error(exc: Exception) -> httpx.TransportError:
    for core, mapped in _HTTPX_ERRORS:
        if isinstance(exc, core):
            return mapped(str(exc))
    return httpx.TransportError(str(exc))  # pragma: no cover - every httpcore error is mapped


class _Body(httpx.SyncByteStream):
    """A response body whose reads raise httpx's exceptions, as httpx's own transport does."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


#: httpx's own pool limits.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport whose connections run on :class:`DeadlineBackend`: inside a
    :func:`deadline_scope`, a request and the reading of its body end by the scope's deadline
    however slowly the server answers. Outside one, it behaves as httpx's own transport.

    HTTP(S) proxies from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``, as :func:`urllib.request.getproxies` reads them, the way httpx's default
    does) are used; a SOCKS proxy is refused by name (httpx needs an extra for it too).
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = _LIMITS,
        proxies: dict[str, str] | None = None,
    ) -> None:
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(
            verify=verify)
        self._limits = limits
        self._backend = DeadlineBackend()
        self._proxies = {k: v for k, v in (
            urllib.request.getproxies() if proxies is None else proxies).items()
            if k in ("http", "https", "all", "no")}
        for scheme, url in self._proxies.items():
            if scheme != "no" and not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"the {scheme.upper()}_PROXY proxy {url!r} is not an http(s) proxy; this "
                    "client reaches endpoints directly or through an HTTP proxy only"
                )
        self._lock = threading.Lock()
        self._pools: dict[str | None, httpcore.ConnectionPool] = {}

    def _proxy_for(self, url: httpx.URL) -> str | None:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if proxy is None:
            return None
        bypass = self._proxies.get("no", "")
        if bypass and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            url.host, {"no": bypass}
        ):
            return None
        return proxy

    def _pool(self, proxy: str | None) -> httpcore.ConnectionPool:
        with self._lock:
            pool = self._pools.get(proxy)
            if pool is None:
                common: dict[str, Any] = {
                    "ssl_context": self._ssl,
                    "max_connections": self._limits.max_connections,
                    "max_keepalive_connections": self._limits.max_keepalive_connections,
                    "keepalive_expiry": self._limits.keepalive_expiry,
                    "network_backend": self._backend,
                }
                if proxy is None:
                    pool = httpcore.ConnectionPool(**common)
                else:
                    url = httpx.URL(proxy)
                    auth = (url.username, url.password) if url.username else None
                    pool = httpcore.HTTPProxy(
                        proxy_url=str(url.copy_with(username=None, password=None)),
                        proxy_auth=auth, **common,
                    )
                self._pools[proxy] = pool
            return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme, host=request.url.raw_host,
                port=request.url.port, target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            answer = self._pool(self._proxy_for(request.url)).handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
