"""localpod's imitation of RunPod's load balancer: one base URL in front of HTTP workers.

What RunPod documents (serverless/load-balancing: overview, worker-affinity) and this does:

- Every path is the workers' own (``https://ENDPOINT_ID.api.runpod.ai/PATH``); requests need
  ``Authorization: Bearer <key>`` (401 ``{"error"}`` otherwise), which is not forwarded.
- Health: each worker's ``GET /ping`` is polled; 200 is healthy, 204 initializing, anything
  else (or no answer) unhealthy. Only healthy workers get requests.
- No healthy worker with room: the request is held up to ``hold_s`` (RunPod: 2 minutes), then
  ``400 {"error": "no workers available"}``.
- Worker affinity (``X-Runpod-Worker-Id``): ``<id>`` prefers that worker and falls back to any
  when it is gone, unhealthy or at capacity; ``strict <id>`` and ``strict-resume <id>`` use only
  that worker, waiting while it is busy or initializing (400 ``worker_timeout`` after
  ``hold_s``) and answering ``404 {"error": "affinity_worker_gone"}`` when it is not in the
  active set. Every answer names its worker in ``X-Runpod-Worker-Id``. (strict-resume resumes a
  scaled-down worker on RunPod; localpod never scales down, so it is strict.)
- Limits: request and response bodies of at most 30 MB (413 ``{"error"}`` for a request; a
  response that grows past it is cut off), processing of at most 5.5 minutes from the moment
  the worker has the request (524 ``{"error"}`` before the answer starts; cut off after).

Choices where RunPod documents none: "at capacity" means the worker already holds
``capacity`` requests (its ``HONORA_CONCURRENCY``); unpinned requests go to the
healthy worker with the fewest requests in flight (ties in turn); a worker whose connection
fails before answering gives 502 ``{"error": "worker_lost"}``; localpod's own routes live
under ``/localpod/`` (workers, counters, kill-worker) behind the same key.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from honora_tts.http_body import read_capped

log = logging.getLogger("honora_tts.localpod")

#: RunPod's limits for load-balancing endpoints.
MAX_BODY_BYTES = 30 * 1000 * 1000
PROCESSING_LIMIT_S = 5.5 * 60
HOLD_S = 120.0
WORKER_HEADER = "X-Runpod-Worker-Id"
#: Hop-by-hop headers (RFC 9110) and the ones the proxy sets itself.
_NOT_FORWARDED = {"host", "authorization", "connection", "keep-alive", "transfer-encoding",
                  "te", "trailer", "upgrade", "proxy-authorization", "content-length",
                  WORKER_HEADER.lower()}

WorkerHealth = Literal["initializing", "ready", "unhealthy", "dead"]


@dataclass
class Upstream:
    """One worker behind the balancer: where it listens and what it reported last."""

    id: str
    port: int
    health: WorkerHealth = "initializing"
    in_flight: int = 0
    served: int = 0
    ready_at: float | None = None
    pings: Counter[int] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def active(self) -> bool:
        """In RunPod's active worker set (alive, even when busy or initializing)."""
        return self.health != "dead"


@dataclass(frozen=True)
class Pin:
    """A request's ``X-Runpod-Worker-Id``: ``mode`` soft, strict or strict-resume."""

    worker_id: str
    mode: Literal["soft", "strict", "strict-resume"]

    @classmethod
    def parse(cls, header: str | None) -> Pin | None:
        value = (header or "").strip()
        if not value:
            return None
        head, _, rest = value.partition(" ")
        if head in ("strict", "strict-resume") and rest.strip():
            return cls(rest.strip(), head)  # type: ignore[arg-type]
        return cls(value, "soft")


class Refusal(Exception):
    """The balancer answers instead of a worker (status and RunPod's ``{"error"}``)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class Balancer:
    """Which worker takes a request. Lives on the server's event loop."""

    def __init__(self, *, capacity: int = 1, hold_s: float = HOLD_S) -> None:
        self.capacity = max(1, capacity)
        self.hold_s = hold_s
        self.upstreams: dict[str, Upstream] = {}
        self.counters: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._turn = 0

    def changed(self) -> None:
        """Wake the requests waiting for a worker (a state or a load changed)."""
        self._changed.set()

    def _free(self, upstream: Upstream) -> bool:
        return upstream.health == "ready" and upstream.in_flight < self.capacity

    def _pick(self, pin: Pin | None) -> Upstream | None | Literal["gone"]:
        if pin is not None:
            pinned = self.upstreams.get(pin.worker_id)
            if pin.mode != "soft":
                if pinned is None or not pinned.active:
                    return "gone"
                return pinned if self._free(pinned) else None
            if pinned is not None and self._free(pinned):
                self.counters["affinity_routed"] += 1
                return pinned
        free = [u for u in self.upstreams.values() if self._free(u)]
        if not free:
            return None
        least = min(u.in_flight for u in free)
        candidates = [u for u in free if u.in_flight == least]
        self._turn += 1
        chosen = candidates[self._turn % len(candidates)]
        if pin is not None:
            self.counters["affinity_fallbacks"] += 1
        return chosen

    async def acquire(self, pin: Pin | None) -> Upstream:
        """A worker for one request (its load counted until :meth:`release`); raises
        :class:`Refusal` as RunPod answers."""
        deadline = time.monotonic() + self.hold_s
        held = False
        while True:
            chosen = self._pick(pin)
            if chosen == "gone":
                self.counters["affinity_worker_gone"] += 1
                raise Refusal(404, "affinity_worker_gone")
            if isinstance(chosen, Upstream):
                chosen.in_flight += 1
                self.counters["held" if held else "routed_at_once"] += 1
                return chosen
            held = True
            left = deadline - time.monotonic()
            if left <= 0:
                strict = pin is not None and pin.mode != "soft"
                self.counters["worker_timeout" if strict else "no_workers"] += 1
                raise Refusal(400, "worker_timeout" if strict else "no workers available")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.5))
            except TimeoutError:
                pass

    def release(self, upstream: Upstream) -> None:
        upstream.in_flight -= 1
        upstream.served += 1
        self.changed()

    def view(self) -> list[dict[str, Any]]:
        return [{"id": u.id, "port": u.port, "health": u.health, "in_flight": u.in_flight,
                 "served": u.served} for u in self.upstreams.values()]


def _error(status: int, error: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers=headers or None)


def build_app(balancer: Balancer, api_key: str, *,
              kill_worker: Callable[[str | None], str] | None = None,
              max_body_bytes: int = MAX_BODY_BYTES,
              processing_limit_s: float = PROCESSING_LIMIT_S) -> FastAPI:
    """The balancer's ASGI app: localpod's own routes, then every other path proxied."""
    app = FastAPI(title="localpod load balancer", docs_url=None, redoc_url=None,
                  openapi_url=None)
    client = httpx.AsyncClient(timeout=httpx.Timeout(processing_limit_s, connect=5.0),
                               limits=httpx.Limits(max_connections=512,
                                                   max_keepalive_connections=64))

    def authorized(request: Request) -> bool:
        supplied = request.headers.get("authorization", "")
        key = supplied[7:] if supplied.lower().startswith("bearer ") else supplied
        ok = hmac.compare_digest(key.strip().encode(), api_key.encode())
        if not ok:
            balancer.counters["unauthorized"] += 1
        return ok

    @app.get("/localpod/workers")
    async def workers(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized: missing or wrong API key")
        return JSONResponse(balancer.view())

    @app.get("/localpod/counters")
    async def counters(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized: missing or wrong API key")
        return JSONResponse(dict(balancer.counters))

    @app.post("/localpod/kill-worker")
    async def kill(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized: missing or wrong API key")
        if kill_worker is None:
            return _error(404, "this balancer cannot kill workers")
        wanted = request.query_params.get("worker_id")
        try:
            return JSONResponse({"killed": kill_worker(wanted)})
        except LookupError as exc:
            return _error(404, str(exc))

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    async def proxy(request: Request, path: str) -> Response:
        balancer.counters["requests"] += 1
        if not authorized(request):
            return _error(401, "Unauthorized: missing or wrong API key")
        body = await read_capped(request, max_body_bytes)
        if isinstance(body, int):
            balancer.counters["request_too_large"] += 1
            return _error(413, f"request body is {body} bytes; a load-balancing endpoint "
                          f"accepts at most {max_body_bytes} bytes (30 MB)")
        try:
            upstream = await balancer.acquire(Pin.parse(request.headers.get(WORKER_HEADER)))
        except Refusal as refusal:
            return _error(refusal.status, refusal.error)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        url = f"{upstream.url}/{path}"
        if request.url.query:
            url = f"{url}?{request.url.query}"
        deadline = time.monotonic() + processing_limit_s
        try:
            answer = await asyncio.wait_for(
                client.send(client.build_request(request.method, url, headers=headers,
                                                 content=body), stream=True),
                timeout=processing_limit_s)
        except TimeoutError:
            balancer.release(upstream)
            balancer.counters["processing_timeouts"] += 1
            return _error(524, f"the worker did not answer within {processing_limit_s:g} s")
        except httpx.HTTPError as exc:
            balancer.release(upstream)
            balancer.counters["worker_lost"] += 1
            log.warning("worker %s lost a request: %s", upstream.id, exc)
            return _error(502, "worker_lost", **{WORKER_HEADER: upstream.id})
        forwarded = {k: v for k, v in answer.headers.items() if k.lower() not in _NOT_FORWARDED}
        forwarded[WORKER_HEADER] = upstream.id
        return StreamingResponse(
            _relay(answer, balancer, upstream, deadline, processing_limit_s, max_body_bytes),
            status_code=answer.status_code, headers=forwarded,
        )

    return app


async def _relay(answer: httpx.Response, balancer: Balancer, upstream: Upstream,
                 deadline: float, limit_s: float, max_bytes: int) -> AsyncIterator[bytes]:
    """The worker's body as it comes, cut off past 30 MB or the processing limit (the
    client then sees an incomplete answer)."""
    sent = 0
    try:
        async with asyncio.timeout_at(asyncio.get_running_loop().time()
                                      + max(0.0, deadline - time.monotonic())):
            async for chunk in answer.aiter_raw():
                sent += len(chunk)
                if sent > max_bytes:
                    balancer.counters["response_too_large"] += 1
                    raise RuntimeError(f"the worker's answer passed {max_bytes} bytes")
                yield chunk
    except TimeoutError:
        balancer.counters["processing_timeouts"] += 1
        raise RuntimeError(f"the worker was still answering after {limit_s:g} s") from None
    except httpx.HTTPError as exc:
        balancer.counters["worker_lost"] += 1
        raise RuntimeError(f"worker {upstream.id} stopped answering: {exc}") from exc
    finally:
        await answer.aclose()
        balancer.release(upstream)
