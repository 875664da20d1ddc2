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


def _stop_bias(directory):
    state = torch.load(directory / "model.pth", map_location="cpu", weights_only=True)["model"]
    return state["gpt.mel_head.bias"]


def test_a_never_stop_checkpoint_biases_the_stop_code_away_and_says_so(tmp_path):
    from TTS.tts.configs.xtts_config import XttsConfig

    tiny = tiny_checkpoint_dir(0)  # written without never_stop
    config = XttsConfig()
    config.load_json(str(tiny / "config.json"))
    stop = int(config.model_args.gpt_stop_audio_token)
    write_random_checkpoint(tmp_path, config, 0, {"name": "t"}, never_stop=True)

    plain, biased = _stop_bias(tiny), _stop_bias(tmp_path)
    assert float(biased[stop]) == NEVER_STOP_BIAS
    assert float(plain[stop]) != NEVER_STOP_BIAS
    assert torch.equal(torch.cat([biased[:stop], biased[stop + 1:]]),
                       torch.cat([plain[:stop], plain[stop + 1:]]))  # the same seed otherwise
    assert json.loads((tmp_path / METADATA_FILE).read_text())["never_stop"] is True
