"""The bad-input corpus (``bad_inputs.json``) fired at real workers through localpod.

Every case must end in a structured error with the expected code (a FAILED job whose ``error``
is the worker's ``{code, message, field}``, a COMPLETED batch whose bad sections carry their
codes, or an HTTP refusal by localpod before any worker sees the body), without a worker crash
and without anything reading stdin; after every case the same worker process serves a valid
request (a health job), and at the end of each category it synthesizes audio.

The cases of one category are queued together, each followed by a health job, and the worker
takes up to 16 jobs at a time (``HONORA_CONCURRENCY=16``; the runpod SDK otherwise waits a
second after every job, and the corpus would take minutes). Cases that go to ``/runsync`` or that
localpod refuses are sent one by one.

Two one-worker pods: ``open`` allows private voice URLs (as localpod does, so the voice server on
127.0.0.1 works) and ``ssrf`` refuses them, trusting only 127.0.0.1 as a stand-in for a public
host so that redirects from it to forbidden addresses can be tried. Before a case that must be
refused by the address policy is sent, the same policy is checked in this process: a URL it
would let through is never sent, so no test traffic can reach a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import numpy as np
import pytest
from reliability_support import (
    EOF_CRASH,
    TINY,
    PodDriver,
    ScriptedServer,
    build_input,
    closed_port,
    flac_claiming_hours,
    flac_dense,
    flac_hiding_length,
    live_workers,
    load_corpus,
    raw_body,
    record,
    silent_wav,
    stdin_target,
    substitute,
    voice_bytes,
    worker_error,
    worker_log,
)

from honora_tts.client import EndpointClient, PayloadTooLarge
from honora_tts.localpod import LocalPod
from honora_tts.protocol import ErrorInfo, ParsedRequest, WorkerError, parse_request
from honora_tts.voices.url_safety import UrlPolicy

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

CORPUS = load_corpus()
CASES: list[dict[str, Any]] = CORPUS["cases"]
TRUSTED_HOST = "127.0.0.1"
WORKER_CONCURRENCY = 16
RESULTS: Counter[str] = Counter()
#: category -> case name -> (final status of the case's job, final status of the health job)
_BATCHES: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}


def _items() -> list[Any]:
    """Every case, grouped by category, with a synthesis checkpoint after each category."""
    categories = list(dict.fromkeys(case["category"] for case in CASES))
    items = []
    for category in categories:
        for case in CASES:
            if case["category"] == category:
                items.append(pytest.param(case, id=f"{category}/{case['name']}"))
        items.append(pytest.param({"checkpoint": category}, id=f"{category}/checkpoint"))
    return items


# ---------------------------------------------------------------------------- fixtures


def _serve_files(server: ScriptedServer) -> None:
    good = voice_bytes(2.0, 16_000)
    truncated = good[: len(good) // 2]
    server.file("/voice.wav", good)
    server.file("/files/voice.wav", good)
    server.file("/ssrf/target.wav", good)  # must never be requested
    server.file("/files/not-audio.html", b"<!doctype html><title>Not found</title>" * 40,
                content_type="text/html")
    server.file("/files/random.bin", np.random.default_rng(7).bytes(65_536),
                content_type="application/octet-stream")
    server.file("/files/empty.wav", b"")
    server.file("/files/voice.json", b'{"voice": "billy"}', content_type="application/json")
    server.file("/files/truncated.wav", truncated)
    server.file("/files/silent.wav", silent_wav(2.0))
    server.file("/files/hours.flac", flac_claiming_hours(3.0), content_type="audio/flac")
    server.file("/files/eleven-minutes.wav", voice_bytes(660.0, 8_000))
    server.file("/files/short.wav", voice_bytes(0.2, 16_000))
    server.file("/files/4khz.wav", voice_bytes(2.0, 4_000))
    server.file("/files/header-2s-holds-60s.flac", flac_hiding_length(2.0, 60.0),
                content_type="audio/flac")
    server.file("/files/655khz-8ch.flac", flac_dense(655_350, 8, 60), content_type="audio/flac")
    server.status("/files/error-500.wav", 500)
    server.status("/files/redirect-no-location", 302)
    server.stall("/files/stall.wav", limit_s=30.0)
    server.declared_length("/files/declared-100mb.wav", 100 * 2**20)
    server.endless("/files/endless.wav")


@pytest.fixture(scope="module")
def voices() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    _serve_files(server)
    yield server
    server.close()


@pytest.fixture(scope="module")
def places(voices: ScriptedServer) -> dict[str, str]:
    base = f"http://127.0.0.1:{voices.port}"
    found = {
        "voices": base,
        "voices_port": str(voices.port),
        "trusted": f"http://{TRUSTED_HOST}:{voices.port}",
        "closed": f"http://127.0.0.1:{closed_port()}",
        "hostname": socket.gethostname(),
    }
    for case in CASES:
        if "redirect_to" in case:
            path = f"/redirect/{case['name']}"
            voices.redirect(path, substitute(case["redirect_to"], found))
    return found


@pytest.fixture(scope="module")
def pods() -> Iterator[dict[str, LocalPod]]:
    with tempfile.TemporaryDirectory(prefix="honora-corpus-") as tmp:
        made = {
            "open": LocalPod(workers=1, max_concurrency_per_worker=WORKER_CONCURRENCY,
                             worker_env={"HONORA_VOICE_CACHE": f"{tmp}/open"}),
            "ssrf": LocalPod(workers=1, max_concurrency_per_worker=WORKER_CONCURRENCY, worker_env={
                "HONORA_VOICE_CACHE": f"{tmp}/ssrf",
                "HONORA_ALLOW_PRIVATE_URLS": "0",
                "HONORA_TRUSTED_VOICE_HOSTS": TRUSTED_HOST,
            }),
        }
        try:
            for pod in made.values():
                pod.start(wait_ready=False)
            for pod in made.values():
                pod.wait_ready(timeout_s=300)
            yield made
        finally:
            for pod in made.values():
                pod.stop()


@pytest.fixture(scope="module")
def drivers(pods: dict[str, LocalPod]) -> Iterator[dict[str, PodDriver]]:
    made = {name: PodDriver(pod) for name, pod in pods.items()}
    yield made
    for driver in made.values():
        driver.close()


@pytest.fixture(scope="module")
def identities(pods: dict[str, LocalPod]) -> dict[str, dict[str, Any]]:
    """The one worker each pod starts with; it must serve the whole corpus."""
    found = {}
    for name, pod in pods.items():
        [worker] = live_workers(pod)
        found[name] = {"id": worker["id"], "pid": worker["pid"]}
    return found


# ---------------------------------------------------------------------------- checks


def _hostname_is_not_public(hostname: str) -> bool:
    try:
        infos = socket.getaddrinfo(hostname, 80, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(not ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_global for i in infos)


def _refused_by_policy(url: str, policy: UrlPolicy, redirects: dict[str, str]) -> bool:
    """Whether ``policy`` refuses ``url`` or a hop of the case's known redirect chain."""
    for _ in range(6):
        try:
            policy.vet(url)
        except WorkerError:
            return True
        target = redirects.get(url.split("?", 1)[0])
        if target is None:
            return False
        url = urljoin(url, target)
    return False


def _assert_policy_refuses_first(case: dict[str, Any], job_input: Any,
                                 places: dict[str, str]) -> None:
    """Guard: a URL the address policy would let through is never sent to a worker."""
    if case["expect"].get("code") != "voice_url_forbidden" or not isinstance(job_input, dict):
        return
    url = job_input.get("voice_url")
    if not isinstance(url, str):
        return
    ssrf = case.get("pod") == "ssrf"
    policy = UrlPolicy.create(
        allow_private=not ssrf, trusted_hosts=(TRUSTED_HOST,) if ssrf else ()
    )
    redirects = {
        f"{places['voices']}/redirect/{c['name']}": substitute(c["redirect_to"], places)
        for c in CASES if "redirect_to" in c
    }
    redirects.update({
        url.replace(places["voices"], places["trusted"]): target
        for url, target in list(redirects.items())
    })
    assert _refused_by_policy(url, policy, redirects), (
        f"the policy lets {url} through: not sending it (it could reach a real address)"
    )


def _with_request_id(case: dict[str, Any], job_input: Any) -> Any:
    if isinstance(job_input, dict) and "request_id" not in job_input:
        return {**job_input, "request_id": f"rel-{case['name']}"[:128]}
    return job_input


def _assert_same_worker(pod: LocalPod, identity: dict[str, Any]) -> None:
    workers = pod.workers()
    assert [w["id"] for w in workers] == [identity["id"]], f"workers changed: {workers}"
    [worker] = workers
    assert worker["state"] in ("ready", "running"), worker
    assert worker["pid"] == identity["pid"], "the worker process was replaced"
    assert stdin_target(worker["pid"]) == "/dev/null"


def _check_failed_job(case: dict[str, Any], status: dict[str, Any], job_input: Any,
                      identity: dict[str, Any]) -> None:
    expect = case["expect"]
    assert status["status"] == "FAILED", status
    assert status.get("workerId") == identity["id"]
    error = worker_error(status)
    assert set(error) <= {"code", "message", "field"} and error["message"], error
    assert error["code"] == expect["code"], error
    if "field" in expect:
        assert error.get("field") == expect["field"], error
    output = status["output"]
    assert output["status"] == "error"
    assert output["version"]["handler_version"] >= 2
    rid = job_input.get("request_id") if isinstance(job_input, dict) else None
    if isinstance(rid, str) and 0 < len(rid) <= 128 and rid.isprintable():
        assert output["request_id"] == rid
    else:
        assert output["request_id"] == f"job-{status['id']}"


def _check_partial_batch(case: dict[str, Any], status: dict[str, Any],
                         identity: dict[str, Any]) -> None:
    assert status["status"] == "COMPLETED", status
    assert status.get("workerId") == identity["id"]
    output = status["output"]
    assert output["status"] == case["expect"]["status"]
    sections = output["sections"]
    assert [s["index"] for s in sections] == list(range(len(sections)))
    seen = [s["status"] if s["status"] == "ok" else s["error"]["code"] for s in sections]
    assert seen == case["expect"]["sections"]
    for section in sections:
        if section["status"] == "ok":
            assert section["audio"]["bytes"] > 44 and section["audio"]["base64"]
        else:
            assert section["error"]["message"]


def _check_protocol_agrees(case: dict[str, Any], job_input: Any) -> str:
    """Where validation alone decides, the client (same protocol module) refuses the request
    before sending it, with the same code. Returns the stage that refused it."""
    parsed = parse_request(job_input)
    expect = case["expect"]
    if isinstance(parsed, ErrorInfo):
        assert parsed.code.value == expect.get("code"), parsed
        if "field" in expect:
            assert parsed.field == expect["field"]
        return "protocol"
    assert isinstance(parsed, ParsedRequest)
    return "batch sections" if parsed.invalid_sections else "worker"


# ---------------------------------------------------------------------------- the corpus


def test_corpus_is_large_and_well_formed() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)) and len(CASES) >= 60
    for case in CASES:
        assert {"name", "category", "expect"} <= set(case)
        assert sum(k in case for k in ("input", "recipe", "raw_body", "raw_body_hex")) == 1
        assert case.get("pod", "open") in ("open", "ssrf")
    record("corpus", cases=len(CASES),
           cases_per_category=dict(Counter(case["category"] for case in CASES)))


def _job_parts(case: dict[str, Any], places: dict[str, str]) -> tuple[bytes, Any]:
    """The HTTP body of a case and its job input (None for raw bodies)."""
    if "raw_body_hex" in case:
        return bytes.fromhex(case["raw_body_hex"]), None
    if "raw_body" in case:
        return raw_body(case, places), None
    job_input = _with_request_id(case, build_input(case, places))
    _assert_policy_refuses_first(case, job_input, places)
    return json.dumps({"input": job_input}).encode(), job_input


def _queued_together(case: dict[str, Any]) -> bool:
    return "http" not in case["expect"] and case.get("route", "run") == "run"


def _skipped(case: dict[str, Any], places: dict[str, str]) -> bool:
    return case.get("requires") == "hostname_not_public" and not _hostname_is_not_public(
        places["hostname"]
    )


def _run_category(category: str, drivers, places) -> dict[str, tuple[dict, dict]]:
    """Queue every case of the category that goes to ``/run``, each followed by a health job,
    then wait for all of them."""
    if category in _BATCHES:
        return _BATCHES[category]
    queued = []
    for case in CASES:
        if case["category"] != category or not _queued_together(case) or _skipped(case, places):
            continue
        driver = drivers[case.get("pod", "open")]
        body, _ = _job_parts(case, places)
        response = driver.post_body("run", body)
        assert response.status_code == 200, f"{case['name']}: {response.text[:300]}"
        health = driver.submit({"action": "health", "request_id": f"rel-after-{case['name']}"})
        queued.append((case["name"], driver, response.json()["id"], health))
    _BATCHES[category] = {
        name: (driver.wait_final(job_id), driver.wait_final(health_id))
        for name, driver, job_id, health_id in queued
    }
    return _BATCHES[category]


@pytest.mark.parametrize("case", _items())
def test_bad_input(case, pods, drivers, identities, places, voices) -> None:
    if "checkpoint" in case:
        _checkpoint(case["checkpoint"], pods, drivers, identities, places)
        return
    if _skipped(case, places):
        RESULTS["skipped"] += 1
        pytest.skip("this machine's host name resolves to a public address")
    pod_name = case.get("pod", "open")
    pod, driver, identity = pods[pod_name], drivers[pod_name], identities[pod_name]
    expect = case["expect"]
    body, job_input = _job_parts(case, places)
    route = case.get("route", "run")

    if _queued_together(case):
        status, health = _run_category(case["category"], drivers, places)[case["name"]]
    elif "http" in expect:
        before = pod.counters()
        response = driver.post_body(route, body)
        assert response.status_code == expect["http"], response.text[:300]
        assert "error" in response.json()
        assert pod.counters()["jobs_submitted"] == before["jobs_submitted"], "it was queued"
        if case.get("client_refuses"):
            _client_refuses_before_sending(pod, job_input, route)
        status, health = None, driver.run_to_end({"action": "health"})
    else:
        response = driver.post_body(route, body)
        assert response.status_code == 200, response.text[:300]
        answer = response.json()
        final = answer["status"] in ("COMPLETED", "FAILED")
        status = answer if final else driver.wait_final(answer["id"])
        health = driver.run_to_end({"action": "health"})

    stage = "localpod"
    if status is not None:
        if "code" in expect:
            _check_failed_job(case, status, job_input, identity)
        else:
            _check_partial_batch(case, status, identity)
        stage = "worker" if job_input is None else _check_protocol_agrees(case, job_input)

    # The same worker process served the next valid request.
    assert health["status"] == "COMPLETED", health
    assert health["workerId"] == identity["id"]
    assert health["output"]["status"] == "healthy"
    _assert_same_worker(pod, identity)
    if case.get("pod") == "ssrf" or "redirect_to" in case:
        assert voices.hits["/ssrf/target.wav"] == 0, "a forbidden address was connected to"
    RESULTS[f"passed:{case['category']}"] += 1
    RESULTS[f"stage:{stage}"] += 1


def _client_refuses_before_sending(pod: LocalPod, job_input: Any, route: str) -> None:
    before = pod.counters()["payloads_rejected"]
    with EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url) as client:
        call = client.run if route == "run" else client.runsync
        with pytest.raises(PayloadTooLarge):
            call(job_input)
    assert pod.counters()["payloads_rejected"] == before, "the client sent it anyway"


def _checkpoint(category: str, pods, drivers, identities, places) -> None:
    pod_name = "ssrf" if category == "voice_ssrf" else "open"
    voice = f"{places['trusted' if pod_name == 'ssrf' else 'voices']}/voice.wav"
    status = drivers[pod_name].run_to_end({
        "text": f"Still speaking after the {category} cases.", "voice_url": voice,
        "params": TINY, "request_id": f"rel-checkpoint-{category}",
    })
    assert status["status"] == "COMPLETED", status
    assert status["workerId"] == identities[pod_name]["id"]
    output = status["output"]
    assert output["status"] == "ok" and output["audio"]["duration_s"] > 0
    assert output["request_id"] == f"rel-checkpoint-{category}"
    _assert_same_worker(pods[pod_name], identities[pod_name])
    RESULTS["checkpoints"] += 1
    RESULTS[f"checkpoint:{category}"] += 1


def test_workers_survived_the_whole_corpus(pods, identities, voices) -> None:
    """Run last: one worker per pod from start to end, no crash, stdin never read."""
    for name, pod in pods.items():
        _assert_same_worker(pod, identities[name])
        counters = pod.counters()
        assert counters["workers_started"] == 1 and counters["workers_died"] == 0
        assert counters["duplicate_done_posts"] == 0
        log = worker_log(live_workers(pod)[0])
        assert EOF_CRASH not in log
        assert "unexpected failure" not in log, "an input reached the catch-all"
        assert "Traceback" not in log and "Failed to return job results" not in log
        # Issue 11 #5: no request text forged a line or reached the terminal raw.
        assert "\x1b" not in log
        assert not any(line.startswith("2099-") for line in log.splitlines())
    assert voices.hits["/ssrf/target.wav"] == 0
    # Every SSRF case was refused by the address policy: nothing was downloaded but the
    # checkpoint's voice from the trusted host.
    with PodDriver(pods["ssrf"]) as driver:
        health = driver.run_to_end({"action": "health"})["output"]["health"]["voice_cache"]
    ssrf_cases = RESULTS["passed:voice_ssrf"]
    assert health["refused"] == ssrf_cases, health
    assert health["downloads"] == RESULTS["checkpoint:voice_ssrf"], health
    passed = sum(v for k, v in RESULTS.items() if k.startswith("passed:"))
    record(
        "corpus",
        passed=passed,
        skipped=RESULTS["skipped"],
        passed_per_category={k.split(":", 1)[1]: v for k, v in RESULTS.items()
                             if k.startswith("passed:")},
        refused_by={k.split(":", 1)[1]: v for k, v in RESULTS.items()
                    if k.startswith("stage:")},
        category_checkpoints_synthesized=RESULTS["checkpoints"],
        worker_restarts=sum(p.counters()["workers_died"] for p in pods.values()),
        ssrf_refused_by_policy=health["refused"], ssrf_pod_downloads=health["downloads"],
        jobs_run={n: p.counters()["jobs_submitted"] for n, p in pods.items()},
    )


# ------------------------------------------------------------- the HTTP mode (load balancing)
#
# The same corpus sent to workers that serve HTTP themselves (HONORA_SERVE=http) behind
# localpod's load balancer, as the bodies of honora's job route (POST /honora/v1/runsync, what
# the client sends in load-balancing mode): the same codes where the queue worker's answer
# came from the worker; where localpod's queue API refused a body by its /run or /runsync
# limits, the HTTP mode has its own (the balancer's 30 MB, the worker's 20 MiB:
# request_too_large) and a body under them reaches the worker, whose protocol decides. Bodies
# that are not JSON are refused by the worker itself (400, OpenAI's error shape). A category's
# cases go at once (16 at a time), then a synthesis proves the worker serves on.

HTTP_CATEGORIES = list(dict.fromkeys(case["category"] for case in CASES))
HTTP_RESULTS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def http_pods() -> Iterator[dict[str, Any]]:
    from honora_tts.localpod.lb_pod import LoadBalancedPod

    with tempfile.TemporaryDirectory(prefix="honora-corpus-http-") as tmp:
        made = {
            "open": LoadBalancedPod(1, max_concurrency_per_worker=WORKER_CONCURRENCY,
                                    worker_env={"HONORA_VOICE_CACHE": f"{tmp}/open"}),
            "ssrf": LoadBalancedPod(1, max_concurrency_per_worker=WORKER_CONCURRENCY,
                                    worker_env={"HONORA_VOICE_CACHE": f"{tmp}/ssrf",
                                                "HONORA_ALLOW_PRIVATE_URLS": "0",
                                                "HONORA_TRUSTED_VOICE_HOSTS": TRUSTED_HOST}),
        }
        try:
            for pod in made.values():
                pod.start(wait_ready=False)
            for pod in made.values():
                pod.wait_ready(timeout_s=300)
            yield {name: (pod, live_workers(pod)[0]) for name, pod in made.items()}
        finally:
            for pod in made.values():
                pod.stop()


def _http_expectation(case: dict[str, Any], body: bytes, job_input: Any) -> dict[str, Any]:
    """What the HTTP mode must answer for a case (see the section's comment)."""
    from honora_tts.localpod.load_balancer import MAX_BODY_BYTES
    from honora_tts.worker.http_app import MAX_JSON_BYTES

    expect = case["expect"]
    if len(body) > MAX_BODY_BYTES:
        return {"http": 413}
    if len(body) > MAX_JSON_BYTES:
        return {"http": 413, "code": "request_too_large"}
    if "http" in expect and expect["http"] == 400:
        return {"http": 400, "code": "invalid_input"}
    if "http" in expect:  # over a queue route's limit only: the protocol decides
        parsed = parse_request(job_input)
        assert isinstance(parsed, ErrorInfo), case["name"]
        return {"code": parsed.code.value}
    return expect


def _http_case(case: dict[str, Any], pod: Any, places: dict[str, str]) -> tuple[str, str]:
    body, job_input = _job_parts(case, places)
    if "raw_body" not in case and "raw_body_hex" not in case:
        body = json.dumps({"input": job_input}).encode()
    expect = _http_expectation(case, body, job_input)
    with httpx.Client(base_url=pod.base_url, timeout=120,
                      headers={"Authorization": f"Bearer {pod.api_key}"}) as client:
        answer = client.post("/honora/v1/runsync", content=body)
    if "http" in expect:
        assert answer.status_code == expect["http"], f"{case['name']}: {answer.text[:300]}"
        error = answer.json()["error"]
        if "code" in expect:
            assert error["code"] == expect["code"] and error["message"], case["name"]
        else:
            assert isinstance(error, str), case["name"]  # the balancer's own refusal
        return case["name"], "refused"
    assert answer.status_code == 200, f"{case['name']}: {answer.text[:300]}"
    status = answer.json()
    if "code" in expect:
        assert status["status"] == "FAILED", f"{case['name']}: {status}"
        error = worker_error(status)
        assert error["code"] == expect["code"], f"{case['name']}: {error}"
        if "field" in expect:
            assert error.get("field") == expect["field"], f"{case['name']}: {error}"
        assert status["output"]["version"]["handler_version"] >= 2
        return case["name"], "failed"
    assert status["status"] == "COMPLETED", f"{case['name']}: {status}"
    sections = status["output"]["sections"]
    seen = [s["status"] if s["status"] == "ok" else s["error"]["code"] for s in sections]
    assert seen == expect["sections"], case["name"]
    return case["name"], "partial"


@pytest.mark.parametrize("category", HTTP_CATEGORIES)
def test_bad_input_in_http_mode(category, http_pods, places, voices) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cases = [c for c in CASES if c["category"] == category and not _skipped(c, places)]
    with ThreadPoolExecutor(max_workers=WORKER_CONCURRENCY) as pool:
        outcomes = list(pool.map(
            lambda case: _http_case(case, http_pods[case.get("pod", "open")][0], places), cases))
    assert len(outcomes) == len(cases)
    HTTP_RESULTS.update(f"{category}:{outcome}" for _, outcome in outcomes)
    assert voices.hits["/ssrf/target.wav"] == 0, "a forbidden address was connected to"
    # The same worker process serves a synthesis after the category.
    name = "ssrf" if category == "voice_ssrf" else "open"
    pod, identity = http_pods[name]
    voice = f"{places['trusted' if name == 'ssrf' else 'voices']}/voice.wav"
    with httpx.Client(base_url=pod.base_url, timeout=120,
                      headers={"Authorization": f"Bearer {pod.api_key}"}) as client:
        done = client.post("/honora/v1/runsync", json={"input": {
            "text": f"Still speaking after the {category} cases.", "voice_url": voice,
            "params": TINY}}).json()
    assert done["status"] == "COMPLETED" and done["output"]["audio"]["duration_s"] > 0
    [worker] = live_workers(pod)
    assert (worker["id"], worker["pid"]) == (identity["id"], identity["pid"])
    assert stdin_target(worker["pid"]) == "/dev/null"


def test_http_workers_survived_the_whole_corpus(http_pods) -> None:
    for pod, identity in http_pods.values():
        assert pod.counters().get("workers_died", 0) == 0
        log = worker_log(live_workers(pod)[0])
        assert EOF_CRASH not in log and "Traceback" not in log
        assert "unexpected failure" not in log, "an input reached the catch-all"
        assert "\x1b" not in log
    # Every SSRF case was refused by the address policy before any connection.
    ssrf, _ = http_pods["ssrf"]
    [worker] = live_workers(ssrf)
    cache = httpx.get(f"http://127.0.0.1:{worker['port']}/health", timeout=30).json()[
        "health"]["voice_cache"]
    ssrf_cases = sum(v for k, v in HTTP_RESULTS.items() if k.startswith("voice_ssrf:"))
    assert cache["refused"] == ssrf_cases and cache["downloads"] == 1, cache
    record("corpus_http_mode", outcomes=dict(HTTP_RESULTS),
           cases=sum(HTTP_RESULTS.values()),
           worker_restarts=sum(p.counters().get("workers_died", 0)
                               for p, _ in http_pods.values()))
