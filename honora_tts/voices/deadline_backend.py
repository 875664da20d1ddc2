"""An httpcore network backend that holds every socket operation to one wall-clock deadline.

httpcore gives each operation its own timeout: a server that sends one header byte (or one TLS
handshake byte) just inside the read timeout, again and again, holds a connection for ever.
Here each connect, TLS handshake step, read and write waits at most the smaller of its own
timeout and the time left before the deadline of the download that opened the connection, so
connect, TLS, headers and body together end by the deadline (plus at most one operation's
scheduling slack).

The deadline is per thread: :func:`deadline_scope` sets it around one download, and every
connection opened in that thread inside the scope carries it. TLS runs over memory BIOs (as
httpcore's TLS-in-TLS stream does) so that the handshake's reads are ours to time, one by one.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpcore

T = TypeVar("T")
_TLS_RECORD_BYTES = 16_384
_local = threading.local()


@contextmanager
def deadline_scope(deadline: float) -> Iterator[None]:
    """Connections opened by this thread inside the block end by ``deadline``
    (``time.monotonic()`` seconds)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


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
        deadline = getattr(_local, "deadline", None)
        wait = _budget(timeout, deadline, httpcore.ConnectTimeout)
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
        return DeadlineStream(sock, deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("voice downloads do not use unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    """One connection; TLS over memory BIOs once :meth:`start_tls` ran."""

    def __init__(
        self,
        sock: socket.socket,
        deadline: float | None,
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None = None,
    ) -> None:
        self._sock = sock
        self._deadline = deadline
        self._tls = tls

    # ---------------------------------------------------------------- raw socket

    def _recv(self, max_bytes: int, timeout: float | None, expired: type[Exception]) -> bytes:
        self._sock.settimeout(_budget(timeout, self._deadline, expired))
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError:
            raise expired("no data before the timeout or the download's deadline") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from None

    def _send(self, data: bytes, timeout: float | None, expired: type[Exception]) -> None:
        if not data:
            return
        # sendall's timeout bounds the whole call (Python 3.5+).
        self._sock.settimeout(_budget(timeout, self._deadline, expired))
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
        stream = DeadlineStream(self._sock, self._deadline, (tls, incoming, outgoing))
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


def _budget(timeout: float | None, deadline: float | None, expired: type[Exception]) -> float | None:
    """The wait for one operation: its own timeout, cut to the time left before ``deadline``;
    raises ``expired`` when no time is left."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the download's deadline passed")
    return left if timeout is None else min(timeout, left)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would not block (data or EOF waiting): a pooled connection that is
    readable while idle was closed by the server."""
    if sock.fileno() < 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
