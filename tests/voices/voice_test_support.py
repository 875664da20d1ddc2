"""Helpers for the voice tests: generated audio, a scriptable HTTP server on 127.0.0.1 that counts
requests, a closed port, a secret-leak check and the loader for ``tests/fixtures`` modules."""

from __future__ import annotations

import importlib.util
import io
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import numpy as np
import soundfile as sf

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"


# ---------------------------------------------------------------------------- audio


def voice_bytes(
    seconds: float = 2.0,
    sample_rate: int = 16_000,
    *,
    amplitude: float = 0.3,
    pitch_hz: float = 180.0,
    fmt: str = "WAV",
) -> bytes:
    """A voiced test signal: a pitch with harmonics and a syllable-rate envelope."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * pitch_hz * k * t) / k for k in (1, 2, 3, 4))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)
    signal = (amplitude * tone * envelope / 2.1).astype("float32")
    buffer = io.BytesIO()
    sf.write(buffer, signal, sample_rate, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


def silent_wav(seconds: float = 2.0, sample_rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * sample_rate), "float32"), sample_rate,
             format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def flac_claiming_hours(hours: float = 2.0) -> bytes:
    """A 2 s FLAC whose STREAMINFO claims ``hours`` of audio (a lying header, a few KB)."""
    data = bytearray(voice_bytes(fmt="FLAC"))
    assert data[:4] == b"fLaC"
    # STREAMINFO starts at byte 8; its 36-bit total-samples field ends the 64-bit word at 18.
    (word,) = struct.unpack_from(">Q", data, 18)
    sample_rate = word >> 44
    mask = (1 << 36) - 1
    struct.pack_into(">Q", data, 18, (word & ~mask) | int(sample_rate * 3600 * hours))
    return bytes(data)


def flac_hiding_length(
    declared_s: float = 2.0, holds_s: float = 60.0, sample_rate: int = 22_050, channels: int = 1
) -> bytes:
    """A FLAC holding ``holds_s`` of voice whose STREAMINFO declares ``declared_s``: libsndfile
    decodes only what the header declares, FFmpeg (what XTTS's ``load_audio`` uses) all of it."""
    data = bytearray(voice_bytes(holds_s, sample_rate, fmt="FLAC"))
    if channels > 1:
        signal, _ = sf.read(io.BytesIO(bytes(data)), dtype="int16")
        buffer = io.BytesIO()
        sf.write(buffer, np.repeat(signal[:, None], channels, axis=1), sample_rate,
                 format="FLAC", subtype="PCM_16")
        data = bytearray(buffer.getvalue())
    (word,) = struct.unpack_from(">Q", data, 18)
    mask = (1 << 36) - 1
    struct.pack_into(">Q", data, 18, (word & ~mask) | int(sample_rate * declared_s))
    return bytes(data)


def flac_dense(sample_rate: int = 655_350, channels: int = 8, seconds: int = 60) -> bytes:
    """A FLAC at ``sample_rate`` Hz on ``channels`` channels holding ``seconds`` of a constant
    level: a few hundred KB that decode to ``sample_rate * channels * seconds`` samples (60 s at
    655 350 Hz on 8 channels is 1.26 GB of float32), with an honest header."""
    buffer = io.BytesIO()
    block = np.full((sample_rate, channels), 1000, dtype=np.int16)
    with sf.SoundFile(buffer, "w", samplerate=sample_rate, channels=channels, format="FLAC",
                      subtype="PCM_16") as out:
        for _ in range(seconds):
            out.write(block)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- HTTP server

Route = Callable[[BaseHTTPRequestHandler], None]


class ScriptedServer:
    """A ThreadingHTTPServer on 127.0.0.1 whose paths run test-supplied routes.

    ``hits`` counts requests per path (query stripped); ``hosts`` records Host headers.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits[path] += 1
                    server.hosts.append(self.headers.get("Host", ""))
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # Route builders -----------------------------------------------------------------

    def file(self, path: str, data: bytes, *, delay_s: float = 0.0,
             content_type: str = "audio/wav") -> str:
        def route(handler: BaseHTTPRequestHandler) -> None:
            if delay_s:
                time.sleep(delay_s)
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

        self.routes[path] = route
        return self.url(path)

    def status(self, path: str, code: int) -> str:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(code)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route
        return self.url(path)

    def redirect(self, path: str, location: str, code: int = 302) -> str:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(code)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route
        return self.url(path)

    def declared_length(self, path: str, declared: int) -> str:
        """Claims ``declared`` bytes, sends 1 KB and closes."""
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(declared))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(b"\0" * 1024)
            handler.close_connection = True

        self.routes[path] = route
        return self.url(path)

    def endless(self, path: str, chunk: int = 65_536, limit: int = 64 * 2**20) -> str:
        """Streams zero bytes without a Content-Length, up to ``limit`` (the client hangs up
        first)."""
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Connection", "close")
            handler.end_headers()
            sent = 0
            while sent < limit:
                handler.wfile.write(b"\0" * chunk)
                sent += chunk
            handler.close_connection = True

        self.routes[path] = route
        return self.url(path)

    def drip(self, path: str, *, interval_s: float = 0.1, limit_s: float = 8.0) -> str:
        """One byte every ``interval_s`` (never idle long enough for a read timeout)."""
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", "1000000")
            handler.send_header("Connection", "close")
            handler.end_headers()
            stop = time.monotonic() + limit_s
            while time.monotonic() < stop:
                handler.wfile.write(b"R")
                handler.wfile.flush()
                time.sleep(interval_s)
            handler.close_connection = True

        self.routes[path] = route
        return self.url(path)

    def stall(self, path: str, *, limit_s: float = 5.0) -> str:
        """Sends headers, then nothing."""
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", "1000")
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.flush()
            time.sleep(limit_s)
            handler.close_connection = True

        self.routes[path] = route
        return self.url(path)


class RawServer:
    """A TCP server on 127.0.0.1 speaking bytes by hand, for what ``http.server`` cannot do:

    - ``header_drip``: answers a status line, then one header byte every ``interval_s``;
    - ``tls_drip``: after the ClientHello, a TLS record header announcing 16 KB, then one byte
      of it every ``interval_s`` (a handshake that never completes);
    - ``https``: TLS with ``tls_context`` (see :func:`tls_contexts`), then ``body`` as a file.

    Drips stop after ``limit_s``. ``cut`` is set when the client hung up while the server was
    still dripping; ``server_names`` records the TLS SNI names clients sent.
    """

    def __init__(self, mode: str, *, interval_s: float = 0.3, limit_s: float = 20.0,
                 body: bytes = b"", tls_context: Any = None) -> None:
        self.mode, self.interval_s, self.limit_s, self.body = mode, interval_s, limit_s, body
        self.tls_context = tls_context
        self.cut = threading.Event()
        self.server_names: list[str | None] = []
        if tls_context is not None:
            tls_context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/voice.wav", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.mode in ("https", "tls_drip") else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket, first: bytes) -> None:
        try:
            conn.sendall(first)
            stop = time.monotonic() + self.limit_s
            while time.monotonic() < stop:
                time.sleep(self.interval_s)
                conn.sendall(b"a")
        except OSError:
            self.cut.set()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.mode == "tls_drip":
                    conn.recv(65_536)  # the ClientHello
                    self._drip(conn, b"\x16\x03\x03\x40\x00")
                    return
                if self.mode == "https":
                    conn = self.tls_context.wrap_socket(conn, server_side=True)
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(65_536)
                    if not data:
                        return
                    request += data
                if self.mode == "header_drip":
                    self._drip(conn, b"HTTP/1.1 200 OK\r\nX-Drip: ")
                    return
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nConnection: close\r\n"
                    + f"Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body
                )
            except OSError:
                return


def tls_contexts(hostname: str) -> tuple[Any, Any]:
    """(server, client) SSL contexts: a self-signed certificate for ``hostname`` that only the
    client context trusts."""
    import datetime
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "cert.pem").write_bytes(cert_pem)
        Path(tmp, "key.pem").write_bytes(key_pem)
        server.load_cert_chain(Path(tmp, "cert.pem"), Path(tmp, "key.pem"))
    client = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
    return server, client


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- secrets


def assert_secret_absent(secret: str, exc: BaseException, log_text: str) -> None:
    """The secret is in no rendering of the exception (with its causes) nor in the logs."""
    renderings = {
        "str": str(exc),
        "repr": repr(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "logs": log_text,
    }
    for name, text in renderings.items():
        assert secret not in text, f"secret leaked in {name}"


def load_fixture_module(name: str) -> ModuleType:
    module_name = f"honora_test_fixtures_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, FIXTURES_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


