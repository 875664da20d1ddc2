"""The RunPod worker: :class:`RunPodAdapter` turns RunPod jobs into calls of the one
:class:`~honora_tts.synthesis.SynthesisService` it holds; :mod:`~honora_tts.worker.start` reads
the worker's settings, builds both and runs RunPod's worker loop. Run it with
``python -m honora_tts.worker`` (or ``worker/handler.py``, the thin file RunPod's docs and the
Dockerfile expect)."""

from honora_tts.worker.runpod_adapter import RunPodAdapter
from honora_tts.worker.start import build_adapter, main, runpod_config

__all__ = [
    "RunPodAdapter",
    "build_adapter",
    "main",
    "runpod_config",
]
