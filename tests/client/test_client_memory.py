"""The client's memory is bounded: a compressed answer or audio download that inflates past the
cap is refused (ResponseTooLarge) without ever being held whole.

A real HTTP server on 127.0.0.1 (not a mock transport) sends the bodies gzip-encoded, so the
client's own decompression is what is tested. The bombs are 256 MiB of blanks in about 256 KB
of gzip; the default cap is 64 MiB.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from client_testing import version_dict, wav_bytes

from honora_tts.client import EndpointClient, ResponseTooLarge, RetryPolicy
from honora_tts.client._constants import MAX_RESPONSE_BYTES

BOMB_BYTES = 256 * 1024 * 1024
ENDPOINT = "ep-memory"
KEY = "rpa_MEMORYTESTKEY123456"


def gzip_bomb(prefix: bytes, suffix: bytes) -> bytes:
    """``prefix + b" " * BOMB_BYTES + suffix``, gzip-compressed without holding it inflated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    parts = [packer.compress(prefix)]
    parts += [packer.compress(block) for _ in range(BOMB_BYTES // len(block))]
    parts += [packer.compress(suffix), packer.flush()]
    return b"".join(parts)


class Routes:
    """What the server answers: path -> (status, body, gzip-encoded?). A body may be a function
    of the request id the last ``/run`` carried."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any, bool]] = {}
        self.hits: dict[str, int] = {}
        self.request_id: str | None = None

    def set(self, path: str, body: Any, *, gzipped: bool = False) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.routes[path] = (200, data, gzipped)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    status_prefix = b'{"id": "job-1", "status": "COMPLETED", "output": "'
    return {"json": gzip_bomb(status_prefix, b'"}'), "audio": gzip_bomb(b"RIFF", b"")}


@pytest.fixture
def server() -> Iterator[tuple[str, Routes]]:
    routes = Routes()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length)) if length else {}
            path = self.path.split("?")[0]
            routes.hits[path] = routes.hits.get(path, 0) + 1
            if path.endswith("/run"):
                routes.request_id = request["input"]["request_id"]
            status, body, gzipped = routes.routes.get(path, (404, b'{"error": "no"}', False))
            if callable(body):
                body = body(routes.request_id)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what these tests want

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def make_client(base: str) -> EndpointClient:
    return EndpointClient(ENDPOINT, KEY, f"{base}/v2", retry=RetryPolicy(max_attempts=2),
                          voice_store=object())


def peak_mib(call) -> tuple[BaseException | None, float]:
    """Run ``call`` under tracemalloc: (what it raised, peak MiB allocated meanwhile)."""
    tracemalloc.start()
    raised = None
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        raised = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return raised, peak / 2**20


def test_a_gzip_bomb_answer_is_refused_at_the_cap(server, bombs):
    base, routes = server
    routes.set(f"/v2/{ENDPOINT}/status/job-1", bombs["json"], gzipped=True)
    assert len(bombs["json"]) < 1_000_000  # about 256 KB on the wire
    with make_client(base) as client:
        raised, peak = peak_mib(lambda: client.status("job-1"))
    assert isinstance(raised, ResponseTooLarge), raised
    assert raised.limit == MAX_RESPONSE_BYTES
    assert f"{MAX_RESPONSE_BYTES:,}" in str(raised) and "max_response_bytes" in str(raised)
    assert raised.job_id == "job-1"
    assert peak < 1.25 * MAX_RESPONSE_BYTES / 2**20 + 8, f"peak {peak:.0f} MiB"
    assert routes.hits[f"/v2/{ENDPOINT}/status/job-1"] == 1  # not retried


def test_a_gzip_bomb_audio_download_is_refused_at_the_cap(server, bombs):
    base, routes = server
    routes.set("/audio/bomb.wav", bombs["audio"], gzipped=True)
    _finished_job(routes, f"{base}/audio/bomb.wav", b"what the worker claimed to send")
    with make_client(base) as client:
        raised, peak = peak_mib(lambda: client.synthesize("Hello."))
    assert isinstance(raised, ResponseTooLarge), raised
    assert "audio download" in str(raised)
    assert peak < 1.25 * MAX_RESPONSE_BYTES / 2**20 + 8, f"peak {peak:.0f} MiB"


def test_a_smaller_cap_refuses_a_large_honest_answer(server):
    base, routes = server
    routes.set(f"/v2/{ENDPOINT}/status/job-1",
               {"id": "job-1", "status": "COMPLETED", "output": "x" * 5000})
    with (
        EndpointClient(ENDPOINT, KEY, f"{base}/v2", max_response_bytes=4096) as client,
        pytest.raises(ResponseTooLarge, match="4,096"),
    ):
        client.status("job-1")


def test_gzip_answers_and_downloads_within_the_cap_are_read(server):
    base, routes = server
    audio = wav_bytes()
    routes.set("/audio/voice.wav", gzip.compress(audio), gzipped=True)
    _finished_job(routes, f"{base}/audio/voice.wav", audio, gzip_status=True)
    with make_client(base) as client:
        result = client.synthesize("Hello.")
    assert result.audio == audio and result.audio_sha256 == hashlib.sha256(audio).hexdigest()
    assert routes.hits["/audio/voice.wav"] == 1


def _finished_job(routes: Routes, url: str, audio: bytes, *, gzip_status: bool = False) -> None:
    """/run answers job-1, whose status is COMPLETED with its audio delivered at ``url``."""
    routes.set(f"/v2/{ENDPOINT}/run", {"id": "job-1", "status": "IN_QUEUE"})
    routes.set(f"/v2/{ENDPOINT}/cancel/job-1", {"id": "job-1", "status": "CANCELLED"})

    payload = {
        "format": "wav", "sample_rate": 24_000, "channels": 1, "duration_s": 0.5,
        "bytes": len(audio), "sha256": hashlib.sha256(audio).hexdigest(), "delivery": "url",
        "url": url,
    }

    def status(request_id: str | None) -> bytes:
        body = json.dumps({"id": "job-1", "status": "COMPLETED", "output": {
            "request_id": request_id, "status": "ok", "version": version_dict(),
            "audio": payload, "language": "en", "text_chars": 6, "pieces": 1,
        }}).encode()
        return gzip.compress(body) if gzip_status else body

    routes.set(f"/v2/{ENDPOINT}/status/job-1", status, gzipped=gzip_status)
