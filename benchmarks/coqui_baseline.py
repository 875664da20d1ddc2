"""Plain coqui-tts, as its documentation shows it, for side-by-side comparisons: ``Xtts`` loaded
with ``load_checkpoint``, latents from ``get_conditioning_latents``, ``inference`` for whole
utterances and ``inference_stream`` for chunks (which re-vocodes every latent so far for each
chunk). fp32, no honora code on the path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.measures import Stopwatch

#: The synthesis defaults honora uses (the release's config.json), so both sides do the same
#: work.
SAMPLING = {"temperature": 0.75, "length_penalty": 1.0, "repetition_penalty": 5.0,
            "top_k": 50, "top_p": 0.85, "do_sample": True}
STREAM_CHUNK_TOKENS = 20
SAMPLE_RATE = 24_000


def load(directory: Path, device: str) -> Any:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(directory / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(directory), eval=True)
    return model.to(device)


def latents(model: Any, voice: Path) -> tuple[Any, Any]:
    return model.get_conditioning_latents(audio_path=str(voice), gpt_cond_len=6,
                                          gpt_cond_chunk_len=6, max_ref_length=30)


def whole(model: Any, text: str, conditioning: tuple[Any, Any], tokens: int,
          seed: int) -> dict[str, float]:
    import torch

    torch.manual_seed(seed)
    watch = Stopwatch()
    with torch.inference_mode():
        out = model.inference(text, "en", *conditioning, max_new_tokens=tokens,
                              enable_text_splitting=False, **SAMPLING)
    if str(conditioning[0].device).startswith("cuda"):
        torch.cuda.synchronize()
    return {"total_ms": watch.ms(), "audio_s": len(out["wav"]) / SAMPLE_RATE}


def stream(model: Any, text: str, conditioning: tuple[Any, Any], tokens: int, seed: int, *,
           first_chunk_only: bool = False) -> dict[str, float | None]:
    """Time to the first chunk and (unless ``first_chunk_only``) to the last."""
    import torch

    torch.manual_seed(seed)
    watch = Stopwatch()
    first = None
    samples = 0
    with torch.inference_mode():
        for chunk in model.inference_stream(
            text, "en", *conditioning, stream_chunk_size=STREAM_CHUNK_TOKENS,
            max_new_tokens=tokens, enable_text_splitting=False, **SAMPLING,
        ):
            if first is None:
                chunk.cpu()  # the first audio exists once it is on the host
                first = watch.ms()
            samples += int(chunk.shape[-1])
            if first_chunk_only:
                break
    total = None if first_chunk_only else watch.ms()
    return {"ttfa_ms": first, "total_ms": total, "audio_s": samples / SAMPLE_RATE}
