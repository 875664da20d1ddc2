"""The XTTS-v2 model layer, on the real coqui-tts classes.

- :mod:`~honora_tts.model.loading`: :func:`load_model` (checkpoint source, device, fp16; one
  loaded model per checkpoint, device and precision).
- :mod:`~honora_tts.model.xtts_model`: :class:`XttsModel` (languages, text pieces, latents;
  prepares a request once and hands its rows down).
- The one decode path, every synthesis whole or streamed, alone or concurrent:
  :mod:`~honora_tts.model.speech_decoding` (pieces -> rows -> audio),
  :mod:`~honora_tts.model.batch_scheduler` (continuous batching on one thread),
  :mod:`~honora_tts.model.gpt_decoder` (the GPT over rows, static shapes per bucket, the voice
  prefix cache), :mod:`~honora_tts.model.vocoder_lane` (the vocoder beside the decoding),
  :mod:`~honora_tts.model.batch_capacity` (rows per device).
- :mod:`~honora_tts.model.latent_cache`: the speaker-latent cache (memory and disk).
- :mod:`~honora_tts.model.text_split`: sentence and limit splitting.
- :mod:`~honora_tts.model.vocoder`: :class:`IncrementalVocoder` (streaming in linear time).
- :mod:`~honora_tts.model.checkpoints`: the weights checksum, the offline tiny XTTS (same
  classes, random weights, 33 M parameters; its audio is noise) and the build-once helper.
- :mod:`~honora_tts.model.reference_voice`: the default reference voice.

Synthesis defaults are :class:`honora_tts.protocol.SamplingParams`'s. Importing this package
does not import torch or coqui-tts; loading a model does.
"""

from honora_tts.model.checkpoints import (
    TINY_DEFAULT_MAX_NEW_TOKENS,
    build_tiny_checkpoint,
    tiny_checkpoint_dir,
    tiny_model_main,
    weights_checksum,
)
from honora_tts.model.constants import (
    CHECKPOINT_FILES,
    DEFAULT_VOICE_FILE,
    METADATA_FILE,
    SAMPLE_RATE,
    TOKENS_PER_SECOND,
)
from honora_tts.model.coqui_import import skip_unused_sklearn_import
from honora_tts.model.latent_cache import Latents, LatentsResult
from honora_tts.model.loading import ModelLoadError, forget_loaded_models, load_model
from honora_tts.model.speech_decoding import Synthesis
from honora_tts.model.text_split import split_text
from honora_tts.model.vocoder import IncrementalVocoder
from honora_tts.model.xtts_model import XttsModel

__all__ = [
    "CHECKPOINT_FILES",
    "DEFAULT_VOICE_FILE",
    "METADATA_FILE",
    "SAMPLE_RATE",
    "TINY_DEFAULT_MAX_NEW_TOKENS",
    "TOKENS_PER_SECOND",
    "IncrementalVocoder",
    "Latents",
    "LatentsResult",
    "ModelLoadError",
    "Synthesis",
    "XttsModel",
    "build_tiny_checkpoint",
    "forget_loaded_models",
    "load_model",
    "skip_unused_sklearn_import",
    "split_text",
    "tiny_checkpoint_dir",
    "tiny_model_main",
    "weights_checksum",
]
