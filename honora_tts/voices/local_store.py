"""A voice store that is a local directory served over HTTP (for localpod and local engines).

Files are stored as ``<sha256><suffix>`` and served by a ``ThreadingHTTPServer`` in a daemon
thread on 127.0.0.1 (port 0 picks a free port). The server answers GET and HEAD for
content-addressed names only, so nothing else in the directory tree can be reached. Workers
fetching from it need ``HONORA_ALLOW_PRIVATE_URLS=1`` (it is a loopback address). Tested against
real HTTP requests to the running server.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from honora_tts.files import file_sha256
from honora_tts.voices.stores import (
    StoredVoice,
    VoiceStoreError,
    content_key,
    content_type_for,
)

logger = logging.getLogger(__name__)

_SERVABLE_NAME = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,8})?$")


class LocalVoiceStore:
    """A directory of voices served at ``http://{host}:{port}/<key>``.

    Use as a context manager, or call :meth:`start` and :meth:`close`; :meth:`upload` starts the
    server when needed. ``uploads`` counts files written, ``requests_served`` files sent.
    """

    name = "local"

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).expanduser()
        self.host = host
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.uploads = 0
        self.requests_served = 0

    def __repr__(self) -> str:
        state = self.base_url if self._server is not None else "stopped"
        return f"LocalVoiceStore(root={str(self.root)!r}, {state})"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise VoiceStoreError("the local voice store is not started; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def start(self) -> None:
        """Create the directory and start serving it (idempotent)."""
        with self._lock:
            if self._server is not None:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                server = ThreadingHTTPServer(
                    (self.host, self._requested_port), _handler_for(self)
                )
            except OSError as exc:
                raise VoiceStoreError(
                    f"cannot serve the local voice store on {self.host}:{self._requested_port}"
                    f" ({exc.strerror or exc}); choose another port"
                ) from None
            server.daemon_threads = True
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"local-voice-store-{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        logger.info("local voice store %s serving %s", self.base_url, self.root)

    def close(self) -> None:
        """Stop serving; the files stay."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def upload(self, path: Path) -> StoredVoice:
        """Copy ``path`` into the store unless its content is already there."""
        path = Path(path)
        self.start()
        sha = file_sha256(path)
        key = content_key(sha, path.suffix)
        target = self.root / key
        uploaded = False
        if not (target.is_file() and file_sha256(target) == sha):
            temp = target.with_name(f".tmp-{uuid.uuid4().hex}{target.suffix}")
            try:
                shutil.copyfile(path, temp)
                temp.replace(target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            uploaded = True
            with self._lock:
                self.uploads += 1
        return StoredVoice(url=self.url_for(key), sha256=sha, key=key, uploaded=uploaded)

    def _file_for_request(self, request_path: str) -> Path | None:
        name = urlsplit(request_path).path.lstrip("/")
        if not _SERVABLE_NAME.match(name):
            return None
        candidate = self.root / name
        return candidate if candidate.is_file() else None

    def _count_served(self) -> None:
        with self._lock:
            self.requests_served += 1


def _handler_for(store: LocalVoiceStore) -> type[BaseHTTPRequestHandler]:
    class VoiceFileHandler(BaseHTTPRequestHandler):
        server_version = "honora-local-voice-store"

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def _answer(self, *, with_body: bool) -> None:
            path = store._file_for_request(self.path)
            if path is None:
                self.send_error(HTTPStatus.NOT_FOUND, "no such voice")
                return
            data = path.read_bytes()
            store._count_served()  # before the answer: a client that has it may read the count
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type_for(path.suffix))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("local voice store: " + format, *args)

    return VoiceFileHandler
