"""The diffusion baseline as a generator: the same interface as the GPT's."""

from __future__ import annotations

import os

import torch

from vtlm.diffusion.config import DiTConfig
from vtlm.diffusion.flow import SamplerConfig, sample
from vtlm.diffusion.model import DiT, caption_batch
from vtlm.train.checkpoint import load_model_dir

from .pairing import caption_ids, check_prefix, fit_captions, load_pairing


class DiffusionGenerator:
    """A trained DiT with its latent statistics, tokenizer and text model.

    Videos longer than the window of ``max_frames`` latent frames are rolled out like the
    GPT's: the last ``max_frames - 1`` latent frames become the clean prefix of the next window.
    """

    kind = "diffusion"  # the model directory's kind (the frame-causal family subclasses this one)

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampler: SamplerConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        meta, state = load_model_dir(path, self.kind)
        self.cfg = DiTConfig.from_dict(meta["config"])
        self.mean = state.pop("latent_mean").to(device)
        self.std = state.pop("latent_std").to(device)
        self.model = DiT(self.cfg)
        self.model.load_state_dict(state, strict=True)
        self.model.to(device).eval()
        self.tokenizer, self.text = load_pairing(
            path, meta, device, tokenizer_dir, text_model, self.cfg.text_size
        )
        if self.tokenizer.bottleneck.latent_dim != self.cfg.latent_dim:
            raise ValueError(
                f"tokenizer: {self.tokenizer.bottleneck.latent_dim} latent channels, the DiT expects {self.cfg.latent_dim}"
            )
        self.sampler = sampler or SamplerConfig()
        self.temporal_stride = self.tokenizer.cfg.temporal_downsample
        self.resolution = self.cfg.grid_h * self.tokenizer.cfg.spatial_downsample

    def fit_captions(self, captions: list[str]) -> list[str]:
        """Captions cut to this model's text budget, as its training cut them."""
        return fit_captions(self.text, captions, self.cfg.text_len)

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames:
        solver steps per window (Heun: two per step but the last), windows as ``generate``
        slides them; guidance doubles the batch of each call, not the number of calls."""
        r, shape, window = self.resolution, self.tokenizer.cfg.latent_shape, self.cfg.max_frames
        done, total = (shape(prefix_frames, r, r)[0] if prefix_frames else 0), shape(num_frames, r, r)[0]
        windows = 0
        while done < total:
            context = min(done, window - 1)
            done += min(window, context + total - done) - context
            windows += 1
        steps = self.sampler.steps
        return windows * (2 * steps - 1 if self.sampler.solver == "heun" else steps)

    @torch.no_grad()
    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Videos (B, 3, num_frames, R, R) in [-1, 1]; prefix frames come back unchanged."""
        cfg, r = self.cfg, self.resolution
        total = self.tokenizer.cfg.latent_shape(num_frames, r, r)[0]
        device = self.mean.device
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
