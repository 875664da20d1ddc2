"""localpod's load balancer in front of scripted upstream servers (no model): RunPod's
documented answers for auth, holds, affinity, body and time limits, and lost workers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from honora_tts.localpod.background_server import BackgroundServer
from honora_tts.localpod.load_balancer import Balancer, Pin, Upstream, build_app

KEY = "lb-test-key"


def _upstream_app(name: str) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"worker": name, "bytes": len(body),
                             "auth": request.headers.get("authorization"),
                             "query": request.url.query},
                            headers={"X-Upstream": name})

    @app.get("/slow")
    async def slow() -> JSONResponse:
        await asyncio.sleep(3)
        return JSONResponse({"worker": name})

    @app.get("/big")
    async def big() -> StreamingResponse:
        async def chunks():
            for _ in range(40):
                yield b"x" * 65_536
        return StreamingResponse(chunks())

    return app


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, int]]:
    servers = {}
    for name in ("w1", "w2"):
        server = BackgroundServer(name=f"upstream-{name}")
        port = server.listen()
        server.start(_upstream_app(name))
        servers[name] = (server, port)
    yield {name: port for name, (_, port) in servers.items()}
    for server, _ in servers.values():
        server.stop()


@pytest.fixture
def balanced(upstreams) -> Iterator[tuple[Balancer, httpx.Client]]:
    balancer = Balancer(capacity=1, hold_s=1.0)
    for name, port in upstreams.items():
        balancer.upstreams[name] = Upstream(id=name, port=port, health="ready")
    server = BackgroundServer(name="balancer-under-test")
    port = server.listen()
    server.start(build_app(balancer, KEY, max_body_bytes=100_000, processing_limit_s=1.0))
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    yield balancer, client
    client.close()
    server.stop()


def test_the_affinity_header_is_read_as_runpod_documents_it():
    assert Pin.parse(None) is None and Pin.parse("  ") is None
    assert Pin.parse("pod-1") == Pin("pod-1", "soft")
    assert Pin.parse("strict pod-1") == Pin("pod-1", "strict")
    assert Pin.parse("strict-resume pod-1") == Pin("pod-1", "strict-resume")


def test_requests_need_the_key_which_is_not_forwarded(balanced):
    _, client = balanced
    refused = client.post("/echo", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and "error" in refused.json()
    answer = client.post("/echo?x=1", content=b"abc")
    assert answer.status_code == 200 and answer.json()["auth"] is None
    assert answer.json()["query"] == "x=1" and answer.json()["bytes"] == 3
    assert answer.headers["X-Runpod-Worker-Id"] == answer.json()["worker"]
    assert answer.headers["X-Upstream"] == answer.json()["worker"]


def test_unpinned_requests_spread_and_soft_pins_stick(balanced):
    _, client = balanced
    seen = {client.post("/echo").headers["X-Runpod-Worker-Id"] for _ in range(4)}
    assert seen == {"w1", "w2"}
    pinned = [client.post("/echo", headers={"X-Runpod-Worker-Id": "w2"}).json()["worker"]
              for _ in range(4)]
    assert pinned == ["w2"] * 4


def test_a_gone_worker_is_404_when_strict_and_a_fallback_when_soft(balanced):
    balancer, client = balanced
    balancer.upstreams["w1"].health = "dead"
    strict = client.post("/echo", headers={"X-Runpod-Worker-Id": "strict w1"})
    assert strict.status_code == 404 and strict.json() == {"error": "affinity_worker_gone"}
    unknown = client.post("/echo", headers={"X-Runpod-Worker-Id": "strict-resume nobody"})
    assert unknown.status_code == 404
    soft = client.post("/echo", headers={"X-Runpod-Worker-Id": "w1"})
    assert soft.status_code == 200 and soft.json()["worker"] == "w2"
    assert balancer.counters["affinity_fallbacks"] == 1


def test_requests_are_held_while_workers_initialize_then_refused(balanced):
    balancer, client = balanced
    for upstream in balancer.upstreams.values():
        upstream.health = "initializing"
    refused = client.post("/echo")
    assert refused.status_code == 400 and refused.json() == {"error": "no workers available"}
    strict = client.post("/echo", headers={"X-Runpod-Worker-Id": "strict w1"})
    assert strict.status_code == 400 and strict.json() == {"error": "worker_timeout"}
    assert balancer.counters["no_workers"] == 1 and balancer.counters["worker_timeout"] == 1


def test_a_held_request_goes_out_the_moment_a_worker_is_ready(balanced):
    balancer, client = balanced
    for upstream in balancer.upstreams.values():
        upstream.health = "initializing"
    timer = threading.Timer(0.3, lambda: setattr(balancer.upstreams["w2"], "health", "ready"))
    timer.start()
    answer = client.post("/echo")
    timer.join()
    assert answer.status_code == 200 and answer.json()["worker"] == "w2"
    assert balancer.counters["held"] == 1


def test_bodies_over_the_limit_are_refused_and_long_answers_cut_off(balanced):
    balancer, client = balanced
    too_big = client.post("/echo", content=b"y" * 100_001)
    assert too_big.status_code == 413 and "error" in too_big.json()
    slow = client.get("/slow")
    assert slow.status_code == 524
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/big")  # 2.6 MB streamed past the 100 kB limit: cut off
    assert balancer.counters["response_too_large"] == 1
    assert all(u.in_flight == 0 for u in balancer.upstreams.values())


def test_a_worker_that_does_not_answer_is_502_worker_lost(balanced):
    balancer, client = balanced
    balancer.upstreams["w1"].health = "dead"
    balancer.upstreams["w2"].port = 1  # nothing listens there
    lost = client.post("/echo")
    assert lost.status_code == 502 and lost.json() == {"error": "worker_lost"}
    assert lost.headers["X-Runpod-Worker-Id"] == "w2"
