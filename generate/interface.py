"""The generator interface and the loader that picks an implementation from a model directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import torch
import yaml

from vtlm.diffusion.flow import SamplerConfig
from vtlm.diffusion.forcing import ForcingSamplerConfig
from vtlm.gpt.sampling import SamplingConfig
from vtlm.maskgit.sampling import MaskGITSamplingConfig


class Generator(Protocol):
    """Anything that turns captions (and optionally the first frames) into videos."""

    #: pixel frames per latent frame after the first, and pixel side of the output
    temporal_stride: int
    resolution: int

    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Videos (B, 3, num_frames, H, W) in [-1, 1], B = len(captions).

        ``prefix``: (B, 3, k, H, W) in [-1, 1], the first k frames, returned unchanged at the
        start of each video. ``num_frames`` and k are 1 + j * temporal_stride.
        """

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """How many network calls ``generate`` makes for one batch of this length."""

    def fit_captions(self, captions: list[str]) -> list[str]:
        """Captions cut to the model's text budget (``generate`` refuses longer ones)."""


def load_generator(
    path: str | os.PathLike,
    device: str = "cpu",
    sampling: SamplingConfig | None = None,
    sampler: SamplerConfig | None = None,
    maskgit: MaskGITSamplingConfig | None = None,
    forcing: ForcingSamplerConfig | None = None,
) -> Generator:
    """The generator stored in a model directory, by the ``kind`` in its config.yaml.

    ``sampling``: temperature, top-k / top-p and guidance of an autoregressive generator;
    ``sampler``: steps, solver and guidance of a diffusion generator;
    ``maskgit``: unmasking steps, temperatures and guidance of a masked-decoding generator;
    ``forcing``: steps, solver, context noise, guidance and window of a frame-causal diffusion one.
    """
    config = Path(path) / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.yaml)")
    kind = yaml.safe_load(config.read_text()).get("kind")
    if kind == "gpt":
        from .gpt import GPTGenerator

        return GPTGenerator(path, device=device, sampling=sampling)
    if kind == "diffusion":
        from .diffusion import DiffusionGenerator

        return DiffusionGenerator(path, device=device, sampler=sampler)
    if kind == "forcing":
        from .forcing import ForcingGenerator

        return ForcingGenerator(path, device=device, sampler=forcing)
    if kind == "maskgit":
        from .maskgit import MaskGITGenerator

        return MaskGITGenerator(path, device=device, sampling=maskgit)
    raise ValueError(
        f"{path}: no generator for model kind {kind!r} (expected gpt, diffusion, forcing or maskgit)"
    )
