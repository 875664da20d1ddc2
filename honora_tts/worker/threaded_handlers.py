"""Async RunPod handlers over the blocking ones: each job runs in a thread of its own.

The runpod SDK calls a plain (synchronous) handler on its event loop, so a worker that takes
several jobs at once (``concurrency_modifier`` above 1) would still run them one after another,
and while one runs the loop does nothing else: its pending job-take and the other jobs' results
wait. A job stuck in a slow voice download (a server dripping its headers) then held up every
other job of the worker until its deadline, and the SDK's take timed out, losing the jobs it
had been handed (localpod: ``result_lost``). These handlers run the blocking handler in a
thread (:func:`asyncio.to_thread`), so the loop stays free and the jobs run side by side: their
downloads overlap, and their model work meets in the batch scheduler (with batching) or queues
on the model's lock (without).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

Job = dict[str, Any]


def concurrent_handler(handle: Callable[[Job], Job]) -> Callable[[Job], Awaitable[Job]]:
    """An async RunPod handler running the blocking ``handle`` in a thread per job."""
    async def handler(job: Job) -> Job:
        return await asyncio.to_thread(handle, job)
    return handler


def concurrent_stream_handler(
    handle_stream: Callable[[Job], Iterator[Job]],
) -> Callable[[Job], AsyncIterator[Job]]:
    """An async-generator RunPod handler over the blocking generator ``handle_stream``: each
    item is fetched in a thread, so several streams run at once."""
    async def handler(job: Job) -> AsyncIterator[Job]:
        items = handle_stream(job)
        try:
            while True:
                item = await asyncio.to_thread(next, items, None)
                if item is None:
                    return
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                await asyncio.to_thread(close)
    return handler
