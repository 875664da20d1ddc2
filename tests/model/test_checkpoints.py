"""Random-weights checkpoints: a ``never_stop`` one can never choose the stop-audio code."""

from __future__ import annotations

import json

import torch

from honora_tts.model.checkpoints import (
    NEVER_STOP_BIAS,
    tiny_checkpoint_dir,
    write_random_checkpoint,
)
from honora_tts.model.constants import METADATA_FILE


def test_a_never_stop_checkpoint_biases_the_stop_code_away_and_says_so(tmp_path):
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    config.load_json(str(tiny_checkpoint_dir(0) / "config.json"))
    stop = int(config.model_args.gpt_stop_audio_token)
    for never_stop in (False, True):
        directory = tmp_path / str(never_stop)
        directory.mkdir()
        write_random_checkpoint(directory, config, 0, {"name": "t"}, never_stop=never_stop)
        bias = torch.load(directory / "model.pth", map_location="cpu",
                          weights_only=True)["model"]["gpt.mel_head.bias"]
        metadata = json.loads((directory / METADATA_FILE).read_text())
        assert metadata["never_stop"] is never_stop
        assert (float(bias[stop]) == NEVER_STOP_BIAS) is never_stop
        assert float(bias.abs().max() if not never_stop else bias[:stop].abs().max()) < 10
