"""P11 stream continuity: does a streamed synthesis ever run dry, against concurrency, in both
ways of being called, and what a small first chunk buys in time to first audio?

Two endpoints side by side, each one worker with the tiny model taking up to 4 requests at once
(``HONORA_CONCURRENCY=4``, so concurrent streams share the worker as they would on
RunPod): the queue endpoint (localpod, streaming workers, RunPod's ``/stream``) and the
load-balancing one (localpod ``--load-balancing``, the worker's own HTTP stream). For each
concurrency level, rounds of that many streams at once (honora's client, ``synthesize_stream``),
each chunk's arrival recorded; every stream is played through a 50, 100 and 200 ms start-up
buffer (:mod:`honora_tts.qa.stream_continuity`): the share of streams that never ran dry and the
worst underrun. At concurrency 1, the first chunk's size is varied (``stream_first_chunk_size``:
GPT codes before the first audio; the vocoder holds back about 8.5 codes of audio it may still
change): time to first audio and continuity per size.

Random weights never stop: every stream is ``max_new_tokens`` codes (about 3 s of audio).
"""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.options import BenchOptions
from benchmarks.quiet_logs import quiet_library_logs
from benchmarks.report import BenchResult, fmt

TEXT = "A stream that never runs dry keeps the listener with the speaker to the last word."
WORKER_CONCURRENCY = 4
#: Stream chunk size (GPT codes) of the protocol's defaults, and the first-chunk sizes tried.
CHUNK = 20
FIRST_CHUNKS = (12, 16, 20)


def _streams(client: Any, concurrency: int, rounds: int, params: dict[str, Any],
             mode: str) -> list[Any]:
    """``rounds`` rounds of ``concurrency`` streams at once; their timelines."""
    from honora_tts.qa.stream_continuity import StreamTimeline

    def one(_: int) -> StreamTimeline:
        stream = client.synthesize_stream(TEXT, params=params, deadline_s=600)
        chunks = list(stream)
        return StreamTimeline(tuple(c.received_ms / 1000 for c in chunks),
                              tuple(c.duration_s for c in chunks), mode=mode,
                              concurrency=concurrency,
                              label=f"first {params.get('stream_first_chunk_size', CHUNK)}")

    timelines = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(rounds):
            timelines += list(pool.map(one, range(concurrency)))
    return timelines


def run(options: BenchOptions, result: BenchResult) -> None:
    from honora_tts.client import EndpointClient
    from honora_tts.localpod import LocalPod
    from honora_tts.localpod.lb_pod import LoadBalancedPod
    from honora_tts.qa.stream_continuity import BUFFERS_MS, continuity_table

    quiet_library_logs()
    levels = (1, 2) if options.quick else (1, 2, 4)
    rounds = options.repeats_or(3, 1)
    tokens = 24 if options.quick else 64
    firsts = (12, CHUNK) if options.quick else FIRST_CHUNKS
    base = {"max_new_tokens": tokens, "stream_chunk_size": CHUNK, "seed": 11}
    env = {"HONORA_CONCURRENCY": str(WORKER_CONCURRENCY), "OMP_NUM_THREADS": "1"}
    queue = LocalPod(workers=1, model="tiny", streaming=True, worker_env=env,
                     max_concurrency_per_worker=WORKER_CONCURRENCY)
    balanced = LoadBalancedPod(1, model="tiny", worker_env=env,
                               max_concurrency_per_worker=WORKER_CONCURRENCY)
    timelines: list[Any] = []
    schedules: dict[int, list[Any]] = {}
    try:
        queue.start(wait_ready=False)
        balanced.start(wait_ready=False)
        queue.wait_ready(timeout_s=900)
        balanced.wait_ready(timeout_s=900)
        clients = {
            "queue": EndpointClient(queue.endpoint_id, queue.api_key, queue.base_url),
            "load_balancing": EndpointClient(balanced.endpoint_id, balanced.api_key,
                                             balanced.base_url, mode="load_balancing"),
        }
        for mode, client in clients.items():
            _streams(client, 1, 1, base, mode)  # warm: latents, first-call costs
        for concurrency in levels:  # the modes interleaved, level by level
            for mode, client in clients.items():
                timelines += _streams(client, concurrency, rounds, base, mode)
        for first in firsts:
            params = {**base, "stream_first_chunk_size": first}
            for mode, client in clients.items():
                schedules.setdefault(first, []).extend(
                    _streams(client, 1, rounds, params, mode))
        for client in clients.values():
            client.close()
    finally:
        queue.stop()
        balanced.stop()

    table = continuity_table(timelines)
    result.data.update(
        text=TEXT, params=base, rounds=rounds, levels=list(levels),
        worker_concurrency=WORKER_CONCURRENCY, table=table.to_dict("records"),
        timelines=[{"mode": t.mode, "concurrency": t.concurrency, "label": t.label,
                    "arrivals_s": t.arrivals_s, "durations_s": t.durations_s}
                   for t in timelines + [t for ts in schedules.values() for t in ts]],
    )
    for row in table.itertuples():
        key = f"{row.mode}_c{row.concurrency}_{row.buffer_ms}ms"
        result.add(f"never_dry_{key}", f"{row.mode}, {row.concurrency} at once, "
                   f"{row.buffer_ms} ms buffer: streams never dry", row.never_dry_share * 100,
                   "%", spread=f"worst underrun {fmt(row.worst_underrun_ms)} ms, p95 "
                   f"{fmt(row.p95_underrun_ms)} ms, n={row.streams}; playback starts "
                   f"{fmt(row.median_start_ms)} ms")
        if row.buffer_ms == BUFFERS_MS[1]:
            result.add(f"worst_underrun_{row.mode}_c{row.concurrency}",
                       f"{row.mode}, {row.concurrency} at once: worst underrun (100 ms buffer)",
                       row.worst_underrun_ms, "ms")
    for first, members in schedules.items():
        first_ms = [t.first_chunk_s * 1000 for t in members]
        first_audio = [t.durations_s[0] for t in members]
        by_buffer = continuity_table(
            [type(t)(t.arrivals_s, t.durations_s, mode="all", concurrency=1) for t in members])
        never = {int(r.buffer_ms): r.never_dry_share * 100 for r in by_buffer.itertuples()}
        worst = {int(r.buffer_ms): r.worst_underrun_ms for r in by_buffer.itertuples()}
        result.add(f"first{first}_ttfa_ms", f"first chunk {first} codes: time to first audio",
                   statistics.median(first_ms), "ms",
                   spread=f"first chunk holds {fmt(statistics.median(first_audio) * 1000)} ms; "
                   f"never dry {fmt(never[50])} / {fmt(never[100])} / {fmt(never[200])} % at "
                   f"50/100/200 ms; worst underrun {fmt(worst[100])} ms at 100 ms, n="
                   f"{len(members)}")
    result.notes.append(
        f"tiny model on the CPU, {tokens} codes per stream (random weights never stop), chunks "
        f"of {CHUNK} codes; one worker per endpoint taking {WORKER_CONCURRENCY} at once; "
        f"{rounds} round(s) per level; time to first audio = the first chunk's arrival at the "
        "client (what a 0 ms buffer waits)"
    )
