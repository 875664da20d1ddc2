"""Issue 11's red-team findings, each replayed against a real worker through localpod.

One pod, one worker taking up to four jobs at a time (``HONORA_CONCURRENCY=4``: a batch
job-take, as on RunPod with concurrency above one). Finding 1 measures the worker's peak RSS
over each hostile voice against its idle RSS (the kernel's high-water mark, reset before each
request through ``/proc/PID/clear_refs``) and records the figures in the reliability report.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import psutil
import pytest
from reliability_support import (
    TINY,
    PodDriver,
    ScriptedServer,
    live_workers,
    record,
    voice_bytes,
    voice_support,
    worker_error,
    worker_log,
)

from honora_tts.localpod import LocalPod

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

MB = 2**20
#: Issue 11: a hostile voice may cost the worker at most this much memory over its idle RSS.
RSS_BOUND = 300 * MB

HOSTILE_VOICES = {
    # The two files: a FLAC whose header claims 2 s but holds 60 s, and a FLAC at
    # 655 350 Hz on 8 channels (here 60 s: 1.26 GB of float32 for a decoder that trusts it).
    "header_claims_2s_holds_60s": voice_support.flac_hiding_length(2.0, 60.0),
    "flac_655350hz_8ch": voice_support.flac_dense(655_350, 8, 60),
    # The lie at the largest rate and channel count still accepted: only the decode cap stops it.
    "header_claims_2s_holds_60s_192khz_stereo": voice_support.flac_hiding_length(
        2.0, 60.0, 192_000, 2
    ),
}


@pytest.fixture(scope="module")
def voices() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.file("/voice.wav", voice_bytes(2.0, 16_000))
    for name, data in HOSTILE_VOICES.items():
        server.file(f"/{name}.flac", data, content_type="audio/flac")
    yield server
    server.close()


@pytest.fixture(scope="module")
def pod() -> Iterator[LocalPod]:
    with tempfile.TemporaryDirectory(prefix="honora-red-team-") as tmp:
        made = LocalPod(workers=1, max_concurrency_per_worker=4,
                        worker_env={"HONORA_VOICE_CACHE": f"{tmp}/cache"})
        try:
            made.start(timeout_s=300)
            yield made
        finally:
            made.stop()


@pytest.fixture(scope="module")
def driver(pod: LocalPod) -> Iterator[PodDriver]:
    with PodDriver(pod) as made:
        yield made


def _worker(pod: LocalPod) -> dict[str, Any]:
    [worker] = live_workers(pod)
    return worker


class _PeakMemory:
    """Peak RSS of a process (and, sampled every 10 ms, of its FFmpeg children) over a block."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.idle = self.process.memory_info().rss
        self.peak = self.idle
        self.children_peak = 0
        self._done = threading.Event()
        self._hwm_reset = _reset_high_water_mark(pid)
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Self:
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()
        if self._hwm_reset:
            self.peak = max(self.peak, _high_water_mark(self.process.pid))

    def _sample(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
                children = sum(c.memory_info().rss for c in self.process.children(recursive=True)
                               if c.name() == "ffmpeg")
                self.children_peak = max(self.children_peak, children)
            except psutil.Error:
                pass
            time.sleep(0.01)


def _reset_high_water_mark(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _high_water_mark(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _speak(driver: PodDriver, voice_url: str, request_id: str) -> dict[str, Any]:
    return driver.run_to_end({"text": "A short warm-up sentence.", "voice_url": voice_url,
                              "params": TINY, "request_id": request_id})


# ---------------------------------------------------------------------------- finding 1


def test_hostile_voices_are_refused_within_300_mb_of_idle(
    pod: LocalPod, driver: PodDriver, voices: ScriptedServer
) -> None:
    """Finding 1 (decode bomb): each file ends in a structured ``voice_not_audio`` error and the
    worker's peak RSS over the request stays within 300 MB of its idle RSS. Before the fix the
    first and third were accepted and the second cost the worker gigabytes."""
    base = f"http://127.0.0.1:{voices.port}"
    warm = _speak(driver, f"{base}/voice.wav", "red-team-warm-up")
    assert warm["status"] == "COMPLETED", warm
    worker = _worker(pod)
    figures: dict[str, Any] = {}
    for name, data in HOSTILE_VOICES.items():
        with _PeakMemory(worker["pid"]) as memory:
            status = driver.run_to_end({"text": "Hello.", "voice_url": f"{base}/{name}.flac",
                                        "params": TINY, "request_id": f"red-team-{name}"})
        assert status["status"] == "FAILED", status
        error = worker_error(status)
        assert error["code"] in ("voice_not_audio", "voice_too_large"), error
        assert error["field"] == "voice_url"
        figures[name] = {
            "voice_bytes": len(data),
            "code": error["code"],
            "idle_rss_mb": round(memory.idle / MB, 1),
            "peak_rss_mb": round(memory.peak / MB, 1),
            "peak_over_idle_mb": round((memory.peak - memory.idle) / MB, 1),
            "decoder_child_peak_rss_mb": round(memory.children_peak / MB, 1),
        }
        assert memory.peak - memory.idle < RSS_BOUND, figures[name]
    record("decode_bombs", rss_bound_mb=RSS_BOUND // MB, voices=figures,
           measured_by="VmHWM of the worker process, reset before each request")
    after = _speak(driver, f"{base}/voice.wav", "red-team-after-bombs")
    assert after["status"] == "COMPLETED" and after["workerId"] == worker["id"], after
    assert "Traceback" not in worker_log(_worker(pod))


# ---------------------------------------------------------------------------- finding 2

#: How long the voice server drips its headers: far longer than three tiny-model jobs take.
DRIP_S = 10.0


def test_a_voice_dripping_its_headers_holds_up_no_other_job(
    pod: LocalPod, driver: PodDriver, voices: ScriptedServer
) -> None:
    """Finding 2 on a worker taking several jobs: while one job's voice server drips its
    headers, the worker's other jobs complete, and the stuck one ends in a structured error.
    Before, the handler ran on the runpod SDK's event loop: the other jobs waited for the drip,
    and the SDK's pending job-take timed out (localpod marked what it had handed out
    ``result_lost``)."""
    base = f"http://127.0.0.1:{voices.port}"
    with voice_support.RawServer("header_drip", interval_s=0.3, limit_s=DRIP_S) as slow:
        stuck = driver.submit({"text": "Hello.", "voice_url": slow.url(), "params": TINY,
                               "request_id": "red-team-drip"})
        driver.wait_status(stuck, lambda s: s["status"] == "IN_PROGRESS")
        started = time.monotonic()
        others = [driver.submit({"text": "Meanwhile.", "voice_url": f"{base}/voice.wav",
                                 "params": TINY, "request_id": f"red-team-beside-drip-{i}"})
                  for i in range(3)]
        finals = [driver.wait_final(job) for job in others]
        took = time.monotonic() - started
        assert [f["status"] for f in finals] == ["COMPLETED"] * 3, finals
        assert driver.status(stuck)["status"] == "IN_PROGRESS"  # still dripping
        assert took < DRIP_S, took
    final = driver.wait_final(stuck)
    assert final["status"] == "FAILED", final
    error = worker_error(final)
    assert error["field"] == "voice_url" and error["code"] != "result_lost", error
    record("header_drip_beside_other_jobs", others_done_in_s=round(took, 1), drip_s=DRIP_S,
           stuck_job_error=error["code"])


# ---------------------------------------------------------------------------- finding 5


def test_a_forged_field_name_reaches_neither_the_error_nor_the_worker_log(
    pod: LocalPod, driver: PodDriver
) -> None:
    """Finding 5 (log forging): an unknown field whose name holds a line break and terminal
    escapes came back as the error's ``field`` and was logged raw, forging a worker log line.
    Now both show it escaped."""
    forged = "\n\x1b[2J2099-01-01 00:00:00,000 INFO honora_tts.worker: request forged: done"
    status = driver.run_to_end({"text": "Hello.", forged: 1, "request_id": "red-team-forge"})
    assert status["status"] == "FAILED", status
    error = worker_error(status)
    assert error["code"] == "invalid_input"
    assert error["field"] == forged.replace("\n", "\\n").replace("\x1b", "\\x1b")
    assert "\x1b" not in error["message"] and "\n" not in error["message"]
    log = worker_log(_worker(pod))
    assert "red-team-forge" in log and "\x1b" not in log
    assert not any(line.startswith("2099-01-01") for line in log.splitlines())
