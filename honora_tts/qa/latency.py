"""Latency campaigns through the endpoint client, and their plots.

A campaign sends requests under *conditions* (text length × concurrency × warm/cold × streaming)
and records, per request, what the caller waited (client ms), RunPod's queue delay and execution
time, the rest (overhead: HTTP, polling, decoding), the worker's stage timings, time to first
audio when streaming, the seconds of audio and the real-time factor.

Before the first *warm* condition the campaign sends warm-up rounds (recorded, flagged ``warmup``
and left out of the statistics), each as many requests at once as the highest warm concurrency,
so every worker that will serve has loaded its model and the voice's speaker latents. *Cold*
conditions send none; with ``cold_start`` (a callable that restarts the workers, e.g. localpod's)
they begin from fresh workers (and the next warm condition warms up again), and with a voice
each cold request carries a new copy of it (inaudible dither, new content hash), so the voice
download and speaker-latent extraction are paid on every request.
"""

from __future__ import annotations

import itertools
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from honora_tts.qa.reference_voice import write_synthetic_voice

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from honora_tts.client import EndpointClient

Start = Literal["warm", "cold"]
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class Condition:
    """One cell of the campaign grid."""

    text_label: str
    text: str
    concurrency: int = 1
    start: Start = "warm"
    stream: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.start not in ("warm", "cold"):
            raise ValueError(f"start must be 'warm' or 'cold', got {self.start!r}")
        if not self.text.strip():
            raise ValueError(f"text {self.text_label!r} is empty")

    @property
    def label(self) -> str:
        mode = " stream" if self.stream else ""
        return f"{self.text_label} ×{self.concurrency} {self.start}{mode}"


def condition_grid(texts: Mapping[str, str], concurrency: Iterable[int] = (1,),
                   starts: Iterable[str] = ("warm",),
                   streaming: Iterable[bool] = (False,)) -> list[Condition]:
    """Every combination of the given texts (label -> text), concurrency levels, warm/cold
    starts and streaming modes."""
    grid = [
        Condition(label, text, int(level), start, bool(stream))  # type: ignore[arg-type]
        for (label, text), level, start, stream in itertools.product(
            texts.items(), concurrency, starts, streaming)
    ]
    if not grid:
        raise ValueError("the campaign grid is empty: give at least one text")
    return grid


@dataclass(frozen=True)
class RequestRecord:
    """What one request measured. Times in ms; ``started_s``/``finished_s`` count from the start
    of the campaign. Failed requests keep their error and the time they took."""

    condition: str
    text_label: str
    text_chars: int
    concurrency: int
    start: str
    stream: bool
    warmup: bool
    index: int
    started_s: float
    finished_s: float
    ok: bool
    error_type: str | None = None
    error_code: str | None = None
    error: str | None = None
    client_ms: float = math.nan
    delay_ms: float = math.nan
    execution_ms: float = math.nan
    overhead_ms: float = math.nan
    submit_ms: float = math.nan
    polls: int = 0
    voice_fetch_ms: float = math.nan
    latents_ms: float = math.nan
    generation_ms: float = math.nan
    encode_ms: float = math.nan
    worker_total_ms: float = math.nan
    ttfa_ms: float = math.nan
    audio_s: float = math.nan
    rtf: float = math.nan
    client_rtf: float = math.nan
    worker_id: str | None = None
    request_id: str | None = None
    job_id: str | None = None
    cache_voice: str | None = None
    cache_latents: str | None = None
    model_name: str | None = None
    git_sha: str | None = None
    audio_path: str = ""
    #: The endpoint's mode (``queue``, ``load_balancing``) and, for a stream, when each chunk
    #: arrived (ms from the request) and how much audio it held (s): its continuity
    #: (:mod:`honora_tts.qa.stream_continuity`).
    mode: str = "queue"
    chunk_arrivals_ms: tuple[float, ...] = ()
    chunk_audio_s: tuple[float, ...] = ()


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else math.nan


def record_from_result(result: Any, *, condition: Condition, warmup: bool, index: int,
                       started_s: float, finished_s: float) -> RequestRecord:
    """A record of a successful :class:`~honora_tts.client.SynthesisResult`."""
    timings = result.timings
    stages = timings.stages
    audio_s = float(result.duration_s)
    client_ms = float(timings.client_ms)
    execution_ms = _num(timings.execution_ms)
    overhead = timings.overhead_ms
    return RequestRecord(
        condition=condition.label, text_label=condition.text_label,
        text_chars=len(condition.text), concurrency=condition.concurrency,
        start=condition.start, stream=condition.stream, warmup=warmup, index=index,
        started_s=started_s, finished_s=finished_s, ok=True,
        client_ms=client_ms, delay_ms=_num(timings.delay_ms), execution_ms=execution_ms,
        overhead_ms=_num(overhead), submit_ms=_num(timings.submit_ms), polls=int(timings.polls),
        voice_fetch_ms=_num(stages.voice_fetch_ms) if stages else math.nan,
        latents_ms=_num(stages.latents_ms) if stages else math.nan,
        generation_ms=_num(stages.generation_ms) if stages else math.nan,
        encode_ms=_num(stages.encode_ms) if stages else math.nan,
        worker_total_ms=_num(stages.total_ms) if stages else math.nan,
        ttfa_ms=_num(timings.time_to_first_audio_ms), audio_s=audio_s,
        rtf=execution_ms / 1000.0 / audio_s if audio_s > 0 else math.nan,
        client_rtf=client_ms / 1000.0 / audio_s if audio_s > 0 else math.nan,
        worker_id=result.worker_id, request_id=result.request_id, job_id=result.job_id,
        cache_voice=result.cache.voice if result.cache else None,
        cache_latents=result.cache.latents if result.cache else None,
        model_name=result.version.model_name, git_sha=result.version.git_sha,
    )


def record_from_error(exc: Exception, *, condition: Condition, warmup: bool, index: int,
                      started_s: float, finished_s: float) -> RequestRecord:
    """A record of a failed request: the error's type, code (when the worker sent one) and
    message, and how long the caller waited for it."""
    return RequestRecord(
        condition=condition.label, text_label=condition.text_label,
        text_chars=len(condition.text), concurrency=condition.concurrency,
        start=condition.start, stream=condition.stream, warmup=warmup, index=index,
        started_s=started_s, finished_s=finished_s, ok=False,
        error_type=type(exc).__name__, error_code=getattr(exc, "code", None),
        error=str(exc)[:500], client_ms=(finished_s - started_s) * 1000.0,
        request_id=getattr(exc, "request_id", None), job_id=getattr(exc, "job_id", None),
        worker_id=getattr(exc, "worker_id", None),
    )


def fresh_voice_copy(voice: Path, directory: Path, index: int, nonce: int = 0) -> Path:
    """A copy of ``voice`` with inaudible dither (±1 LSB at 16 bits): same voice, new content
    hash, so workers must download it and extract its speaker latents again. The dither comes
    from ``(nonce, index)``: a campaign picks a random nonce, since workers keep their caches
    from one campaign to the next."""
    from honora_tts import audio
    from honora_tts.qa.audio_metrics import read_audio

    samples, rate = read_audio(voice)
    rng = np.random.default_rng([nonce, index])
    dithered = samples + rng.choice([-1.0, 1.0], size=samples.size).astype(np.float32) / 32767.0
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{Path(voice).stem}-cold{index}.wav"
    path.write_bytes(audio.encode(dithered, rate, "wav"))
    return path


class Campaign:
    """Runs conditions against one client and collects :class:`RequestRecord` rows."""

    def __init__(self, client: EndpointClient, *, voice: str | Path | None = None,
                 language: str = "en", params: Mapping[str, Any] | None = None,
                 deadline_s: float | None = None, warmup: int = 1,
                 cold_start: Callable[[], None] | None = None,
                 scratch_dir: str | Path = "artifacts/latency-voices",
                 audio_dir: str | Path | None = None) -> None:
        self.client = client
        self.audio_dir = Path(audio_dir) if audio_dir else None
        self.voice = Path(voice) if voice else None
        self.language = language
        self.params = dict(params or {})
        self.deadline_s = deadline_s
        self.warmup = max(0, int(warmup))
        self.cold_start = cold_start
        self.scratch_dir = Path(scratch_dir)
        self.records: list[RequestRecord] = []
        self._origin = time.perf_counter()
        self._lock = threading.Lock()
        self._cold_copies = itertools.count()
        self._cold_nonce = secrets.randbits(64)
        self._warm = False

    def _clock(self) -> float:
        return time.perf_counter() - self._origin

    def request(self, condition: Condition, index: int, *, warmup: bool = False,
                voice: Path | None = None, label: str | None = None) -> RequestRecord:
        """Send one request and record it (never raises for a failed request). ``label``
        overrides the condition's label in the record (warm-ups carry the label of the
        condition they prepare)."""
        from honora_tts.client import HonoraClientError

        voice = voice if voice is not None else self.voice
        started = self._clock()
        try:
            chunks: list[Any] = []
            if condition.stream:
                stream = self.client.synthesize_stream(
                    condition.text, voice=voice, language=self.language,
                    params=self.params or None, deadline_s=self.deadline_s)
                chunks = list(stream)
                result = stream.collect()
            else:
                result = self.client.synthesize(
                    condition.text, voice=voice, language=self.language,
                    params=self.params or None, deadline_s=self.deadline_s)
        except HonoraClientError as exc:
            record = record_from_error(exc, condition=condition, warmup=warmup, index=index,
                                       started_s=started, finished_s=self._clock())
        else:
            record = record_from_result(result, condition=condition, warmup=warmup, index=index,
                                        started_s=started, finished_s=self._clock())
            record = replace(
                record, mode=getattr(self.client, "mode", "queue"),
                chunk_arrivals_ms=tuple(round(c.received_ms, 2) for c in chunks),
                chunk_audio_s=tuple(round(c.duration_s, 5) for c in chunks),
            )
            if self.audio_dir is not None and not warmup:
                name = "".join(c if c.isalnum() else "_" for c in condition.label)
                saved = result.save(self.audio_dir / f"{name}-{index}.{result.format}")
                record = replace(record, audio_path=str(saved))
        if label is not None:
            record = replace(record, condition=label)
        with self._lock:
            self.records.append(record)
        return record

    def warm_up(self, condition: Condition, concurrency: int) -> None:
        """``warmup`` rounds of ``concurrency`` requests at once, recorded as warm-ups."""
        for _ in range(self.warmup):
            warm = Condition(condition.text_label, condition.text, concurrency,
                             condition.start, condition.stream)
            self._parallel(warm, [self.voice] * concurrency, warmup=True, on_done=None,
                           label=condition.label)
        self._warm = True

    def run_condition(self, condition: Condition, requests: int,
                      on_done: Callable[[RequestRecord], None] | None = None,
                      warmup_concurrency: int | None = None) -> None:
        """Restart (cold, with ``cold_start``) or warm up once (warm), then send ``requests``
        requests, at most ``condition.concurrency`` at a time."""
        if requests < 1:
            raise ValueError("requests must be at least 1")
        voices: list[Path | None] = [self.voice] * requests
        if condition.start == "cold":
            if self.cold_start is not None:
                self.cold_start()
                self._warm = False
            # Without a voice of its own a cold request would use the workers' default voice,
            # whose latents are always cached: it gets fresh copies of a synthetic one instead.
            source = self.voice or write_synthetic_voice(self.scratch_dir / "synthetic_voice.wav")
            voices = [fresh_voice_copy(source, self.scratch_dir, next(self._cold_copies),
                                       self._cold_nonce)
                      for _ in range(requests)]
        elif self.warmup and not self._warm:
            self.warm_up(condition, warmup_concurrency or condition.concurrency)
        self._parallel(condition, voices, warmup=False, on_done=on_done)

    def _parallel(self, condition: Condition, voices: Sequence[Path | None], *, warmup: bool,
                  on_done: Callable[[RequestRecord], None] | None,
                  label: str | None = None) -> None:
        with ThreadPoolExecutor(max_workers=condition.concurrency) as pool:
            futures = [pool.submit(self.request, condition, i, warmup=warmup, voice=v,
                                   label=label)
                       for i, v in enumerate(voices)]
            for future in futures:
                record = future.result()
                if on_done is not None:
                    on_done(record)

    def frame(self) -> pd.DataFrame:
        """Every record so far, in order of start time."""
        frame = pd.DataFrame([asdict(r) for r in self.records],
                             columns=list(RequestRecord.__dataclass_fields__))
        return frame.sort_values("started_s", ignore_index=True)


def run_campaign(client: EndpointClient, conditions: Sequence[Condition], requests: int, *,
                 voice: str | Path | None = None, language: str = "en",
                 params: Mapping[str, Any] | None = None, deadline_s: float | None = None,
                 warmup: int = 1, cold_start: Callable[[], None] | None = None,
                 scratch_dir: str | Path = "artifacts/latency-voices",
                 progress: bool = True, audio_dir: str | Path | None = None) -> pd.DataFrame:
    """Run every condition in turn (``requests`` each) and return one row per request, with a
    progress bar over all requests. ``warmup``: warm-up rounds before the first warm condition
    (0: none). ``audio_dir``: keep each measured request's audio there (``audio_path``)."""
    from tqdm.auto import tqdm

    if not conditions:
        raise ValueError("no conditions to run")
    campaign = Campaign(client, voice=voice, language=language, params=params,
                        deadline_s=deadline_s, warmup=warmup, cold_start=cold_start,
                        scratch_dir=scratch_dir, audio_dir=audio_dir)
    warm_levels = [c.concurrency for c in conditions if c.start == "warm"]
    with tqdm(total=len(conditions) * requests, desc="latency campaign", unit="req",
              disable=not progress) as bar:
        for condition in conditions:
            bar.set_postfix_str(condition.label)
            campaign.run_condition(condition, requests, on_done=lambda _r: bar.update(1),
                                   warmup_concurrency=max(warm_levels, default=1))
    return campaign.frame()


# ------------------------------------------------------------------------------- summaries


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that count: no warm-up requests."""
    return frame[~frame["warmup"].astype(bool)] if "warmup" in frame else frame


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation) of the finite values; NaN when none."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(np.percentile(array, q)) if array.size else math.nan


def throughput(frame: pd.DataFrame) -> tuple[float, float]:
    """(successful requests per second, audio seconds per second) over the span of ``frame``."""
    if frame.empty:
        return math.nan, math.nan
    span = float(frame["finished_s"].max() - frame["started_s"].min())
    ok = frame[frame["ok"].astype(bool)]
    if span <= 0:
        return math.nan, math.nan
    return len(ok) / span, float(ok["audio_s"].sum()) / span


def summarize(frame: pd.DataFrame, metric: str = "client_ms") -> pd.DataFrame:
    """One row per condition: requests, failures, p50/p95/p99 of ``metric``, mean delay,
    execution and overhead, p50 time to first audio, median RTF and throughput."""
    rows = []
    data = measured(frame)
    for label, group in data.groupby("condition", sort=False):
        ok = group[group["ok"].astype(bool)]
        per_s, audio_per_s = throughput(group)
        row: dict[str, Any] = {
            "condition": label,
            "text_label": group["text_label"].iloc[0],
            "text_chars": int(group["text_chars"].iloc[0]),
            "concurrency": int(group["concurrency"].iloc[0]),
            "start": group["start"].iloc[0],
            "stream": bool(group["stream"].iloc[0]),
            "requests": len(group),
            "failed": int((~group["ok"].astype(bool)).sum()),
        }
        for q in PERCENTILES:
            row[f"p{q}_ms"] = percentile(ok[metric], q)
        row.update(
            mean_delay_ms=float(ok["delay_ms"].mean()) if len(ok) else math.nan,
            mean_execution_ms=float(ok["execution_ms"].mean()) if len(ok) else math.nan,
            mean_overhead_ms=float(ok["overhead_ms"].mean()) if len(ok) else math.nan,
            p50_ttfa_ms=percentile(ok["ttfa_ms"], 50),
            median_rtf=percentile(ok["rtf"], 50),
            requests_per_s=per_s,
            audio_s_per_s=audio_per_s,
        )
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- plots


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def plot_ecdf(frame: pd.DataFrame, metric: str = "client_ms",
              ax: Any = None) -> Figure:
    """ECDF of ``metric`` per condition, with p50, p95 and p99 marked on each curve."""
    import matplotlib.pyplot as plt

    data = measured(frame)
    data = data[data["ok"].astype(bool)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 5))
    else:
        fig = ax.figure
    labels = list(dict.fromkeys(data["condition"]))
    colors = _colors(labels)
    markers = {50: "o", 95: "s", 99: "^"}
    for label in labels:
        values = np.sort(data.loc[data["condition"] == label, metric].dropna().to_numpy(float))
        if not values.size:
            continue
        fractions = np.arange(1, values.size + 1) / values.size
        ax.step(values, fractions, where="post", color=colors[label], label=label)
        for q, marker in markers.items():
            value = percentile(values, q)
            ax.plot(value, q / 100.0, marker=marker, color=colors[label], markersize=7,
                    markeredgecolor="black")
            ax.annotate(f"p{q} {value:,.0f}", (value, q / 100.0), textcoords="offset points",
                        xytext=(6, -10 if q == 50 else 4), fontsize=7, color=colors[label])
    ax.set_xlabel(f"{metric.replace('_ms', '')} latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_ylim(0, 1.05)
    ax.set_title("Latency ECDF per condition (o p50, ■ p95, ▲ p99)")
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_components(frame: pd.DataFrame, per: Literal["condition", "request"] = "condition",
                    ax: Any = None) -> Figure:
    """Where the time went, stacked: queue delay, execution, and overhead (client time neither
    queued nor executing). Per condition (means) or per request (in start order); failed
    requests are drawn as red bars of the time they took."""
    import matplotlib.pyplot as plt

    data = measured(frame)
    if ax is None:
        width = 9 if per == "condition" else max(7, 0.35 * len(data) + 2)
        fig, ax = plt.subplots(figsize=(min(width, 18), 5))
    else:
        fig = ax.figure
    parts = [("delay_ms", "queue delay", "tab:orange"), ("execution_ms", "execution", "tab:blue"),
             ("overhead_ms", "overhead", "tab:gray")]
    if per == "condition":
        ok = data[data["ok"].astype(bool)]
        table = ok.groupby("condition", sort=False)[[p[0] for p in parts]].mean()
        labels = list(table.index)
        failed = np.zeros(len(labels))
    else:
        table = data.sort_values("started_s").reset_index(drop=True)
        labels = [f"#{i + 1} {worker}" if isinstance(worker, str) and worker else f"#{i + 1}"
                  for i, worker in enumerate(table["worker_id"])]
        failed = np.where(~table["ok"].astype(bool), table["client_ms"].fillna(0.0), 0.0)
    positions = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for column, name, color in parts:
        values = np.nan_to_num(table[column].to_numpy(float)) if len(labels) else bottom
        values = np.clip(values, 0.0, None)
        ax.bar(positions, values, bottom=bottom, color=color, label=name)
        bottom = bottom + values
    if failed.any():
        ax.bar(positions, failed, color="tab:red", label="failed (time waited)")
    ax.set_xticks(positions, labels, rotation=30 if per == "condition" else 90, ha="right",
                  fontsize=8)
    ax.set_ylabel("ms")
    ax.set_title("Delay / execution / overhead " + ("(mean per condition)" if per == "condition"
                                                     else "per request"))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_over_time(frame: pd.DataFrame, metric: str = "client_ms", ax: Any = None) -> Figure:
    """``metric`` against the time each request started: cold starts show up as spikes.
    Warm-up requests are drawn hollow, failures as red crosses."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.5))
    else:
        fig = ax.figure
    labels = list(dict.fromkeys(frame["condition"]))
    colors = _colors(labels)
    for label in labels:
        group = frame[frame["condition"] == label]
        ok = group[group["ok"].astype(bool)]
        warm = ok[ok["warmup"].astype(bool)]
        real = ok[~ok["warmup"].astype(bool)]
        ax.scatter(real["started_s"], real[metric], color=colors[label], label=label, s=22)
        if len(warm):
            ax.scatter(warm["started_s"], warm[metric], facecolors="none",
                       edgecolors=colors[label], s=22)
    failed = frame[~frame["ok"].astype(bool)]
    if len(failed):
        ax.scatter(failed["started_s"], failed["client_ms"], marker="x", color="red", s=40,
                   label="failed")
    ax.set_xlabel("request start (s since the campaign began)")
    ax.set_ylabel(f"{metric} (ms)")
    ax.set_title("Latency over time (hollow: warm-up requests)")
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=8)
    return fig


def plot_rtf_vs_length(frame: pd.DataFrame, ax: Any = None) -> Figure:
    """Real-time factor (execution seconds per audio second) against text length."""
    import matplotlib.pyplot as plt

    data = measured(frame)
    data = data[data["ok"].astype(bool)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    levels = sorted(data["concurrency"].unique())
    colors = _colors([str(c) for c in levels])
    for level in levels:
        group = data[data["concurrency"] == level]
        ax.scatter(group["text_chars"], group["rtf"], color=colors[str(level)], s=22,
                   label=f"concurrency {level}", alpha=0.8)
    ax.axhline(1.0, color="red", linestyle=":", linewidth=1, label="real time")
    ax.set_xlabel("text length (characters)")
    ax.set_ylabel("real-time factor")
    ax.set_title("Real-time factor against text length (below 1: faster than real time)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_throughput(summary: pd.DataFrame, ax: Any = None) -> Figure:
    """Requests per second (solid) and audio seconds per second (dashed) against concurrency,
    one line per text and start."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    audio_ax = ax.twinx()
    groups = summary.groupby(["text_label", "start", "stream"], sort=False)
    colors = _colors([str(key) for key, _ in groups])
    for key, group in groups:
        group = group.sort_values("concurrency")
        name = f"{key[0]} {key[1]}" + (" stream" if key[2] else "")
        ax.plot(group["concurrency"], group["requests_per_s"], marker="o",
                color=colors[str(key)], label=f"{name}: req/s")
        audio_ax.plot(group["concurrency"], group["audio_s_per_s"], marker="s", linestyle="--",
                      color=colors[str(key)], label=f"{name}: audio s/s")
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("requests per second")
    audio_ax.set_ylabel("audio seconds per second")
    levels = sorted(summary["concurrency"].unique()) if len(summary) else []
    if levels:
        ax.set_xticks(levels)
    ax.set_title("Throughput against concurrency")
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    audio_handles = audio_ax.get_legend_handles_labels()
    if handles[0]:
        ax.legend(handles[0] + audio_handles[0], handles[1] + audio_handles[1], fontsize=7)
    return fig
