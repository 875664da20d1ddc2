"""RunPod's async handlers over the blocking ones: each job in a thread of the worker's own pool,
stopped when RunPod stops it.

The runpod SDK calls a plain (synchronous) handler on its event loop: jobs would run one after
another, and while one ran the loop did nothing else (its job-take, the other jobs' results and
its per-job stop channel all waited). A job stuck in a slow voice download held up every other
job, and the SDK's take timed out, losing the jobs it had been handed. So every worker registers
one of these: the blocking handler runs in a :class:`JobPool` thread, the loop stays free, and
jobs run side by side (their downloads overlap, their decoding meets in the model's one batch).

The pool is the worker's own, sized to the jobs it holds (``HONORA_CONCURRENCY``): not asyncio's
default executor, which is shared with every other ``asyncio.to_thread`` of the process and
holds ``min(32, cores + 4)`` threads (6 on 2 cores).

Stopping (runpod >= 1.10 polls a per-job stop channel and cancels the job's task): the handler
catches the ``CancelledError``, cancels the job's :class:`~honora_tts.cancellation.CancelToken`
(the synthesis stops between two decoding steps, or between stages), and waits until the
thread's work has really stopped before letting the ``CancelledError`` go on. The SDK counts a
job's slot free when its task ends, so the slot is free only when the work is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from honora_tts.cancellation import CancelToken

log = logging.getLogger("honora_tts.worker")

Job = dict[str, Any]
T = TypeVar("T")
_END = object()


class JobPool:
    """The threads a worker's jobs run in: ``size`` of them, named ``honora-job-N``."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"a job pool needs at least one thread, got {size}")
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="honora-job")

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` in a pool thread; an asyncio future of its result."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


async def _until_stopped(work: asyncio.Future[Any]) -> None:
    """Wait for ``work`` to end however often this task is cancelled meanwhile (its thread
    cannot be interrupted: it stops at its token's next check)."""
    while not work.done():
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            continue
        except Exception:  # noqa: BLE001 - the work's own failure is not the stop's business
            return


def _job_id(job: Any) -> str:
    return str(job.get("id")) if isinstance(job, dict) else "?"


async def _stop(token: CancelToken, work: asyncio.Future[Any], job: Any) -> None:
    started = time.perf_counter()
    token.cancel(f"RunPod stopped job {_job_id(job)} (cancelled or timed out)")
    await _until_stopped(work)
    log.info("job %s stopped: its work ended %.0f ms after the stop signal", _job_id(job),
             (time.perf_counter() - started) * 1000)


def concurrent_handler(handle: Callable[[Job, CancelToken], Job],
                       pool: JobPool) -> Callable[[Job], Awaitable[Job]]:
    """An async RunPod handler running the blocking ``handle(job, token)`` in ``pool``."""
    async def handler(job: Job) -> Job:
        token = CancelToken()
        work = pool.submit(handle, job, token)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await _stop(token, work, job)
            raise
    return handler


def concurrent_stream_handler(
    handle_stream: Callable[[Job, CancelToken], Generator[Job, None, Any]], pool: JobPool,
) -> Callable[[Job], AsyncIterator[Job]]:
    """An async-generator RunPod handler over the blocking generator ``handle_stream(job,
    token)``: each item is fetched in ``pool``, so several streams run at once."""
    async def handler(job: Job) -> AsyncIterator[Job]:
        token = CancelToken()
        items = handle_stream(job, token)
        try:
            while True:
                step = pool.submit(next, items, _END)
                try:
                    item = await asyncio.shield(step)
                except asyncio.CancelledError:
                    await _stop(token, step, job)
                    raise
                if item is _END:
                    return
                yield item
        finally:
            await _until_stopped(pool.submit(items.close))
    return handler
