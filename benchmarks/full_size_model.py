"""The full-size XTTS-v2 architecture with random weights, as a checkpoint directory that the
real loading path (``honora_tts.model.load_model`` -> ``Xtts.load_checkpoint``) opens.

Same classes and sizes as the released model (30 GPT layers, 1024 channels, 16 heads, the
perceiver resampler, 1026 audio codes, 6681 text tokens, the HiFi-GAN decoder), so compute per
token is the release's; the weights are random, so its audio is noise and it never emits the
stop token (bound generation with ``max_new_tokens``). The tokenizer is the tiny model's BPE,
padded with unused tokens to the release's 6681 text tokens. The stop-audio code's logit is
biased away (``never_stop``), so a request always decodes ``max_new_tokens`` codes.

Built once per seed under the cache directory (about 1.8 GB), like the tiny checkpoint and
through the same helper (:func:`honora_tts.model.checkpoints.build_once`); see
docs/benchmarks.md.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from honora_tts.model.checkpoints import (
    apply_synthesis_defaults,
    build_once,
    is_built,
    recorded_metadata,
    tiny_checkpoint_dir,
    write_random_checkpoint,
)
from honora_tts.model.constants import DEFAULT_VOICE_FILE
from honora_tts.settings import cache_dir

#: Bumped whenever the build changes: cached checkpoints of another recipe are rebuilt.
#: 2: the stop-audio code is never chosen (``never_stop``), so every request is as long as asked.
RECIPE = 2
#: The released XTTS-v2 config.json values that differ from coqui's class defaults.
RELEASE_ARGS = {
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_use_perceiver_resampler": True,
}
RELEASE_TEXT_TOKENS = 6681
DEFAULT_MAX_NEW_TOKENS = 64


def build_full_size_checkpoint(directory: Path, *, seed: int = 0) -> Path:
    """Write ``model.pth``, ``config.json``, ``vocab.json``, ``default_voice.wav`` and
    ``honora_model.json`` into ``directory``."""
    from tokenizers import AddedToken, Tokenizer
    from TTS.tts.configs.xtts_config import XttsConfig

    tiny = tiny_checkpoint_dir(0)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(tiny / "vocab.json"))
    size = max(tokenizer.get_vocab().values()) + 1
    tokenizer.add_special_tokens(
        [AddedToken(f"[unused{i}]", special=True) for i in range(RELEASE_TEXT_TOKENS - size)]
    )
    tokenizer.save(str(directory / "vocab.json"))
    shutil.copyfile(tiny / DEFAULT_VOICE_FILE, directory / DEFAULT_VOICE_FILE)

    config = XttsConfig()
    args = config.model_args
    for name, value in RELEASE_ARGS.items():
        setattr(args, name, value)
    args.gpt_number_text_tokens = max(tokenizer.get_vocab().values()) + 1
    args.gpt_start_text_token = tokenizer.token_to_id("[START]")
    args.gpt_stop_text_token = tokenizer.token_to_id("[STOP]")
    apply_synthesis_defaults(config)

    return write_random_checkpoint(directory, config, seed, {
        "name": f"full-size-xtts-seed{seed} (random weights)",
        "default_max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
        "builder": "benchmarks.full_size_model.build_full_size_checkpoint",
        "recipe": RECIPE,
    }, never_stop=True)


def full_size_checkpoint_dir(seed: int = 0) -> Path:
    """The checkpoint for ``seed`` under the cache directory, built on first use
    (:func:`~honora_tts.model.checkpoints.build_once`)."""
    return build_once(
        cache_dir() / f"full-size-xtts-seed{seed}",
        lambda directory: is_built(directory, RECIPE),
        lambda scratch: build_full_size_checkpoint(scratch, seed=seed),
    )


def parameters(directory: Path) -> int | None:
    try:
        return int(recorded_metadata(directory)["parameters"])
    except (KeyError, TypeError, ValueError):
        return None


def main() -> None:  # pragma: no cover - manual use
    started = time.perf_counter()
    directory = full_size_checkpoint_dir()
    print(directory, parameters(directory), f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
