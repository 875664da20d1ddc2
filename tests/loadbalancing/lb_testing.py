"""Helpers of the load-balancing tests (they run against the session's ``lb_localpod``)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from honora_tts.localpod.lb_pod import LoadBalancedPod

#: Few tokens: about 0.4 s of (noise) audio from the tiny model.
TINY = {"max_new_tokens": 8}


def voice_wav(path: Path, pitch_hz: float | None = None, seconds: float = 2.0) -> Path:
    """A voice file of a pitch of its own (default: random), so that no worker holds its
    latents from an earlier run."""
    pitch = pitch_hz or float(np.random.default_rng().uniform(110, 260))
    rate = 16_000
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * pitch * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, tone.astype("float32"), rate)
    return path


def worker_health(pod: LoadBalancedPod) -> dict[str, dict]:
    """Each ready worker's own ``/health`` facts, asked at its port (past the balancer)."""
    facts = {}
    for worker in pod.workers():
        if worker["health"] == "ready":
            answer = httpx.get(f"http://127.0.0.1:{worker['port']}/health", timeout=10)
            facts[worker["id"]] = answer.json()["health"]
    return facts


def decoded_seconds(fmt: str, data: bytes) -> float:
    """Seconds of audio FFmpeg (or, for raw PCM, arithmetic) finds in ``data``."""
    if fmt == "pcm":
        return len(data) / 2 / 24_000
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    return sum(f.samples for f in frames) / frames[0].sample_rate
