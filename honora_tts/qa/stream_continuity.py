"""Does a stream ever run dry? Each stream's chunk-arrival timeline played through a player's
buffer.

A streamed synthesis is heard by a player that waits until it holds ``buffer`` seconds of audio
(its start-up buffer), then plays in real time. When the next chunk has not arrived by the time
the audio before it has played, the player runs dry: it stalls until the chunk comes, then plays
on (no new start-up wait). A mean real-time factor below 1 does not prevent this: one slow chunk
mid-sentence does it. Per stream and buffer size this reports when playback starts (what the
buffer costs in time to first audio), each stall, the worst one, and whether it never ran dry;
over many streams, the share that never ran dry, against concurrency and buffer (50, 100,
200 ms by default).

Timelines come from the latency campaign (:mod:`honora_tts.qa.latency` records each streamed
request's chunk arrivals, the queue's ``/stream`` and the load-balancing mode alike) or from any
list of ``(arrival seconds, audio seconds)`` pairs (OpenAI's ``stream_format: audio`` read as it
arrives, :func:`timeline_of_pcm_stream`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Start-up buffers the report uses (milliseconds of audio held before playback starts).
BUFFERS_MS = (50, 100, 200)
#: A stall shorter than this is clock noise, not a gap anyone hears.
STALL_EPSILON_S = 0.001


@dataclass(frozen=True)
class StreamTimeline:
    """When each chunk of one stream arrived (seconds from the request) and how many seconds of
    audio it held, with the condition it was measured under."""

    arrivals_s: tuple[float, ...]
    durations_s: tuple[float, ...]
    mode: str = ""
    concurrency: int = 1
    label: str = ""

    def __post_init__(self) -> None:
        if len(self.arrivals_s) != len(self.durations_s):
            raise ValueError("a timeline needs one duration per arrival")
        if any(b < a for a, b in zip(self.arrivals_s, self.arrivals_s[1:], strict=False)):
            raise ValueError("chunk arrivals must not go back in time")
        if any(d < 0 for d in self.durations_s):
            raise ValueError("a chunk cannot hold negative audio")

    @property
    def audio_s(self) -> float:
        return float(sum(self.durations_s))

    @property
    def first_chunk_s(self) -> float:
        return self.arrivals_s[0] if self.arrivals_s else math.nan


@dataclass(frozen=True)
class Playback:
    """One stream played through a ``buffer_s`` start-up buffer. ``start_s``: when playback
    began (seconds from the request); ``stalls_s``: each time it ran dry, how long."""

    buffer_s: float
    start_s: float
    stalls_s: tuple[float, ...] = field(default_factory=tuple)

    @property
    def worst_underrun_s(self) -> float:
        return max(self.stalls_s, default=0.0)

    @property
    def total_stall_s(self) -> float:
        return float(sum(self.stalls_s))

    @property
    def never_dry(self) -> bool:
        return not self.stalls_s


def play(timeline: StreamTimeline, buffer_s: float) -> Playback:
    """Play ``timeline`` through a start-up buffer of ``buffer_s`` seconds (a stream shorter
    than the buffer starts when it is complete)."""
    if buffer_s < 0:
        raise ValueError("a start-up buffer cannot be negative")
    if not timeline.arrivals_s:
        return Playback(buffer_s, math.nan)
    held = 0.0
    start = timeline.arrivals_s[-1]
    for arrival, duration in zip(timeline.arrivals_s, timeline.durations_s, strict=True):
        held += duration
        if held >= buffer_s - 1e-9:
            start = arrival
            break
    stalls: list[float] = []
    clock = start  # when the audio before the next chunk has finished playing
    for arrival, duration in zip(timeline.arrivals_s, timeline.durations_s, strict=True):
        if arrival > clock + STALL_EPSILON_S:
            stalls.append(arrival - clock)
            clock = arrival
        clock += duration
    return Playback(buffer_s, start, tuple(stalls))


def continuity_table(timelines: Iterable[StreamTimeline],
                     buffers_ms: Sequence[int] = BUFFERS_MS) -> pd.DataFrame:
    """One row per (mode, concurrency, buffer): ``streams``, ``never_dry_share``,
    ``worst_underrun_ms`` (over all streams), ``p95_underrun_ms`` (of each stream's worst),
    ``median_stalls``, ``median_first_chunk_ms`` and ``median_start_ms`` (when playback starts:
    the first chunk plus what the buffer waits for)."""
    rows = []
    groups: dict[tuple[str, int], list[StreamTimeline]] = {}
    for timeline in timelines:
        if timeline.arrivals_s:
            groups.setdefault((timeline.mode, timeline.concurrency), []).append(timeline)
    for (mode, concurrency), members in sorted(groups.items()):
        for buffer_ms in buffers_ms:
            played = [play(t, buffer_ms / 1000) for t in members]
            worst = np.array([p.worst_underrun_s for p in played]) * 1000
            rows.append({
                "mode": mode, "concurrency": concurrency, "buffer_ms": buffer_ms,
                "streams": len(played),
                "never_dry_share": float(np.mean([p.never_dry for p in played])),
                "worst_underrun_ms": float(worst.max()),
                "p95_underrun_ms": float(np.percentile(worst, 95)),
                "median_stalls": float(np.median([len(p.stalls_s) for p in played])),
                "median_first_chunk_ms": float(np.median([t.first_chunk_s for t in members])
                                               * 1000),
                "median_start_ms": float(np.median([p.start_s for p in played]) * 1000),
            })
    columns = ["mode", "concurrency", "buffer_ms", "streams", "never_dry_share",
               "worst_underrun_ms", "p95_underrun_ms", "median_stalls",
               "median_first_chunk_ms", "median_start_ms"]
    return pd.DataFrame(rows, columns=columns)


def worst_stream(timelines: Sequence[StreamTimeline],
                 buffer_s: float = BUFFERS_MS[1] / 1000) -> StreamTimeline | None:
    """The stream whose longest stall through ``buffer_s`` was the longest (None: none)."""
    played = [t for t in timelines if t.arrivals_s]
    return max(played, key=lambda t: play(t, buffer_s).worst_underrun_s, default=None)


def timelines_from_frame(frame: pd.DataFrame, mode: str = "") -> list[StreamTimeline]:
    """The timelines of a latency campaign's streamed, measured, successful requests."""
    rows = frame
    if "warmup" in rows:
        rows = rows[~rows["warmup"].astype(bool)]
    rows = rows[rows["stream"].astype(bool) & rows["ok"].astype(bool)]
    return [
        StreamTimeline(
            arrivals_s=tuple(ms / 1000 for ms in row.chunk_arrivals_ms),
            durations_s=tuple(row.chunk_audio_s), mode=mode or str(row.mode),
            concurrency=int(row.concurrency), label=str(row.condition),
        )
        for row in rows.itertuples()
        if len(row.chunk_arrivals_ms)
    ]


def timeline_of_pcm_stream(pieces: Iterable[bytes], *, sample_rate: int = 24_000,
                           started: float | None = None, mode: str = "", concurrency: int = 1,
                           label: str = "") -> StreamTimeline:
    """The timeline of 16-bit mono PCM read as it arrives (e.g. OpenAI's ``response_format:
    pcm`` from ``iter_bytes()``): each piece's arrival from ``started`` (``time.perf_counter``;
    default: when the first piece is asked for)."""
    origin = time.perf_counter() if started is None else started
    arrivals, durations = [], []
    for piece in pieces:
        if piece:
            arrivals.append(time.perf_counter() - origin)
            durations.append(len(piece) / 2 / sample_rate)
    return StreamTimeline(tuple(arrivals), tuple(durations), mode=mode,
                          concurrency=concurrency, label=label)


# ------------------------------------------------------------------------------------ plots


def plot_continuity(table: pd.DataFrame, axes: Any = None) -> Figure:
    """Two panels against concurrency, one line per mode and buffer: the share of streams that
    never ran dry, and the worst underrun."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    else:
        fig = axes[0].figure
    share_ax, worst_ax = axes
    styles = ["-", "--", ":", "-."]
    for m, (mode, by_mode) in enumerate(table.groupby("mode", sort=True)):
        for buffer_ms, rows in by_mode.groupby("buffer_ms", sort=True):
            rows = rows.sort_values("concurrency")
            label = f"{mode or 'stream'}, {buffer_ms} ms buffer"
            style = styles[m % len(styles)]
            share_ax.plot(rows["concurrency"], rows["never_dry_share"] * 100, style,
                          marker="o", label=label)
            worst_ax.plot(rows["concurrency"], rows["worst_underrun_ms"], style, marker="o",
                          label=label)
    share_ax.set_ylim(-5, 105)
    share_ax.set_ylabel("streams that never ran dry (%)")
    worst_ax.set_ylabel("worst underrun (ms)")
    for ax in axes:
        ax.set_xlabel("streams at once")
        ax.grid(alpha=0.3)
    share_ax.legend(fontsize=8)
    share_ax.set_title("Continuity: never ran dry")
    worst_ax.set_title("Continuity: longest stall")
    fig.tight_layout()
    return fig


def plot_buffer(timeline: StreamTimeline, buffer_s: float = 0.1, ax: Any = None) -> Figure:
    """One stream's player buffer over time (seconds of audio held), its stalls shaded."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.5))
    else:
        fig = ax.figure
    playback = play(timeline, buffer_s)
    end = max(timeline.arrivals_s[-1], playback.start_s + timeline.audio_s
              + playback.total_stall_s)
    times = np.linspace(0, end, 600)
    received = np.array([sum(d for a, d in zip(timeline.arrivals_s, timeline.durations_s,
                                               strict=True) if a <= t) for t in times])
    played = np.zeros_like(times)
    clock, position, stall_spans = playback.start_s, 0.0, []
    for arrival, duration in zip(timeline.arrivals_s, timeline.durations_s, strict=True):
        if arrival > clock + STALL_EPSILON_S:
            stall_spans.append((clock, arrival))
            clock = arrival
        segment = (times >= clock) & (times < clock + duration)
        played[segment] = position + (times[segment] - clock)
        played[times >= clock + duration] = position + duration
        clock += duration
        position += duration
    ax.plot(times, received - played, label="audio buffered (s)")
    for begin, finish in stall_spans:
        ax.axvspan(begin, finish, color="red", alpha=0.25)
    ax.axvline(playback.start_s, color="gray", linestyle="--", label="playback starts")
    ax.set_xlabel("seconds since the request")
    ax.set_ylabel("seconds buffered")
    worst = playback.worst_underrun_s * 1000
    ax.set_title(f"{timeline.label or 'stream'}: {len(playback.stalls_s)} stall(s), worst "
                 f"{worst:.0f} ms ({buffer_s * 1000:.0f} ms start-up buffer)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
