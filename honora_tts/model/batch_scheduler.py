"""Continuous batching: one thread decodes every submitted request together.

:meth:`BatchScheduler.submit` queues a :class:`~honora_tts.model.gpt_decoder.DecodeRequest`
and returns a :class:`~concurrent.futures.Future` of its
:class:`~honora_tts.model.gpt_decoder.DecodeResult`. The scheduler thread loops: take the
requests that arrived (up to ``max_batch`` rows in all), run their prompts, merge them into the
running batch, run one decoding step for every row, read the stop codes when it is time
(:meth:`~honora_tts.model.gpt_decoder.GptDecoder.needs_sync`), hand streaming rows their chunks
and finished rows their results, repeat. A request joins between two steps of the others; a
finished or cancelled row leaves at once. A lone request is a batch of one.

Cancelling: :meth:`BatchScheduler.cancel`, or the request's own
:class:`~honora_tts.cancellation.CancelToken`: a waiting request never starts, a decoding one
leaves its batch before the next step, and its future raises :class:`DecodeCancelled`.

Failures stay with their request: a request the decoder refuses fails alone before it joins;
an error in a forward pass of several rows splits them in halves and retries each half, down to
the one row that fails (its batch mates go on). Out of memory (``torch.cuda.OutOfMemoryError``
or a ``RuntimeError`` saying so) splits the batch the same way, empties the CUDA cache and lowers
the rows per forward pass for the rest of the scheduler's life; a single row that still runs out
of memory after :data:`SINGLE_ROW_RETRIES` retries fails with :class:`DecodeOutOfMemory`.

:meth:`BatchScheduler.call` runs other model work (the vocoder) on the same thread between
steps, so the model is only ever driven by one thread and the GPT and vocoder never fight for
the device or the CPU cores.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any, TypeVar

from honora_tts.model.gpt_decoder import (
    DecodeRequest,
    DecodeResult,
    DecodingBatch,
    GptDecoder,
    Row,
    is_out_of_memory,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Retries of a lone row that ran out of memory before it fails.
SINGLE_ROW_RETRIES = 2


class DecodeCancelled(Exception):
    """The request was cancelled (:meth:`BatchScheduler.cancel` or its token) before it
    finished; its row has left the batch."""


class DecodeOutOfMemory(RuntimeError):
    """A single row ran out of device memory even alone; lower ``max_new_tokens`` or the text
    length, or give the worker a device with more free memory."""


class SchedulerClosed(RuntimeError):
    """The scheduler was closed; no request is taken any more."""


@dataclass
class SchedulerStats:
    """Counters of a scheduler's life (for health answers and benchmarks)."""

    max_batch: int = 0
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    steps: int = 0
    prefills: int = 0
    row_steps: int = 0
    syncs: int = 0
    max_rows: int = 0
    oom_splits: int = 0
    error_splits: int = 0
    rows_per_forward: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class BatchScheduler:
    """Decodes submitted requests in batches of up to ``max_batch`` rows on its own thread
    (started on the first :meth:`submit`)."""

    def __init__(self, decoder: GptDecoder, *, max_batch: int = 8,
                 name: str = "honora-batch-decoder"):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.decoder = decoder
        self._max_batch = max_batch
        self.name = name
        self._lock = threading.Condition()
        self._waiting: deque[tuple[DecodeRequest, Future[DecodeResult]]] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._batches: list[DecodingBatch] = []
        self._rows: dict[Future[DecodeResult], Row] = {}
        self._rows_per_forward = max_batch
        self._closed = False
        self._thread: threading.Thread | None = None
        self.stats = SchedulerStats(max_batch=max_batch, rows_per_forward=max_batch)

    # ------------------------------------------------------------------ public

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def resize(self, max_batch: int) -> None:
        """Hold up to ``max_batch`` rows from the next admission on (rows decoding now stay)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        with self._lock:
            self._max_batch = max_batch
            self._rows_per_forward = max_batch
            self.stats.max_batch = self.stats.rows_per_forward = max_batch
            self._lock.notify_all()

    def submit(self, request: DecodeRequest) -> Future[DecodeResult]:
        """Queue ``request``; it joins the batch at the next step. A malformed request gives a
        future that has already failed with the decoder's
        :class:`~honora_tts.model.gpt_decoder.DecodeRequestError`."""
        future: Future[DecodeResult] = Future()
        try:
            self.decoder.check(request)
        except Exception as exc:  # noqa: BLE001 - the caller reads it from the future
            future.set_running_or_notify_cancel()
            future.set_exception(exc)
            return future
        with self._lock:
            if self._closed:
                raise SchedulerClosed("the batch scheduler is closed")
            self._waiting.append((request, future))
            self.stats.submitted += 1
            self._ensure_thread()
            self._lock.notify_all()
        return future

    def decode(self, request: DecodeRequest) -> DecodeResult:
        """Submit ``request`` and wait for its result. Its cancellation token (and an interrupt
        of the waiting thread) takes the row out at once: :class:`DecodeCancelled`."""
        future = self.submit(request)
        token = request.cancel
        try:
            if token is None:
                return future.result()
            with token.on_cancel(lambda: self._cancel_quietly(future)):
                try:
                    return future.result()
                except CancelledError:
                    raise DecodeCancelled("cancelled before it started decoding") from None
        finally:
            if not future.done():  # the caller gave up: free the row
                self.cancel(future)

    def cancel(self, future: Future[Any]) -> bool:
        """Take a request out: a waiting one never starts, a decoding one leaves its batch
        before the next step (its future then raises :class:`DecodeCancelled`). False when it
        had already finished."""
        if future.cancelled():
            return True
        if future.cancel():
            self._count("cancelled")
            return True
        with self._lock:
            row = self._rows.get(future)
            if row is None or future.done():
                return False
            row.cancelled = True
            self._lock.notify_all()
            return True

    def _cancel_quietly(self, future: Future[Any]) -> None:
        self.cancel(future)

    def call(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the scheduler thread between two steps (model work other than the
        GPT, e.g. the vocoder); its result or exception comes back in the future."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise SchedulerClosed("the batch scheduler is closed")
            self._calls.append((fn, future))
            self._ensure_thread()
            self._lock.notify_all()
        return future

    def active_rows(self) -> int:
        with self._lock:
            return sum(len(b) for b in self._batches) + len(self._waiting)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop taking requests, fail the waiting ones with :class:`SchedulerClosed`, let the
        thread finish the rows it decodes, and wait for it."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            self._lock.notify_all()
            thread = self._thread
        for _, future in waiting:
            if future.set_running_or_notify_cancel():
                future.set_exception(SchedulerClosed("the batch scheduler was closed"))
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ thread

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._waiting or self._calls or self._batches or self._closed):
                    self._lock.wait()
                if self._closed and not (self._batches or self._calls):
                    return
                room = self._max_batch - sum(len(b) for b in self._batches)
                arrivals = [self._waiting.popleft()
                            for _ in range(min(room, len(self._waiting)))]
                calls = list(self._calls)
                self._calls.clear()
            try:
                for fn, call_future in calls:
                    if call_future.set_running_or_notify_cancel():
                        try:
                            call_future.set_result(fn())
                        except BaseException as exc:  # noqa: BLE001 - handed to the caller
                            call_future.set_exception(exc)
                self._admit(arrivals)
                self._leave()
                self._step_all()
                self._leave()
            except Exception:  # a bug here must not leave callers waiting forever
                logger.exception("batch scheduler loop failed; failing its rows")
                self._fail_everything()

    def _admit(self, arrivals: list[tuple[DecodeRequest, Future[DecodeResult]]]) -> None:
        rows: list[Row] = []
        for request, future in arrivals:
            if request.cancel is not None and request.cancel.cancelled:
                self.cancel(future)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                row = self.decoder.row(request)
            except Exception as exc:  # noqa: BLE001 - this request fails alone
                self._finish_error(future, exc)
                continue
            row.ticket = future
            with self._lock:
                self._rows[future] = row
            rows.append(row)
        limit = self._rows_per_forward
        for start in range(0, len(rows), limit):
            self._prefill(rows[start:start + limit])

    def _prefill(self, rows: list[Row], retries: int = 0) -> None:
        try:
            batch = self.decoder.prefill(rows)
        except Exception as exc:  # noqa: BLE001 - split, retry or fail the one row
            self._recover(exc, len(rows))
            if len(rows) > 1:
                half = len(rows) // 2
                self._prefill(rows[:half])
                self._prefill(rows[half:])
            elif is_out_of_memory(exc) and retries < SINGLE_ROW_RETRIES:
                self._prefill(rows, retries + 1)
            else:
                self._fail_row(rows[0], exc)
            return
        self.stats.prefills += 1
        self._sync(batch)
        with self._lock:
            batches = list(self._batches)
        for index, existing in enumerate(batches):
            if len(existing) + len(batch) <= self._rows_per_forward:
                merged = self.decoder.merge(existing, batch)
                with self._lock:
                    self._batches[index] = merged
                break
        else:
            with self._lock:
                self._batches.append(batch)

    def _step_all(self) -> None:
        with self._lock:
            pending = [(batch, 0) for batch in self._batches if len(batch)]
        stepped: list[DecodingBatch] = []
        while pending:
            batch, retries = pending.pop(0)
            try:
                self.decoder.step(batch)
            except Exception as exc:  # noqa: BLE001 - split, retry or fail the one row
                self._recover(exc, len(batch))
                if len(batch) > 1:
                    first, second = self.decoder.split(batch)
                    pending[:0] = [(first, 0), (second, 0)]
                elif is_out_of_memory(exc) and retries < SINGLE_ROW_RETRIES:
                    pending.insert(0, (batch, retries + 1))
                else:
                    self._fail_row(batch.rows[0], exc)
                continue
            stepped.append(batch)
            self.stats.steps += 1
            self.stats.row_steps += len(batch)
            if self.decoder.needs_sync(batch):
                self._sync(batch)
        with self._lock:
            self._batches = stepped
            self.stats.max_rows = max(self.stats.max_rows, sum(len(b) for b in stepped))

    def _recover(self, exc: BaseException, rows: int) -> None:
        if is_out_of_memory(exc):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.stats.oom_splits += int(rows > 1)
            if rows > 1:
                self._rows_per_forward = max(1, min(self._rows_per_forward, rows // 2))
                self.stats.rows_per_forward = self._rows_per_forward
            logger.warning("out of memory with %d rows in one forward pass: %s; at most %d "
                           "rows per pass from now on", rows, exc, self._rows_per_forward)
        else:
            self.stats.error_splits += int(rows > 1)
            logger.warning("forward pass of %d rows failed (%s: %s)%s", rows,
                           type(exc).__name__, exc,
                           "; retrying in halves" if rows > 1 else "")

    def _leave(self) -> None:
        """Take finished and cancelled rows out of their batches and answer them (a finished
        row is one the host knows is done: at its bound, or stopped as of the last sync)."""
        with self._lock:
            batches = list(self._batches)
        kept: list[DecodingBatch] = []
        for batch in batches:
            keep = []
            for index, row in enumerate(batch.rows):
                if row.error is not None:
                    self._finish_error(row.ticket, row.error)
                elif row.wants_cancel:
                    self._finish_error(row.ticket, DecodeCancelled("cancelled while decoding"),
                                       counter="cancelled")
                elif row.done and batch.unsynced == 0:
                    self._finish(row, self.decoder.result(batch, index))
                else:
                    keep.append(index)
            remaining = self.decoder.select(batch, keep)
            if len(remaining):
                kept.append(remaining)
        with self._lock:
            self._batches = kept

    def _sync(self, batch: DecodingBatch) -> None:
        """Read the stop codes, then hand the rows that are due their chunks."""
        self.decoder.sync(batch)
        self.stats.syncs += 1
        for index, row in enumerate(batch.rows):
            if row.error is not None or row.wants_cancel:
                continue
            try:
                self.decoder.emit(batch, index)
            except Exception as exc:  # noqa: BLE001 - the consumer's failure is its row's alone
                logger.warning("a row's latent consumer failed: %s", exc)
                row.error = exc

    def _finish(self, row: Row, result: DecodeResult) -> None:
        future = row.ticket
        with self._lock:
            self._rows.pop(future, None)
        if not future.done():
            future.set_result(result)
            self._count("completed")

    def _finish_error(self, future: Future[Any], exc: BaseException,
                      counter: str = "failed") -> None:
        with self._lock:
            self._rows.pop(future, None)
        if not future.done():
            future.set_exception(exc)
            self._count(counter)

    def _fail_row(self, row: Row, exc: BaseException) -> None:
        if is_out_of_memory(exc):
            exc = DecodeOutOfMemory(f"one row ran out of memory even alone: {exc}")
        row.cancelled = True
        self._finish_error(row.ticket, exc)

    def _fail_everything(self) -> None:
        with self._lock:
            rows = list(self._rows.values())
            self._batches = []
        for row in rows:
            self._finish_error(row.ticket, RuntimeError("the batch scheduler failed; see the "
                                                        "worker log"))

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)


def wait_idle(scheduler: BatchScheduler, timeout: float = 10.0) -> bool:
    """True once the scheduler holds no rows (tests and benchmarks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduler.active_rows() == 0:
            return True
        time.sleep(0.01)
    return False
