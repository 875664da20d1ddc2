"""The import path of the deployment guide's scripts, kept so they run unchanged::

    from tts_engines import engine_manager

``tts_engines.engine_manager`` *is* :mod:`honora_tts.engines.manager` (the same module object,
so engines created through either name are shared).
"""

from __future__ import annotations

import sys

from honora_tts import engine_manager

sys.modules[f"{__name__}.engine_manager"] = engine_manager

__all__ = ["engine_manager"]
