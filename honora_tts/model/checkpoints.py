"""Checkpoint directories: the weights checksum, the offline tiny XTTS, and the one
build-once-under-a-lock helper every built checkpoint (tiny here, the benchmarks' full-size one)
goes through."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honora_tts.files import file_lock, file_sha256, write_atomically
from honora_tts.model.constants import (
    CHECKPOINT_FILES,
    DEFAULT_VOICE_FILE,
    GPT_COND_CHUNK_LEN,
    METADATA_FILE,
)
from honora_tts.model.coqui_import import skip_unused_sklearn_import
from honora_tts.model.reference_voice import write_reference_voice
from honora_tts.protocol import SYNTHESIS_DEFAULTS
from honora_tts.settings import cache_dir

if TYPE_CHECKING:
    from TTS.tts.configs.xtts_config import XttsConfig

logger = logging.getLogger(__name__)

#: The tiny model's bound on GPT codes per piece: its random weights never emit the stop token.
TINY_DEFAULT_MAX_NEW_TOKENS = 64
#: Bumped whenever build_tiny_checkpoint changes: cached tiny checkpoints of another recipe are
#: rebuilt.
TINY_RECIPE = 1
CHECKSUM_SUFFIX = ".sha256.json"


# --------------------------------------------------------------------------- checksums


def _checksum_records(path: Path) -> list[Path]:
    fallback = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return [
        path.with_name(path.name + CHECKSUM_SUFFIX),
        cache_dir() / "checksums" / f"{fallback}.json",
    ]


def weights_checksum(path: Path) -> str:
    """SHA-256 of a (large) weights file, remembered next to it (or in the cache directory when
    its directory is read-only) keyed by size and modification time."""
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    records = _checksum_records(path)
    for record in records:
        try:
            saved = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and all(saved.get(k) == v for k, v in key.items()):
            sha = saved.get("sha256")
            if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha):
                return sha
    sha = file_sha256(path)
    payload = json.dumps({**key, "sha256": sha, "file": path.name}).encode()
    for record in records:
        try:
            write_atomically(record, payload)
            break
        except OSError:
            continue
    return sha


# --------------------------------------------------------------------------- building


def build_once(
    final: Path, is_current: Callable[[Path], bool], build: Callable[[Path], Any]
) -> Path:
    """``final`` once it is current, else built by ``build(scratch)`` and renamed into place.
    Safe when several processes (or threads) ask at once: one builds under a file lock
    (``final`` + ``.lock``), into a temporary directory beside ``final``; the others wait and
    reuse it. A directory of another recipe (``is_current`` false) is replaced."""
    if is_current(final):
        return final
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"{final.name}.lock"):
        if is_current(final):
            return final
        if final.exists():
            shutil.rmtree(final)
        scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
        try:
            started = time.perf_counter()
            build(scratch)
            # The checksum record stores the file's mtime, which a rename keeps.
            os.rename(scratch, final)
            logger.info("built %s in %.1f s", final, time.perf_counter() - started)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return final


def recorded_metadata(directory: Path) -> dict[str, Any]:
    """The checkpoint's ``honora_model.json`` (empty when missing or unreadable)."""
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def is_built(directory: Path, recipe: int) -> bool:
    """The directory holds a complete checkpoint built by ``recipe``."""
    if not all((directory / name).is_file() for name in (*CHECKPOINT_FILES, METADATA_FILE)):
        return False
    return recorded_metadata(directory).get("recipe") == recipe


def apply_synthesis_defaults(config: XttsConfig) -> None:
    """Write the synthesis defaults (:data:`honora_tts.protocol.SYNTHESIS_DEFAULTS`) into a
    checkpoint's config, as the XTTS-v2 release's ``config.json`` carries them."""
    config.temperature = float(SYNTHESIS_DEFAULTS["temperature"])
    config.repetition_penalty = float(SYNTHESIS_DEFAULTS["repetition_penalty"])
    config.top_p = float(SYNTHESIS_DEFAULTS["top_p"])
    config.top_k = int(SYNTHESIS_DEFAULTS["top_k"])
    config.gpt_cond_len = int(SYNTHESIS_DEFAULTS["gpt_cond_len"])
    config.gpt_cond_chunk_len = GPT_COND_CHUNK_LEN
    config.max_ref_len = int(SYNTHESIS_DEFAULTS["max_ref_length"])


# --------------------------------------------------------------------------- the tiny checkpoint

_TINY_CORPUS = (
    "the quick brown fox jumps over the lazy dog while the band plays a slow song",
    "hello world, this is a test of the speech system. how are you today?",
    "she sells sea shells by the sea shore and the shells she sells are surely sea shells",
    "one two three four five six seven eight nine ten eleven twelve twenty hundred thousand",
    "el veloz murciélago hindú comía feliz cardillo y kiwi. la cigüeña tocaba el saxofón",
    "portez ce vieux whisky au juge blond qui fume. où est la gare? très bien, merci",
    "victor jagt zwölf boxkämpfer quer über den großen sylter deich. guten tag!",
    "quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!",
    "à noite, vovô kowalsky vê o ímã cair no pé do pinguim queixoso e vovó põe açúcar",
    "pchnąć w tę łódź jeża lub ośm skrzyń fig. zażółć gęślą jaźń",
    "pijamalı hasta yağız şoföre çabucak güvendi. günaydın",
    "съешь же ещё этих мягких французских булок, да выпей чаю. привет мир",
    "pa's wijze lynx bezag vroom het fikse aquaduct. goedemorgen",
    "příliš žluťoučký kůň úpěl ďábelské ódy. dobrý den",
    "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت. مرحبا بالعالم",
    "árvíztűrő tükörfúrógép. jó napot kívánok",
    "nǐ hǎo shì jiè. jīn tiān tiān qì hěn hǎo. konnichiwa sekai. annyeonghaseyo",
    "नमस्ते दुनिया। आज मौसम अच्छा है।",
)


def _tiny_alphabet() -> list[str]:
    ranges = [(0x20, 0x7F), (0xA0, 0x250), (0x370, 0x400), (0x400, 0x530), (0x600, 0x700),
              (0x900, 0x980), (0x1E00, 0x1F00)]
    return [chr(c) for lo, hi in ranges for c in range(lo, hi) if chr(c).isprintable()]


def build_tiny_checkpoint(directory: Path, *, seed: int = 0) -> Path:
    """Build the tiny XTTS into ``directory`` (created): ``vocab.json`` (a small BPE with XTTS's
    special and language tokens), ``config.json``, ``model.pth`` (random weights from ``seed``;
    the same seed gives byte-identical weights), ``default_voice.wav`` and
    ``honora_model.json``. Loadable by the real ``Xtts.load_checkpoint``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    skip_unused_sklearn_import()
    from TTS.tts.configs.xtts_config import XttsConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = XttsConfig()
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]"] + [f"[{x}]" for x in config.languages]
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=specials, initial_alphabet=_tiny_alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_TINY_CORPUS) * 4, trainer)
    tokenizer.save(str(directory / "vocab.json"))

    args = config.model_args
    args.gpt_layers = 2
    args.gpt_n_model_channels = 256
    args.gpt_n_heads = 4
    args.decoder_input_dim = 256
    args.gpt_max_audio_tokens = 320
    args.gpt_use_perceiver_resampler = True
    args.gpt_number_text_tokens = max(tokenizer.get_vocab().values()) + 1
    args.gpt_start_text_token = tokenizer.token_to_id("[START]")
    args.gpt_stop_text_token = tokenizer.token_to_id("[STOP]")
    apply_synthesis_defaults(config)

    source = write_reference_voice(directory / DEFAULT_VOICE_FILE)
    return write_random_checkpoint(directory, config, seed, {
        "name": f"tiny-xtts-seed{seed} (random weights)",
        "default_max_new_tokens": TINY_DEFAULT_MAX_NEW_TOKENS,
        "default_voice": source,
        "builder": "honora_tts.model.checkpoints.build_tiny_checkpoint",
        "recipe": TINY_RECIPE,
    })


#: The stop-audio code's logit bias in a ``never_stop`` checkpoint.
NEVER_STOP_BIAS = -1.0e4


def write_random_checkpoint(
    directory: Path, config: Any, seed: int, metadata: dict[str, Any], *,
    never_stop: bool = False,
) -> Path:
    """An XTTS of ``config`` with random weights drawn from ``seed``, saved as a checkpoint
    ``load_checkpoint`` opens (``model.pth``, ``config.json``) with honora's metadata (plus
    ``random_weights``, ``seed`` and ``parameters``) and its weights checksum. The tiny model
    and the benchmarks' full-size one are both made here.

    Random weights emit the stop-audio code now and then (about one step in a thousand when
    sampling), which ends that request early; ``never_stop`` gives that code a logit bias of
    :data:`NEVER_STOP_BIAS`, so every request runs to ``max_new_tokens`` (benchmarks that
    compare two ways of decoding need the same work on both)."""
    import torch
    from TTS.tts.models.xtts import Xtts

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Xtts(config)
    state = {name: tensor.detach().clone().contiguous() for name, tensor in
             model.state_dict().items()}
    if never_stop:
        state["gpt.mel_head.bias"][int(config.model_args.gpt_stop_audio_token)] = NEVER_STOP_BIAS
    buffer = io.BytesIO()
    torch.save({"model": state}, buffer)
    write_atomically(directory / "model.pth", buffer.getvalue())
    config.save_json(str(directory / "config.json"))
    recorded = {"random_weights": True, "seed": seed, "never_stop": never_stop,
                "parameters": sum(t.numel() for t in state.values()), **metadata}
    (directory / METADATA_FILE).write_text(json.dumps(recorded, indent=2) + "\n")
    weights_checksum(directory / "model.pth")
    return directory



def tiny_checkpoint_dir(seed: int = 0) -> Path:
    """The tiny checkpoint for ``seed`` under the cache directory, built on first use
    (:func:`build_once`)."""
    return build_once(
        cache_dir() / f"tiny-xtts-seed{seed}",
        lambda directory: is_built(directory, TINY_RECIPE),
        lambda scratch: build_tiny_checkpoint(scratch, seed=seed),
    )


def tiny_model_main(argv: list[str]) -> int:
    """``honora-tts tiny-model [--seed N] [--dir D]``: build the tiny checkpoint, print its
    directory."""
    parser = argparse.ArgumentParser(
        prog="honora-tts tiny-model",
        description="Build the offline tiny XTTS checkpoint (random weights: its audio is noise).",
    )
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="build into this directory instead of the cache directory")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    if options.dir is not None:
        directory = build_tiny_checkpoint(options.dir, seed=options.seed)
    else:
        directory = tiny_checkpoint_dir(options.seed)
    sha = weights_checksum(directory / "model.pth")
    print(directory)
    print(f"model.pth sha256 {sha} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0
