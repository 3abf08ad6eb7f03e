"""Frame-causal diffusion (diffusion forcing) as a generator: the same interface as the others.

It loads like the diffusion baseline (a DiT, its latent statistics, tokenizer and text model),
but samples latent frame by latent frame through the network's caches
(``vtlm.diffusion.forcing.sample``): a video longer than the window of ``max_frames`` latent
frames rolls the window (each frame still encoded once), instead of re-sampling windows.
"""

from __future__ import annotations

import os

import torch

from vtlm.diffusion.forcing import ForcingSamplerConfig, sample

from .diffusion import DiffusionGenerator


class ForcingGenerator(DiffusionGenerator):
    """A trained frame-causal DiT with its latent statistics, tokenizer and text model."""

    kind = "forcing"

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampler: ForcingSamplerConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        super().__init__(path, device, None, tokenizer_dir, text_model)
        if not self.cfg.frame_causal:
            raise ValueError(
                f"{path}: a forcing model directory holds a frame-causal DiT (frame_causal false)"
            )
        self.sampler = sampler or ForcingSamplerConfig()

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames: solver
        steps per chunk of latent frames (Heun: two per step but the last), plus one call per
        chunk to commit it to the cache. Each call runs only the chunk's tokens; guidance widens
        the batch of a call, not the number of calls."""
        total, given = self.latent_frames(num_frames, prefix_frames)
        return self.sampler.function_evaluations(total, given, self.cfg.max_frames)

    @torch.no_grad()
    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Videos (B, 3, num_frames, R, R) in [-1, 1]; prefix frames come back unchanged."""
        cfg, total = self.cfg, self.latent_frames(num_frames)[0]
        text, uncond = self.caption_rows(captions)
        given = self.prefix_latents(prefix, len(captions))
        generator = torch.Generator(device=self.mean.device).manual_seed(seed)
        shape = (len(captions), cfg.latent_dim, total, cfg.grid_h, cfg.grid_w)
        video = sample(
            self.model,
            shape,
            text,
            self.sampler,
            cfg.max_frames,
            given if given.shape[2] else None,
            uncond,
            generator,
        )
        return self.decode(video, prefix)
