"""Stream continuity: chunk-arrival timelines played through a player's start-up buffer."""

from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest

from honora_tts.qa import stream_continuity as sc
from honora_tts.qa.latency import RequestRecord

matplotlib.use("Agg")


def _timeline(arrivals, durations, **meta) -> sc.StreamTimeline:
    return sc.StreamTimeline(tuple(arrivals), tuple(durations), **meta)


def test_a_stream_faster_than_real_time_never_runs_dry():
    # 0.4 s chunks every 0.3 s from 0.5 s on
    stream = _timeline([0.5 + 0.3 * i for i in range(6)], [0.4] * 6)
    for buffer_s in (0.0, 0.05, 0.2):
        playback = sc.play(stream, buffer_s)
        assert playback.never_dry and playback.worst_underrun_s == 0.0
        assert playback.start_s == 0.5


def test_a_late_chunk_stalls_the_player_by_exactly_its_lateness():
    # chunks of 0.2 s at 0, 0.1, then one 0.5 s late, then on time again
    stream = _timeline([0.0, 0.1, 0.9, 1.0], [0.2, 0.2, 0.2, 0.2])
    playback = sc.play(stream, 0.0)
    # playing from 0: chunk 3 is due at 0.4, arrives at 0.9 -> 0.5 s stall; chunk 4 due at 1.1
    assert playback.stalls_s == pytest.approx((0.5,))
    assert not playback.never_dry and playback.total_stall_s == pytest.approx(0.5)


def test_a_larger_start_up_buffer_absorbs_a_gap_and_costs_its_wait():
    # 0.1 s chunks every 0.12 s (real-time factor 1.2): a player runs dry without a buffer
    arrivals = [0.3 + 0.12 * i for i in range(10)]
    stream = _timeline(arrivals, [0.1] * 10)
    small, large = sc.play(stream, 0.05), sc.play(stream, 0.5)
    assert not small.never_dry and small.start_s == pytest.approx(0.3)
    assert large.start_s == pytest.approx(arrivals[4])  # five chunks make 0.5 s
    assert large.total_stall_s < small.total_stall_s


def test_a_stream_shorter_than_the_buffer_starts_when_it_is_complete():
    stream = _timeline([0.2, 0.25], [0.03, 0.03])
    playback = sc.play(stream, 0.2)
    assert playback.start_s == 0.25 and playback.never_dry
    assert math.isnan(sc.play(_timeline([], []), 0.1).start_s)


def test_timelines_refuse_nonsense():
    with pytest.raises(ValueError, match="one duration per arrival"):
        _timeline([0.1], [])
    with pytest.raises(ValueError, match="back in time"):
        _timeline([0.2, 0.1], [0.1, 0.1])
    with pytest.raises(ValueError, match="negative"):
        sc.play(_timeline([0.1], [0.1]), -1)


def test_the_table_reports_shares_and_worst_underruns_per_concurrency_and_buffer():
    smooth = _timeline([0.1 * i for i in range(5)], [0.2] * 5, mode="queue", concurrency=1)
    gappy = _timeline([0.0, 1.0], [0.1, 0.1], mode="queue", concurrency=2)
    steady = _timeline([0.0, 0.05], [0.1, 0.1], mode="queue", concurrency=2)
    table = sc.continuity_table([smooth, gappy, steady], buffers_ms=(50, 200))
    assert list(table["concurrency"]) == [1, 1, 2, 2]
    one = table[(table.concurrency == 1) & (table.buffer_ms == 50)].iloc[0]
    assert one.never_dry_share == 1.0 and one.worst_underrun_ms == 0.0
    two = table[(table.concurrency == 2) & (table.buffer_ms == 50)].iloc[0]
    assert two.streams == 2 and two.never_dry_share == 0.5
    assert two.worst_underrun_ms == pytest.approx(900.0)
    two_big = table[(table.concurrency == 2) & (table.buffer_ms == 200)].iloc[0]
    # 200 ms: the gappy stream waits for its second chunk (1 s) and never runs dry
    assert two_big.worst_underrun_ms == 0.0 and two_big.never_dry_share == 1.0
    assert two_big.median_start_ms == pytest.approx(525.0)  # median of 1.0 s and 0.05 s
    assert two_big.median_start_ms > two.median_start_ms


def test_campaign_rows_become_timelines():
    base = {"condition": "short ×2 warm stream", "text_label": "short", "text_chars": 5,
            "concurrency": 2, "start": "warm", "stream": True, "index": 0, "started_s": 0.0,
            "finished_s": 1.0, "ok": True}
    rows = [
        RequestRecord(**base, warmup=False, chunk_arrivals_ms=(100.0, 300.0),
                      chunk_audio_s=(0.2, 0.2), mode="load_balancing"),
        RequestRecord(**base, warmup=True, chunk_arrivals_ms=(50.0,), chunk_audio_s=(0.2,)),
        RequestRecord(**{**base, "stream": False}, warmup=False),
    ]
    frame = pd.DataFrame([r.__dict__ for r in rows])
    [timeline] = sc.timelines_from_frame(frame)
    assert timeline.arrivals_s == (0.1, 0.3) and timeline.mode == "load_balancing"
    assert timeline.concurrency == 2 and timeline.audio_s == pytest.approx(0.4)


def test_a_pcm_stream_read_as_it_arrives_is_a_timeline():
    timeline = sc.timeline_of_pcm_stream(iter([b"\0" * 4800, b"", b"\0" * 9600]),
                                         concurrency=3)
    assert timeline.durations_s == (0.1, 0.2) and timeline.concurrency == 3
    assert timeline.arrivals_s[0] <= timeline.arrivals_s[1]


def test_the_plots_draw_what_the_table_says():
    stream = _timeline([0.0, 0.1, 0.9], [0.2, 0.2, 0.2], mode="queue", label="late chunk")
    table = sc.continuity_table([stream])
    figure = sc.plot_continuity(table)
    share_ax, worst_ax = figure.axes
    assert len(share_ax.lines) == len(sc.BUFFERS_MS)
    assert worst_ax.lines[0].get_ydata()[0] == pytest.approx(table.worst_underrun_ms[0])
    buffer_figure = sc.plot_buffer(stream, 0.05)
    assert "1 stall(s)" in buffer_figure.axes[0].get_title()
