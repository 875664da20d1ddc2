"""Engines behind the team's API (``generate``/``health_check``): ``xtts-runpod`` (the RunPod
endpoint or localpod, through :mod:`honora_tts.client`) and ``xtts-local`` (in process).

Get them through :func:`honora_tts.engines.manager.get_engine`.
"""

from honora_tts.engines.base import (
    VOICES_DIR_ENV,
    SynthesisEngine,
    output_format,
    resolve_voice_file,
    voices_dir,
)
from honora_tts.engines.xtts_local import XttsLocalEngine
from honora_tts.engines.xtts_runpod import XttsRunpodEngine

__all__ = [
    "VOICES_DIR_ENV",
    "SynthesisEngine",
    "XttsLocalEngine",
    "XttsRunpodEngine",
    "output_format",
    "resolve_voice_file",
    "voices_dir",
]
