"""The masked-decoding transformer as a generator: captions and prefix frames in, videos out."""

from __future__ import annotations

import os

from vtlm.maskgit.config import MaskGITConfig
from vtlm.maskgit.model import MaskGIT
from vtlm.maskgit.sampling import MaskGITSamplingConfig, network_calls, sample_codes

from .base import CodeGenerator


class MaskGITGenerator(CodeGenerator):
    """A trained MaskGIT network with the tokenizer and text model it was trained with.

    ``sampling``: steps, temperatures, guidance, schedule and the context round trip
    (``reencode_context``).
    """

    kind, config_class, network_class = "maskgit", MaskGITConfig, MaskGIT
    sample_codes = staticmethod(sample_codes)

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampling: MaskGITSamplingConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        super().__init__(path, device, tokenizer_dir, text_model)
        self.sampling = sampling or MaskGITSamplingConfig()

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames: the
        unmasking steps of every window (frame-causal: of every frame, plus the calls that
        store the caption's and context frames' keys); guidance doubles the batch, not the calls."""
        total, given = self.latent_frames(num_frames, prefix_frames)
        return network_calls(self.cfg, self.sampling, total, given)
