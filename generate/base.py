"""What every generator loaded from a model directory shares, and the generators over codes.

:class:`LoadedGenerator` rebuilds the network from the directory's config and weights, loads the
tokenizer and text model it was trained with (checked against the recorded hash and the
vocabulary size) and answers the interface's bookkeeping: captions cut to the text budget,
latent frame counts, output size. A family adds its sampling config and ``generate``.

:class:`CodeGenerator` is the whole generator of a family over discrete codes (the GPT, masked
decoding): prefix frames are encoded to codes, the family's ``sample_codes`` continues them,
the tokenizer decodes the codes, and the given frames are put back exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.nn as nn

from vtlm.train.checkpoint import load_model_dir

from .pairing import caption_ids, check_prefix, fit_captions, load_pairing, round_trip


class LoadedGenerator:
    """A trained network with the tokenizer and text model it pairs with.

    Subclasses set ``kind`` (the model directory's kind), ``config_class`` (with ``from_dict``)
    and ``network_class`` (built from the config). ``tokenizer_dir`` and ``text_model``
    override the recorded paths (for a moved run).
    """

    kind: str
    config_class: type
    network_class: type

    def __init__(
        self, path: str | os.PathLike, device: str, tokenizer_dir: str | None, text_model: str | None
    ):
        meta, state = load_model_dir(path, self.kind)
        self.cfg = self.config_class.from_dict(meta["config"])
        state = self.take_buffers(state, device)
        self.model = self.network_class(self.cfg)
        self.model.load_state_dict(state, strict=True)
        self.model.to(device).eval()
        self.tokenizer, self.text = load_pairing(
            path, meta, device, tokenizer_dir, text_model, self.cfg.text_size
        )
        self.check_tokenizer()
        self.temporal_stride = self.tokenizer.cfg.temporal_downsample
        self.resolution = self.cfg.grid_h * self.tokenizer.cfg.spatial_downsample

    def take_buffers(self, state: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
        """The network's state dict, after a family took the tensors it keeps beside it."""
        return state

    def check_tokenizer(self) -> None:
        """Refuse a tokenizer whose codes or latents the network was not trained on."""

    def fit_captions(self, captions: list[str]) -> list[str]:
        """Captions cut to this model's text budget, as its training cut them."""
        return fit_captions(self.text, captions, self.cfg.text_len)

    def latent_frames(self, num_frames: int, prefix_frames: int = 0) -> tuple[int, int]:
        """(latent frames of a ``num_frames`` video, latent frames of its ``prefix_frames``)."""
        r, shape = self.resolution, self.tokenizer.cfg.latent_shape
        return shape(num_frames, r, r)[0], (shape(prefix_frames, r, r)[0] if prefix_frames else 0)


class CodeGenerator(LoadedGenerator):
    """A generator over the tokenizer's discrete codes; ``self.sampling`` is its family's
    sampling config, handed to ``sample_codes`` with the tokenizer's round trip (anti-drift)."""

    sample_codes: Callable[
        ..., torch.Tensor
    ]  # the family's: (model, ids, frames, cfg, prefix, generator, reencode)

    def check_tokenizer(self) -> None:
        if self.tokenizer.codebook_size != self.cfg.codebook_size:
            raise ValueError(
                f"tokenizer: {self.tokenizer.codebook_size} codes, the {self.kind} model expects {self.cfg.codebook_size}"
            )

    def network(self) -> nn.Module:
        """The network ``generate`` samples with (the loaded model; a family may derive one
        from its sampling config)."""
        return self.model

    @torch.no_grad()
    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Videos (B, 3, num_frames, R, R) in [-1, 1]; prefix frames come back unchanged."""
        ids = caption_ids(self.text, captions, self.cfg.text_len)
        device = next(self.model.parameters()).device
        network = self.network()
        prefix_codes = None
        if prefix is not None:
            check_prefix(prefix, len(captions), self.resolution)
            prefix_codes = self.tokenizer.encode(prefix.to(device))
        generator = torch.Generator(device=device).manual_seed(seed)
        frames = self.latent_frames(num_frames)[0]
        sample = type(self).sample_codes
        codes = sample(
            network, ids, frames, self.sampling, prefix_codes, generator, round_trip(self.tokenizer)
        )
        video = self.tokenizer.decode(codes)
        if prefix is not None:
            video[:, :, : prefix.shape[2]] = prefix.to(video)
        return video
