"""Faults through localpod: a worker killed mid-job, the network dropping while the client polls,
the deadline passing, the voice store down, corrupted voice and latent cache files, a full disk,
and eight concurrent requests for one new voice URL.

One pod of two workers serves the module (private voice-cache and model-cache directories, so
the files can be corrupted on purpose); the full-disk test has its own one-worker pod whose
worker runs ``worker/handler.py`` on an emulated small disk (``small_disk_worker.py``).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from reliability_support import (
    EOF_CRASH,
    HERE,
    TINY,
    DroppingProxy,
    PodDriver,
    ScriptedServer,
    closed_port,
    live_workers,
    record,
    stdin_target,
    voice_bytes,
    wait_until,
    worker_log,
)

from honora_tts.client import (
    EndpointClient,
    JobFailed,
    JobTimedOut,
    SynthesisResult,
    VoiceUploadFailed,
)
from honora_tts.localpod import LocalPod
from honora_tts.model import tiny_checkpoint_dir
from honora_tts.voices import LocalVoiceStore, S3VoiceStore
from honora_tts.voices.audio_check import check_voice_audio

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

FAULTS: dict[str, str] = {}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="honora-faults-") as tmp:
        yield Path(tmp)


#: What one voice takes in the cache: the prepared reference the model reads (mono float32 at
#: 22.05 kHz), not the downloaded file.
DISK_VOICE_BYTES = len(check_voice_audio(
    voice_bytes(2.0, 16_000), source="test", min_duration_s=0.5, max_duration_s=600.0,
).reference_wav)


@pytest.fixture(scope="module")
def small_disk_pod(workdir: Path) -> Iterator[LocalPod]:
    """One worker whose voice cache sits on an emulated disk with room for 2.5 voices; it
    starts loading at once, next to the main pod."""
    pod = LocalPod(
        workers=1, handler_path=HERE / "small_disk_worker.py",
        worker_env={
            "HONORA_VOICE_CACHE": str(workdir / "small-disk-cache"),
            "HONORA_TEST_DISK_BYTES": str(int(DISK_VOICE_BYTES * 2.5)),
        },
    )
    pod.start(wait_ready=False)
    try:
        yield pod
    finally:
        pod.stop()


@pytest.fixture(scope="module")
def pod(workdir: Path, small_disk_pod: LocalPod) -> Iterator[LocalPod]:
    """Two workers sharing a voice cache and a model cache directory this test owns; at most
    one speaker latent kept in memory, so that latents are read back from disk."""
    pod = LocalPod(
        workers=2, model=str(tiny_checkpoint_dir()), stop_grace_s=2.0,
        worker_env={
            "HONORA_VOICE_CACHE": str(workdir / "voice-cache"),
            "HONORA_CACHE_DIR": str(workdir / "model-cache"),
            "HONORA_LATENT_CACHE_ENTRIES": "1",
        },
    )
    pod.start(timeout_s=300)
    try:
        yield pod
    finally:
        pod.stop()
        record("faults", **FAULTS)


@pytest.fixture
def client(pod: LocalPod) -> Iterator[EndpointClient]:
    pod.wait_ready(n=2, timeout_s=300)
    with EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url, deadline_s=240) as made:
        yield made


@pytest.fixture(scope="module")
def voices() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def _voice(server: ScriptedServer, name: str, *, pitch: float, delay_s: float = 0.0) -> str:
    """A distinct voice (new content, so new cache entries) served at ``/name``."""
    return server.file(f"/{name}", voice_bytes(2.0, 16_000, pitch_hz=pitch), delay_s=delay_s)


def _speak(client: EndpointClient, voice: Any = None, text: str = "Hello.") -> SynthesisResult:
    return client.synthesize(text, voice=voice, params=TINY)


# ---------------------------------------------------------------------------- worker killed


def test_worker_killed_mid_job_fails_the_job_and_the_client_says_so(pod, client,
                                                                     voices) -> None:
    # The job waits on a voice server that stalls for 30 s: still running when it is killed,
    # however fast the machine.
    stalled_voice = voices.stall("/stalled-voice.wav", limit_s=30.0)
    before = pod.counters()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = client.synthesize("Killed.", voice=stalled_voice, params=TINY)
        except Exception as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert wait_until(lambda: any(w["holding"] for w in live_workers(pod)), timeout_s=120)
    killed = pod.kill_worker()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the client is stuck"

    error = outcome.get("error")
    assert isinstance(error, JobFailed), outcome
    assert error.code == "worker_died" and error.status == "FAILED"
    assert "died" in str(error) and error.job_id
    [row] = [job for job in pod.jobs() if job["id"] == error.job_id]
    assert row["state"] == "FAILED" and row["worker_id"] == killed
    counters = pod.counters()
    assert counters["workers_died"] == before["workers_died"] + 1
    assert counters["workers_replaced"] == before["workers_replaced"] + 1

    pod.wait_ready(n=2, timeout_s=300)  # the replacement loaded its model
    assert _speak(client).duration_s > 0
    FAULTS["worker_killed_mid_job"] = (
        f"job FAILED worker_died after {row['execution_ms']} ms, client raised JobFailed; "
        "replacement started and served the next job"
    )


# ---------------------------------------------------------------------------- network drop


def test_network_drop_while_polling_is_survived_without_a_second_job(pod) -> None:
    proxy = DroppingProxy(int(pod.base_url.rsplit(":", 1)[1].split("/", 1)[0]))
    try:
        pod.wait_ready(n=2, timeout_s=300)
        before = pod.counters()["jobs_submitted"]
        with EndpointClient(pod.endpoint_id, pod.api_key, proxy.base_url(pod)) as client:
            proxy.drop_status_polls(3)
            result = client.synthesize("The network drops now.", params=TINY)
        assert result.duration_s > 0 and result.request_id
        assert proxy.dropped == 3, "the drop did not happen"
        assert pod.counters()["jobs_submitted"] == before + 1, "a second job was created"
    finally:
        proxy.close()
    FAULTS["network_drop_during_polling"] = (
        f"{proxy.dropped} connections dropped mid-poll; client retried, 1 job, result returned"
    )


# ---------------------------------------------------------------------------- deadline


def test_deadline_passing_cancels_the_job(pod, voices) -> None:
    # The job waits on a voice server that sends headers and then nothing for 6 s: longer
    # than the 3 s deadline however fast the machine is.
    slow_voice = voices.stall("/slow-voice.wav", limit_s=6.0)
    pod.wait_ready(n=2, timeout_s=300)
    with (
        EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url, deadline_s=3.0) as client,
        pytest.raises(JobTimedOut) as caught,
    ):
        client.synthesize("Too late.", voice=slow_voice, params=TINY)
    error = caught.value
    assert error.cancelled and error.job_id
    assert "cancelled" in str(error)
    [row] = [job for job in pod.jobs() if job["id"] == error.job_id]
    assert row["state"] == "CANCELLED"
    # The worker finishes what it cannot interrupt, its late result is dropped, and it serves on.
    assert wait_until(lambda: all(not w["holding"] for w in live_workers(pod)), timeout_s=180)
    assert all(w["state"] != "dead" for w in pod.workers() if w["id"] == row["worker_id"])
    assert next(j for j in pod.jobs() if j["id"] == error.job_id)["state"] == "CANCELLED"
    with EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url) as client:
        assert _speak(client).duration_s > 0
    FAULTS["deadline_passing"] = (
        "JobTimedOut at the 3 s deadline, job CANCELLED and stays so, worker served on"
    )


# ---------------------------------------------------------------------------- voice store down


def test_voice_store_down_is_a_clear_error_and_sends_no_job(pod, tmp_path) -> None:
    voice_file = tmp_path / "billy.wav"
    voice_file.write_bytes(voice_bytes(2.0, 16_000, pitch_hz=150))
    secret = "s3-secret-" + "Q7" * 16
    store = S3VoiceStore(
        "voices", endpoint_url=f"http://127.0.0.1:{closed_port()}",
        access_key_id="AKIATESTSTORE", secret_access_key=secret, region="us-east-1",
    )
    before = pod.counters()["jobs_submitted"]
    with (
        EndpointClient(pod.endpoint_id, pod.api_key, pod.base_url, voice_store=store) as client,
        pytest.raises(VoiceUploadFailed) as caught,
    ):
        client.synthesize("Hello.", voice=voice_file, params=TINY)
    message = str(caught.value)
    assert "s3 voice store" in message and "cannot reach the S3 endpoint" in message
    assert secret not in message and secret not in repr(caught.value)
    assert pod.counters()["jobs_submitted"] == before, "a job was sent without its voice"
    FAULTS["voice_store_down_client"] = f"VoiceUploadFailed before any job: {message[:160]}"


def test_voice_store_down_when_the_worker_fetches_is_voice_fetch_failed(pod, client,
                                                                        tmp_path) -> None:
    voice_file = tmp_path / "stored.wav"
    voice_file.write_bytes(voice_bytes(2.0, 16_000, pitch_hz=165))
    store = LocalVoiceStore(tmp_path / "store")
    stored = store.upload(voice_file)
    store.close()  # the store goes down between the upload and the worker's download
    with pytest.raises(JobFailed) as caught:
        client.synthesize("Hello.", voice=stored, params=TINY)
    assert caught.value.code == "voice_fetch_failed" and caught.value.field == "voice_url"
    assert "127.0.0.1" in caught.value.worker_message
    assert _speak(client).duration_s > 0
    FAULTS["voice_store_down_worker"] = f"JobFailed voice_fetch_failed: {caught.value.code}"


# ---------------------------------------------------------------------------- corrupted caches


def test_corrupted_voice_cache_file_is_detected_and_replaced(pod, client, voices,
                                                             workdir) -> None:
    url = _voice(voices, "corrupt-me.wav", pitch=190)
    sha = hashlib.sha256(voice_bytes(2.0, 16_000, pitch_hz=190)).hexdigest()
    first = _speak(client, url)
    assert first.cache is not None and first.cache.voice == "miss"
    [blob] = (workdir / "voice-cache" / "blobs").glob(f"{sha}.*")
    prepared = hashlib.sha256(blob.read_bytes()).hexdigest()  # the reference XTTS reads
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2:len(damaged) // 2 + 4096] = b"\x00" * 4096  # same size
    blob.write_bytes(bytes(damaged))

    second = _speak(client, url)
    assert second.cache is not None and second.cache.voice == "miss", "served a damaged file"
    assert voices.hits["/corrupt-me.wav"] == 2, "it was not fetched again"
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == prepared, "the damaged file stayed"
    logs = "".join(worker_log(w) for w in pod.workers())
    assert "was corrupted; fetching it again" in logs
    FAULTS["corrupted_voice_cache_file"] = (
        "detected by hash on the next hit, fetched again, replaced"
    )


def test_corrupted_latent_cache_file_is_detected_and_replaced(pod, client, voices,
                                                              workdir) -> None:
    url_a = _voice(voices, "latent-a.wav", pitch=210)
    url_b = _voice(voices, "latent-b.wav", pitch=230)
    latent_dir = workdir / "model-cache" / "latents"
    before = set(latent_dir.rglob("*.pt"))
    first = _speak(client, url_a)
    assert first.cache is not None and first.cache.latents == "miss"
    [latent_file] = set(latent_dir.rglob("*.pt")) - before
    # Each worker keeps one latent in memory: make both hold voice B, so A comes from disk.
    served_b: set[str] = set()
    for _ in range(10):
        with ThreadPoolExecutor(2) as pool:
            served_b |= {r.worker_id for r in pool.map(lambda _: _speak(client, url_b), range(2))}
        if len(served_b) == 2:
            break
    assert len(served_b) == 2, "could not reach both workers"
    latent_file.write_bytes(b"PK\x03\x04 this is not a torch file" * 10)

    again = _speak(client, url_a)
    assert again.cache is not None and again.cache.latents == "miss", "a corrupt file was used"
    saved = torch.load(latent_file, map_location="cpu", weights_only=True)
    assert saved["gpt_cond_latent"].ndim == 3, "the file was not rewritten"
    logs = "".join(worker_log(w) for w in pod.workers())
    assert "is unusable" in logs and "replacing it" in logs
    FAULTS["corrupted_latent_cache_file"] = "detected on load, recomputed, file rewritten"


# ---------------------------------------------------------------------------- single download


def test_eight_concurrent_requests_for_one_new_voice_download_it_once(pod, client,
                                                                      voices) -> None:
    url = _voice(voices, "popular.wav", pitch=250, delay_s=1.0)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: _speak(client, url, f"Request {n}."), range(8)))
    assert len(results) == 8 and all(r.duration_s > 0 for r in results)
    assert voices.hits["/popular.wav"] == 1, "downloaded more than once"
    caches = sorted(r.cache.voice for r in results if r.cache is not None)
    assert caches == ["hit"] * 7 + ["miss"]
    workers = {r.worker_id for r in results}
    FAULTS["eight_concurrent_requests_one_voice"] = (
        f"8 completed on {len(workers)} workers, 1 download, 7 cache hits"
    )


# ---------------------------------------------------------------------------- full disk


def test_full_disk_evicts_and_does_not_fail(small_disk_pod, voices, workdir) -> None:
    pod, size = small_disk_pod, DISK_VOICE_BYTES
    pod.wait_ready(timeout_s=300)
    urls = [_voice(voices, f"disk-{n}.wav", pitch=120 + 15 * n) for n in range(5)]
    driver = PodDriver(pod)
    try:
        for url in urls:
            status = driver.run_to_end({"text": "Disk.", "voice_url": url, "params": TINY})
            assert status["status"] == "COMPLETED", status
        health = driver.run_to_end({"action": "health"})["output"]["health"]["voice_cache"]
    finally:
        driver.close()
    assert health["downloads"] == 5 and health["evictions"] >= 3
    blobs = list((workdir / "small-disk-cache" / "blobs").iterdir())
    assert sum(b.stat().st_size for b in blobs) <= size * 2.5
    [worker] = pod.workers()
    assert worker["state"] != "dead"
    assert "voice cache disk full" in worker_log(worker)
    FAULTS["disk_cache_full"] = (
        f"5 voices on a disk for 2.5: {health['evictions']} evictions, 0 failures"
    )


def test_no_worker_read_stdin_or_crashed_unexpectedly(pod) -> None:
    for worker in pod.workers():
        log = worker_log(worker)
        assert EOF_CRASH not in log
        assert "unexpected failure" not in log
    for worker in live_workers(pod):
        assert stdin_target(worker["pid"]) == "/dev/null"
    killed = [w for w in pod.workers() if w["state"] == "dead"]
    assert all(w["killed_for"] == "killed on command" for w in killed)
