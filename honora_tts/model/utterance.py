"""One utterance made of text pieces: how the pieces are joined and what synthesis returns.
Shared by :class:`~honora_tts.model.xtts_model.XttsModel` and the batched path
(:mod:`honora_tts.model.batched_synthesis`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Silence between two pieces of one text, and the fade at each joint (milliseconds).
PIECE_PAUSE_MS = 120.0
PIECE_FADE_MS = 10.0


@dataclass(frozen=True)
class Synthesis:
    """One utterance: float32 mono samples at 24 kHz
    (:data:`~honora_tts.model.constants.SAMPLE_RATE`)."""

    samples: np.ndarray
    pieces: int
    generation_ms: float
