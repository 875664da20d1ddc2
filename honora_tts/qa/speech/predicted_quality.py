"""Predicted quality: DNSMOS (Microsoft's non-intrusive speech quality predictor) through
``speechmos``, whose ONNX weights ship inside its wheel and run on onnxruntime's CPU provider:
nothing is downloaded.

P.835 gives SIG (speech signal), BAK (background) and OVRL (overall), P.808 one MOS; all on a
1-5 scale. The model reads 9.01 s windows at 16 kHz: a shorter clip is repeated to fill one
window (as speechmos does), a longer one is scored on at most :data:`MAX_WINDOWS` windows
spread evenly over it (speechmos would score one per second), and the scores are averaged.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from honora_tts import audio

BACKEND = "dnsmos"
MODEL = "speechmos 0.0.1.1 DNSMOS P.835 sig_bak_ovr.onnx + P.808 model_v8.onnx"
RATE = 16_000
WINDOW_S = 9.01
MAX_WINDOWS = 3
#: Below this much audio DNSMOS says nothing (NaN scores).
MIN_SECONDS = 0.1


@dataclass(frozen=True)
class PredictedQuality:
    """DNSMOS scores of one clip (NaN when the clip is too short), with the model named."""

    ovrl: float
    sig: float
    bak: float
    p808: float
    backend: str = BACKEND
    model: str = MODEL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DnsmosPredictor:
    """speechmos's DNSMOS model, loaded once per process (:meth:`shared`)."""

    _instance: DnsmosPredictor | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import os

        from speechmos import dnsmos

        models = os.path.join(os.path.dirname(dnsmos.__file__), "dnsmos_models")
        self._model = dnsmos.DNSMOS(os.path.join(models, "sig_bak_ovr.onnx"),
                                    os.path.join(models, "model_v8.onnx"))
        self._run_lock = threading.Lock()
        # librosa's mel spectrogram compiles (numba) on its first call: pay it here.
        self._score(np.zeros(int(WINDOW_S * RATE), dtype=np.float32) + 1e-4)

    @classmethod
    def shared(cls) -> DnsmosPredictor:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _score(self, window: np.ndarray) -> dict[str, float]:
        with self._run_lock:
            result = self._model(np.clip(window, -1.0, 1.0), RATE, False)
        return {key: float(value) for key, value in result.items()}

    def predict(self, samples: np.ndarray, sample_rate: int) -> PredictedQuality:
        """DNSMOS scores of mono float samples at any rate."""
        x = audio.resample(np.asarray(samples, dtype=np.float32), sample_rate, RATE)
        if x.size < MIN_SECONDS * RATE or not np.isfinite(x).all():
            return PredictedQuality(math.nan, math.nan, math.nan, math.nan)
        window = int(WINDOW_S * RATE)
        if x.size <= window:
            windows = [np.tile(x, window // x.size + 1)[:window]]
        else:
            starts = np.linspace(0, x.size - window, min(MAX_WINDOWS, 1 + x.size // window))
            windows = [x[int(s): int(s) + window] for s in starts]
        scores = [self._score(w) for w in windows]
        mean = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
        return PredictedQuality(ovrl=mean["ovrl_mos"], sig=mean["sig_mos"],
                                bak=mean["bak_mos"], p808=mean["p808_mos"])


def predict_quality(samples: np.ndarray, sample_rate: int) -> PredictedQuality:
    """DNSMOS scores of one clip with the process-wide model."""
    return DnsmosPredictor.shared().predict(samples, sample_rate)
