"""The tiny XTTS (random weights) loaded once per module in a temporary cache directory, and two
speaker latents (the default voice and a second, different one)."""

from __future__ import annotations

import numpy as np
import pytest

from honora_tts import audio
from honora_tts import model as honora_model
from honora_tts.files import file_sha256


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HONORA_CACHE_DIR", str(tmp_path_factory.mktemp("honora-cache")))
        patch.setenv("HONORA_DEVICE", "cpu")
        patch.delenv("HONORA_XTTS_CHECKPOINT", raising=False)
        patch.delenv("HONORA_FP16", raising=False)
        # One intra-op thread: two OpenMP threads collapse on a shared 2-core machine.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        honora_model.forget_loaded_models()
        loaded = honora_model.load_model("tiny")
        yield loaded
        honora_model.forget_loaded_models()  # stops its scheduler
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def voices(model, tmp_path_factory):
    """Two different speakers' latents."""
    path, sha = model.default_voice()
    first = model.latents(path, sha).latents
    t = np.arange(2 * honora_model.SAMPLE_RATE) / honora_model.SAMPLE_RATE
    rng = np.random.default_rng(3)
    samples = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.3 * rng.standard_normal(t.size))
    other = tmp_path_factory.mktemp("voice") / "other.wav"
    other.write_bytes(audio.encode(samples.astype(np.float32), honora_model.SAMPLE_RATE, "wav"))
    second = model.latents(other, file_sha256(other)).latents
    return first, second
