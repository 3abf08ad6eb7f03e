"""The GPT as a generator: captions and prefix frames in, decoded videos out."""

from __future__ import annotations

import os

import torch

from vtlm.gpt.config import GPTConfig
from vtlm.gpt.model import GPT
from vtlm.gpt.sampling import SamplingConfig, sample_codes
from vtlm.train.checkpoint import load_model_dir

from .pairing import caption_ids, check_prefix, fit_captions, load_pairing, round_trip


class GPTGenerator:
    """A trained GPT with the tokenizer and text model it was trained with.

    The tokenizer is checked against the hash recorded at training time, so a GPT is never
    decoded by a tokenizer whose codes mean something else. ``tokenizer_dir`` and
    ``text_model`` override the recorded paths (for a moved run).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampling: SamplingConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        meta, state = load_model_dir(path, "gpt")
        self.cfg = GPTConfig.from_dict(meta["config"])
        self.model = GPT(self.cfg)
        self.model.load_state_dict(state, strict=True)
        self.model.to(device).eval()
        self.tokenizer, self.text = load_pairing(
            path, meta, device, tokenizer_dir, text_model, self.cfg.text_size
        )
        if self.tokenizer.codebook_size != self.cfg.codebook_size:
            raise ValueError(
                f"tokenizer: {self.tokenizer.codebook_size} codes, the GPT expects {self.cfg.codebook_size}"
            )
        self.sampling = sampling or SamplingConfig()
        self.temporal_stride = self.tokenizer.cfg.temporal_downsample
        self.resolution = self.cfg.grid_h * self.tokenizer.cfg.spatial_downsample

    def fit_captions(self, captions: list[str]) -> list[str]:
        """Captions cut to this model's text budget, as its training cut them."""
        return fit_captions(self.text, captions, self.cfg.text_len)

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames: one
        per new latent token (a window's prefill yields its first token); guidance doubles the
        batch of each call, not the number of calls."""
        r, shape = self.resolution, self.tokenizer.cfg.latent_shape
        given = shape(prefix_frames, r, r)[0] if prefix_frames else 0
        return (shape(num_frames, r, r)[0] - given) * self.cfg.grid_h * self.cfg.grid_w

    @torch.no_grad()
    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Videos (B, 3, num_frames, R, R) in [-1, 1]; prefix frames come back unchanged."""
        r = self.resolution
        latent_frames = self.tokenizer.cfg.latent_shape(num_frames, r, r)[0]
        ids = caption_ids(self.text, captions, self.cfg.text_len)
        device = self.model.embed.weight.device
        prefix_codes = None
        if prefix is not None:
            check_prefix(prefix, len(captions), r)
            prefix_codes = self.tokenizer.encode(prefix.to(device))
        generator = torch.Generator(device=device).manual_seed(seed)
        codes = sample_codes(
            self.model, ids, latent_frames, self.sampling, prefix_codes, generator, round_trip(self.tokenizer)
        )
        video = self.tokenizer.decode(codes)
        if prefix is not None:
            video[:, :, : prefix.shape[2]] = prefix.to(video)
        return video
