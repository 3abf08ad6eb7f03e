"""The masked-decoding transformer as a generator: captions and prefix frames in, videos out."""

from __future__ import annotations

import os

import torch

from vtlm.maskgit.config import MaskGITConfig
from vtlm.maskgit.model import MaskGIT
from vtlm.maskgit.sampling import MaskGITSamplingConfig, network_calls, sample_codes
from vtlm.train.checkpoint import load_model_dir

from .pairing import caption_ids, check_prefix, fit_captions, load_pairing, round_trip


class MaskGITGenerator:
    """A trained MaskGIT network with the tokenizer and text model it was trained with.

    The tokenizer is checked against the hash recorded at training time. ``sampling``: steps,
    temperatures, guidance, schedule and the context round trip (``reencode_context``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampling: MaskGITSamplingConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        meta, state = load_model_dir(path, "maskgit")
        self.cfg = MaskGITConfig.from_dict(meta["config"])
        self.model = MaskGIT(self.cfg)
        self.model.load_state_dict(state, strict=True)
        self.model.to(device).eval()
        self.tokenizer, self.text = load_pairing(
            path, meta, device, tokenizer_dir, text_model, self.cfg.text_size
        )
        if self.tokenizer.codebook_size != self.cfg.codebook_size:
            raise ValueError(
                f"tokenizer: {self.tokenizer.codebook_size} codes, the model expects {self.cfg.codebook_size}"
            )
        self.sampling = sampling or MaskGITSamplingConfig()
        self.temporal_stride = self.tokenizer.cfg.temporal_downsample
        self.resolution = self.cfg.grid_h * self.tokenizer.cfg.spatial_downsample

    def fit_captions(self, captions: list[str]) -> list[str]:
        """Captions cut to this model's text budget, as its training cut them."""
        return fit_captions(self.text, captions, self.cfg.text_len)

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames: the
        unmasking steps of every window (frame-causal: of every frame, plus the calls that
        store the caption's and context frames' keys); guidance doubles the batch, not the calls."""
        r, shape = self.resolution, self.tokenizer.cfg.latent_shape
        given = shape(prefix_frames, r, r)[0] if prefix_frames else 0
        return network_calls(self.cfg, self.sampling, shape(num_frames, r, r)[0], given)

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
