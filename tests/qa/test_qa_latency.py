"""Latency campaigns against a scripted client, their summaries and plots."""

import hashlib
import math
import threading
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from honora_tts.client import AudioChunk, JobTimedOut, SynthesisResult, Timings
from honora_tts.protocol import CacheFacts, StageTimings, VersionRecord
from honora_tts.qa import latency

matplotlib.use("Agg")

VERSION = VersionRecord(handler_version=2, package_version="0.1.0", git_sha="abc1234567",
                        build_time="2025-01-01T00:00:00Z", python_version="3.11",
                        model_name="tiny-xtts", worker_id="w1")


def result(text: str, *, ttfa: float | None = None) -> SynthesisResult:
    audio_s = len(text) / 10.0
    return SynthesisResult(
        audio=b"RIFF", format="wav", sample_rate=24_000, duration_s=audio_s,
        request_id="req", job_id="job", worker_id="w1", version=VERSION,
        timings=Timings(client_ms=1000.0, delay_ms=100.0, execution_ms=800.0, submit_ms=5.0,
                        polls=3, time_to_first_audio_ms=ttfa,
                        stages=StageTimings(voice_fetch_ms=10, latents_ms=40,
                                            generation_ms=700, encode_ms=5, total_ms=760)),
        cache=CacheFacts(voice="hit", latents="hit"),
    )


class ScriptedClient:
    """Answers instantly; records the voices it was given and how many calls overlapped."""

    def __init__(self, fail_every: int = 0, barrier: threading.Barrier | None = None):
        self.voices: list[Path | None] = []
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_every = fail_every
        self.barrier = barrier
        self.lock = threading.Lock()

    def synthesize(self, text, voice=None, language="en", *, params=None, deadline_s=None):
        with self.lock:
            self.calls += 1
            number = self.calls
            self.voices.append(voice)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=30)
            if self.fail_every and number % self.fail_every == 0:
                raise JobTimedOut("deadline passed", job_id=f"job-{number}")
            return result(text)
        finally:
            with self.lock:
                self.in_flight -= 1

    def synthesize_stream(self, text, voice=None, language="en", *, params=None,
                          deadline_s=None):
        client = self

        class Stream:
            """Two chunks of 0.1 s, at 250 and 400 ms, as SynthesisStream yields them."""

            def __iter__(self):
                import numpy as np

                for seq, at_ms in enumerate((250.0, 400.0)):
                    yield AudioChunk(seq=seq, samples=np.zeros(2400, np.float32),
                                     sample_rate=24_000, received_ms=at_ms)

            def collect(self):
                client.synthesize(text, voice)
                return result(text, ttfa=250.0)

        return Stream()


def test_condition_grid_and_labels():
    grid = latency.condition_grid({"short": "Hi.", "long": "Hello there, world."}, [1, 4],
                                  ["warm", "cold"], [False, True])
    assert len(grid) == 2 * 2 * 2 * 2
    assert grid[0].label == "short ×1 warm" and grid[-1].label == "long ×4 cold stream"
    with pytest.raises(ValueError):
        latency.Condition("x", "text", concurrency=0)
    with pytest.raises(ValueError):
        latency.Condition("x", "text", start="lukewarm")
    with pytest.raises(ValueError):
        latency.condition_grid({})


def test_records_carry_every_timing():
    frame = latency.run_campaign(ScriptedClient(), [latency.Condition("s", "Hello there.")], 3,
                                 warmup=0, progress=False)
    assert len(frame) == 3 and frame["ok"].all()
    row = frame.iloc[0]
    assert (row["client_ms"], row["delay_ms"], row["execution_ms"]) == (1000, 100, 800)
    assert row["overhead_ms"] == pytest.approx(100.0)
    assert (row["latents_ms"], row["generation_ms"], row["worker_total_ms"]) == (40, 700, 760)
    assert row["audio_s"] == pytest.approx(1.2)
    assert row["rtf"] == pytest.approx(0.8 / 1.2)
    assert row["text_chars"] == 12 and row["model_name"] == "tiny-xtts"
    assert math.isnan(row["ttfa_ms"])


def test_concurrency_is_reached_and_never_exceeded():
    client = ScriptedClient(barrier=threading.Barrier(3))
    latency.run_campaign(client, [latency.Condition("s", "Hi.", concurrency=3)], 6,
                         warmup=0, progress=False)
    assert client.calls == 6 and client.max_in_flight == 3


def test_warm_up_once_at_the_highest_warm_concurrency():
    client = ScriptedClient()
    conditions = [latency.Condition("s", "Hi.", concurrency=1),
                  latency.Condition("s", "Hi.", concurrency=3)]
    frame = latency.run_campaign(client, conditions, 3, warmup=2, progress=False)
    assert client.calls == 2 * 3 + 6 and client.max_in_flight <= 3
    assert frame["warmup"].sum() == 6
    assert list(frame.sort_values("started_s")["warmup"])[:6] == [True] * 6
    assert set(frame[frame["warmup"]]["condition"]) == {"s ×1 warm"}
    summary = latency.summarize(frame)
    assert list(summary["requests"]) == [3, 3]  # warm-ups are not counted


def test_a_restart_needs_a_new_warm_up():
    client = ScriptedClient()
    conditions = [latency.Condition("s", "Hi."), latency.Condition("s", "Hi.", start="cold"),
                  latency.Condition("t", "Hi.")]
    frame = latency.run_campaign(client, conditions, 1, warmup=1, cold_start=lambda: None,
                                 progress=False)
    assert list(frame[frame["warmup"]]["condition"]) == ["s ×1 warm", "t ×1 warm"]


def test_cold_requests_get_fresh_voices_and_no_warmup(tmp_path):
    from honora_tts.qa.reference_voice import write_synthetic_voice

    voice = write_synthetic_voice(tmp_path / "voice.wav", seconds=1.0)
    restarts = []
    client = ScriptedClient()
    frame = latency.run_campaign(
        client, [latency.Condition("s", "Hi.", start="cold")], 3, voice=voice, warmup=2,
        cold_start=lambda: restarts.append(1), scratch_dir=tmp_path / "cold", progress=False)
    assert restarts == [1] and not frame["warmup"].any()
    hashes = {hashlib.sha256(Path(v).read_bytes()).hexdigest() for v in client.voices}
    assert len(hashes) == 3
    assert hashlib.sha256(voice.read_bytes()).hexdigest() not in hashes


def test_cold_requests_without_a_voice_get_fresh_synthetic_voices(tmp_path):
    hashes = set()
    for _ in range(2):  # a second campaign must not reuse the first one's voices
        client = ScriptedClient()
        latency.run_campaign(client, [latency.Condition("s", "Hi.", start="cold")], 2,
                             scratch_dir=tmp_path / "cold", progress=False)
        assert None not in client.voices  # the default voice's latents are always cached
        hashes |= {hashlib.sha256(Path(v).read_bytes()).hexdigest() for v in client.voices}
    assert len(hashes) == 4


def test_failures_are_recorded_not_raised():
    frame = latency.run_campaign(ScriptedClient(fail_every=2),
                                 [latency.Condition("s", "Hi.")], 4, warmup=0, progress=False)
    failed = frame[~frame["ok"]]
    assert len(failed) == 2
    assert set(failed["error_type"]) == {"JobTimedOut"}
    assert failed["job_id"].str.startswith("job-").all()
    summary = latency.summarize(frame)
    assert summary.loc[0, "failed"] == 2 and summary.loc[0, "requests"] == 4


def test_streaming_records_time_to_first_audio():
    frame = latency.run_campaign(ScriptedClient(), [latency.Condition("s", "Hi.", stream=True)],
                                 2, warmup=0, progress=False)
    assert (frame["ttfa_ms"] == 250.0).all()
    assert latency.summarize(frame).loc[0, "p50_ttfa_ms"] == 250.0
    # each stream's chunk timeline is kept for its continuity
    assert list(frame["chunk_arrivals_ms"]) == [(250.0, 400.0)] * 2
    assert list(frame["chunk_audio_s"]) == [(0.1, 0.1)] * 2


def synthetic_frame() -> pd.DataFrame:
    rows = []
    for c, (label, chars, level) in enumerate([("short ×1 warm", 10, 1), ("long ×2 warm", 80, 2)]):
        for i in range(20):
            client_ms = 100.0 * (c + 1) + i
            rows.append({
                "condition": label, "text_label": label.split()[0], "text_chars": chars,
                "concurrency": level, "start": "warm", "stream": False, "warmup": i == 0,
                "index": i, "started_s": c * 10 + i * 0.5, "finished_s": c * 10 + i * 0.5 + 0.4,
                "ok": i != 5, "error_type": None if i != 5 else "JobFailed",
                "client_ms": client_ms, "delay_ms": 10.0, "execution_ms": client_ms - 30,
                "overhead_ms": 20.0, "ttfa_ms": math.nan, "audio_s": 1.0 + c,
                "rtf": 0.5 + c, "worker_id": f"w{i % 2}",
            })
    return pd.DataFrame(rows)


def test_percentiles_and_throughput():
    assert latency.percentile(range(1, 101), 50) == pytest.approx(50.5)
    assert latency.percentile([1.0, math.nan, 3.0], 50) == pytest.approx(2.0)
    assert math.isnan(latency.percentile([], 95))
    summary = latency.summarize(synthetic_frame())
    short = summary.set_index("condition").loc["short ×1 warm"]
    values = [100.0 + i for i in range(1, 20) if i != 5]
    assert short["p50_ms"] == pytest.approx(latency.percentile(values, 50))
    assert short["requests"] == 19 and short["failed"] == 1
    # 18 successful requests between the first start (0.5 s) and the last finish (9.9 s)
    assert short["requests_per_s"] == pytest.approx(18 / 9.4)


def test_plots_show_each_condition_and_mark_percentiles():
    frame = synthetic_frame()
    ecdf = latency.plot_ecdf(frame)
    ax = ecdf.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["short ×1 warm",
                                                                     "long ×2 warm"]
    notes = [t.get_text() for t in ax.texts]
    assert sum(n.startswith("p95") for n in notes) == 2 and sum(n.startswith("p99") for n in
                                                                 notes) == 2
    per_request = latency.plot_components(frame, per="request")
    labels = [t.get_text() for t in per_request.axes[0].get_xticklabels()]
    assert len(labels) == 38 and labels[0].startswith("#1 w")
    legend = [t.get_text() for t in per_request.axes[0].get_legend().get_texts()]
    assert legend == ["queue delay", "execution", "overhead", "failed (time waited)"]
    per_condition = latency.plot_components(frame)
    assert len(per_condition.axes[0].get_xticklabels()) == 2
    assert latency.plot_over_time(frame).axes[0].get_xlabel().startswith("request start")
    assert len(latency.plot_rtf_vs_length(frame).axes[0].collections) == 2
    throughput = latency.plot_throughput(latency.summarize(frame))
    assert len(throughput.axes) == 2  # requests/s and audio s/s


def test_save_figure(tmp_path):
    from honora_tts.qa.artifacts import save_figure

    path = save_figure(latency.plot_ecdf(synthetic_frame()), tmp_path / "a" / "e.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
