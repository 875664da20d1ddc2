"""The deployment guide's scripts import ``from tts_engines import engine_manager``."""

from __future__ import annotations

import subprocess
import sys


def test_tts_engines_is_the_same_engine_manager() -> None:
    import tts_engines.engine_manager as by_submodule

    from honora_tts import engine_manager as honora_manager
    from tts_engines import engine_manager

    assert engine_manager is honora_manager is by_submodule
    assert "xtts-runpod" in engine_manager.available_engines()


def test_a_guide_script_imports_it_in_a_fresh_interpreter() -> None:
    script = ("from tts_engines import engine_manager; "
              "print(','.join(engine_manager.available_engines()))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert "xtts-runpod" in out.stdout.strip().split(",")
