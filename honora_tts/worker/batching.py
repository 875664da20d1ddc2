"""The worker side of batched decoding: turn it on for the loaded model, and hand RunPod
handlers that let as many jobs run at once as the batch holds.

With ``rows`` > 1 the worker's ``concurrency_modifier`` answers ``rows``, so RunPod's worker loop
takes up to that many jobs; each runs the ordinary (blocking) handler in its own thread
(:mod:`honora_tts.worker.threaded_handlers`), and their GPT decoding meets in the model's batch
scheduler (:mod:`honora_tts.model.batch_scheduler`). With ``rows`` == 1 nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from honora_tts.model.batch_capacity import default_max_batch

log = logging.getLogger("honora_tts.worker")



def enable_batching(load_model: Callable[[], Any], wanted: int | None) -> int:
    """Rows the worker decodes together, batching turned on in the model when more than one.
    ``wanted`` is the ``HONORA_MAX_BATCH`` setting (None: the device's default, see
    :func:`~honora_tts.model.batch_capacity.default_max_batch`). A worker whose model does not
    load runs unbatched (its handlers answer ``model_not_ready``)."""
    try:
        model = load_model()
    except Exception as exc:  # noqa: BLE001 - the handlers answer model_not_ready themselves
        log.warning("no batching: the model did not load (%s)", exc)
        return 1
    rows = wanted or default_max_batch(model.coqui_model.gpt, model.device, fp16=model.fp16)
    if rows > 1:
        model.enable_batching(rows)
    log.info("decoding batch: %d row(s) on %s", rows, model.device)
    return rows


def concurrency_modifier(rows: int) -> Callable[[int], int]:
    """RunPod ``concurrency_modifier``: always ``rows`` jobs at once."""
    def modifier(_current: int) -> int:
        return rows
    return modifier
