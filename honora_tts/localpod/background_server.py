"""An ASGI app served by uvicorn on 127.0.0.1 in a background thread with its own event loop:
what both localpods (the queue endpoint and the load balancer) run their HTTP side on."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvicorn

HOST = "127.0.0.1"
T = TypeVar("T")


class ServerStartError(RuntimeError):
    """The server could not listen or did not start; the message says why."""


class BackgroundServer:
    """An app on ``HOST:port`` (0: a free port) in a daemon thread named ``name``:
    :meth:`listen` first (the port is then known), then :meth:`start` with the app."""

    def __init__(self, *, port: int = 0, name: str = "localpod") -> None:
        self._port = port
        self._name = name
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def listen(self) -> int:
        """Bind and listen; returns the port. Raises :class:`ServerStartError`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY. asyncio sets it only on sockets made with
        # proto=IPPROTO_TCP, which this one is not: without it every answer sent in two writes
        # (headers, body) waited ~40 ms for the peer's delayed ACK (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((HOST, self._port))
        except OSError as exc:
            sock.close()
            raise ServerStartError(f"cannot listen on {HOST}:{self._port}: {exc}") from exc
        sock.listen(2048)
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self.port

    def start(self, app: Any, timeout_s: float = 30.0) -> None:
        """Serve ``app`` on the listening socket. Raises :class:`ServerStartError`."""
        sock = self._sock
        if sock is None:
            raise ServerStartError(f"the {self._name} server must listen() before start()")
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2, timeout_keep_alive=30, ws="none",
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, ready), name=self._name,
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or not self._server.started:
            self.stop()
            raise ServerStartError(f"the {self._name} server did not start")

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        assert self._server is not None
        server = self._server

        async def main() -> None:
            serving = asyncio.ensure_future(server.serve(sockets=[sock]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            ready.set()
            await serving

        try:
            loop.run_until_complete(main())
        finally:
            ready.set()
            loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        """Run ``coroutine`` on the server's loop and return its result."""
        if self.loop is None or not self.running:
            coroutine.close()
            raise ServerStartError(f"the {self._name} server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout_s)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the server's loop (where its state lives) and return its result."""
        async def call() -> T:
            return fn(*args, **kwargs)

        return self.run(call())

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._thread = None
