"""The diffusion baseline as a generator: the same interface as the GPT's."""

from __future__ import annotations

import os

import torch

from vtlm.diffusion.config import DiTConfig
from vtlm.diffusion.flow import SamplerConfig, sample
from vtlm.diffusion.model import DiT, caption_batch

from .base import LoadedGenerator
from .pairing import caption_ids, check_prefix


class DiffusionGenerator(LoadedGenerator):
    """A trained DiT with its latent statistics, tokenizer and text model.

    Videos longer than the window of ``max_frames`` latent frames are rolled out like the
    GPT's: the last ``max_frames - 1`` latent frames become the clean prefix of the next window.
    """

    # the model directory's kind (the frame-causal family subclasses this one)
    kind, config_class, network_class = "diffusion", DiTConfig, DiT

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampler: SamplerConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        super().__init__(path, device, tokenizer_dir, text_model)
        self.sampler = sampler or SamplerConfig()

    def take_buffers(self, state: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
        """Keep the latent statistics that sampling un-normalizes with; the rest is the DiT's."""
        self.mean = state.pop("latent_mean").to(device)
        self.std = state.pop("latent_std").to(device)
        return state

    def check_tokenizer(self) -> None:
        if self.tokenizer.bottleneck.latent_dim != self.cfg.latent_dim:
            raise ValueError(
                f"tokenizer: {self.tokenizer.bottleneck.latent_dim} latent channels, the DiT expects {self.cfg.latent_dim}"
            )

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames:
        the solver's calls per window (``SamplerConfig.nfe``), windows as ``generate``
        slides them; guidance doubles the batch of each call, not the number of calls."""
        total, done = self.latent_frames(num_frames, prefix_frames)
        window, windows = self.cfg.max_frames, 0
        while done < total:
            context = min(done, window - 1)
            done += min(window, context + total - done) - context
            windows += 1
        return windows * self.sampler.nfe

    @torch.no_grad()
    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Videos (B, 3, num_frames, R, R) in [-1, 1]; prefix frames come back unchanged."""
        cfg, total, device = self.cfg, self.latent_frames(num_frames)[0], self.mean.device
        text, uncond = self.caption_rows(captions)
        generator = torch.Generator(device=device).manual_seed(seed)
        batch = len(captions)
        video = self.prefix_latents(prefix, batch)
        if video.shape[2] > cfg.max_frames - 1:
            raise ValueError(
                f"prefix: {video.shape[2]} latent frames do not fit the window of {cfg.max_frames} with room to generate"
            )
        while video.shape[2] < total:
            context = video[:, :, max(0, video.shape[2] - (cfg.max_frames - 1)) :]
            window = min(cfg.max_frames, context.shape[2] + total - video.shape[2])
            shape = (batch, cfg.latent_dim, window, cfg.grid_h, cfg.grid_w)
            out = sample(
                self.model,
                shape,
                text,
                self.sampler,
                context if context.shape[2] else None,
                uncond,
                generator,
            )
            video = torch.cat([video, out[:, :, context.shape[2] :]], dim=2)
        return self.decode(video, prefix)

    def caption_rows(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Caption ids (B, text_len) and the all-pad unconditional captions of the same shape."""
        ids = caption_ids(self.text, captions, self.cfg.text_len)
        text = caption_batch(ids, self.cfg.text_len).to(self.mean.device)
        return text, torch.zeros_like(text)

    def prefix_latents(self, prefix: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Prefix frames (B, 3, k, R, R) in [-1, 1] -> normalized latents (B, D, k', h, w);
        no prefix: (B, D, 0, h, w)."""
        cfg, device = self.cfg, self.mean.device
        if prefix is None:
            return torch.zeros(batch, cfg.latent_dim, 0, cfg.grid_h, cfg.grid_w, device=device)
        check_prefix(prefix, batch, self.resolution)
        return (self.tokenizer.encode_latents(prefix.to(device)) - self.mean) / self.std

    def decode(self, video: torch.Tensor, prefix: torch.Tensor | None) -> torch.Tensor:
        """Normalized latents (B, D, t, h, w) -> frames (B, 3, T, R, R) in [-1, 1], the given
        prefix frames put back exactly."""
        frames = self.tokenizer.decode_latents(video * self.std + self.mean)
        if prefix is not None:
            frames[:, :, : prefix.shape[2]] = prefix.to(frames)
        return frames
