"""honora-tts: verified XTTS-v2 voice cloning on RunPod serverless.

``from honora_tts import engine_manager`` is the team's entry point
(:mod:`honora_tts.engines.manager`); it is imported on first use, so ``import honora_tts``
stays light.
"""

from __future__ import annotations

from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    if name == "engine_manager":
        from honora_tts.engines import manager

        return manager
    raise AttributeError(f"module 'honora_tts' has no attribute {name!r}")
