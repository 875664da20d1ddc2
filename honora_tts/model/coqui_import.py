"""Importing coqui-tts without what XTTS never uses."""

from __future__ import annotations

import sys


def skip_unused_sklearn_import() -> None:
    """Keep transformers from importing scikit-learn, a third of a worker's import time on a
    CPU (measured 22-26 s against 13-20 s). transformers loads it only for assisted generation's
    ROC calibration (``candidate_generator``), which XTTS never uses; scikit-learn is installed
    because librosa needs it. Must run before coqui-tts is first imported."""
    if "transformers.generation.candidate_generator" in sys.modules:
        return
    from transformers.utils import import_utils

    import_utils._sklearn_available = False
