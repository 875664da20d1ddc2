"""Facts of the XTTS-v2 model and its checkpoint directories, shared by the model modules."""

from __future__ import annotations

#: XTTS-v2 speaks at 24 kHz (float32 mono).
SAMPLE_RATE = 24_000
#: GPT audio codes per second of 24 kHz audio (22050 Hz / 1024-sample code stride).
TOKENS_PER_SECOND = 22_050 / 1_024
#: Seconds of reference a latent computation uses per chunk (coqui's ``gpt_cond_chunk_len``).
GPT_COND_CHUNK_LEN = 6

#: What a checkpoint directory holds (``Xtts.load_checkpoint``'s files).
CHECKPOINT_FILES = ("model.pth", "config.json", "vocab.json")
#: honora's own record in a checkpoint directory (name, seed, default max_new_tokens, recipe).
METADATA_FILE = "honora_model.json"
#: The reference voice a checkpoint directory may carry for requests without one.
DEFAULT_VOICE_FILE = "default_voice.wav"
