"""Streaming vocoding in linear time: HiFi-GAN over new frames only."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


class IncrementalVocoder:
    """Vocodes a growing sequence of GPT latents chunk by chunk in linear time.

    coqui's ``inference_stream`` re-runs the HiFi-GAN decoder over *all* latents for every chunk
    (quadratic in the utterance length). Here the decoder's two linear interpolations (code
    stride -> hop, 22.05 -> 24 kHz) are computed over the whole sequence (cheap), and the
    convolutional generator runs only on a window of new frames plus ``context_frames`` on each
    side: its receptive field is about +-10 frames, so the window's output equals the full
    decode to float rounding. The rightmost frames, which later latents can still change, are
    held back until the next call.
    """

    context_frames = 16

    def __init__(self, decoder: Any, speaker_embedding: torch.Tensor, speed: float = 1.0):
        self.decoder = decoder
        self.speaker_embedding = speaker_embedding
        self.length_scale = 1.0 / max(speed, 0.05)
        self.hop = int(decoder.output_hop_length)
        self._frame_ratio = decoder.ar_mel_length_compression / decoder.output_hop_length
        self._rate_ratio = decoder.output_sample_rate / decoder.input_sample_rate
        per_latent = self._frame_ratio * self._rate_ratio
        self.unstable_frames = math.ceil((2 * max(self.length_scale, 1.0) + 2) * per_latent) + 2
        self._latents: list[torch.Tensor] = []
        self._emitted = 0
        self.vocoded_frames = 0

    def push(self, latents: list[torch.Tensor]) -> None:
        """Append latents, each (1, model_dim) or (model_dim,)."""
        self._latents.extend(lat.reshape(1, -1) for lat in latents)

    def frames(self) -> torch.Tensor:
        """The decoder input for all latents so far: (1, decoder_input_dim, frames)."""
        import torch
        import torch.nn.functional as F

        latents = torch.cat(self._latents, dim=0)[None]
        if self.length_scale != 1.0:
            latents = F.interpolate(
                latents.transpose(1, 2), scale_factor=self.length_scale, mode="linear"
            ).transpose(1, 2)
        z = F.interpolate(latents.transpose(1, 2), scale_factor=[self._frame_ratio], mode="linear")
        if self._rate_ratio != 1.0:
            z = F.interpolate(z, scale_factor=[self._rate_ratio], mode="linear")
        return z

    def render(self, final: bool = False) -> np.ndarray:
        """New float32 samples: everything stable so far, or (``final``) everything."""
        if not self._latents:
            return np.zeros(0, dtype=np.float32)
        z = self.frames()
        total = z.shape[-1]
        end = total if final else total - self.unstable_frames - self.context_frames
        if end <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        start = max(0, self._emitted - self.context_frames)
        stop = total if final else end + self.context_frames
        g = self.speaker_embedding.to(z.device)
        wav = self.decoder.waveform_decoder(z[:, :, start:stop], g=g).reshape(-1)
        if wav.shape[0] != (stop - start) * self.hop:
            raise RuntimeError(
                f"vocoder returned {wav.shape[0]} samples for {stop - start} frames "
                f"(expected {self.hop} per frame)"
            )
        self.vocoded_frames += stop - start
        out = wav[(self._emitted - start) * self.hop : (end - start) * self.hop]
        self._emitted = end
        return out.float().cpu().numpy().astype(np.float32, copy=False)
