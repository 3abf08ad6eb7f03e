"""The GPT as a generator: captions and prefix frames in, decoded videos out."""

from __future__ import annotations

import os

from vtlm.gpt.config import GPTConfig
from vtlm.gpt.model import GPT
from vtlm.gpt.sampling import SamplingConfig, sample_codes

from .base import CodeGenerator


class GPTGenerator(CodeGenerator):
    """A trained GPT with the tokenizer and text model it was trained with.

    The tokenizer is checked against the hash recorded at training time, so a GPT is never
    decoded by a tokenizer whose codes mean something else. ``sampling``: temperature, top-k /
    top-p, guidance and the context round trip (``reencode_context``).
    """

    kind, config_class, network_class = "gpt", GPTConfig, GPT
    sample_codes = staticmethod(sample_codes)

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        sampling: SamplingConfig | None = None,
        tokenizer_dir: str | None = None,
        text_model: str | None = None,
    ):
        super().__init__(path, device, tokenizer_dir, text_model)
        self.sampling = sampling or SamplingConfig()

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Network calls to generate ``num_frames`` after ``prefix_frames`` given frames: one
        per new latent token (a window's prefill yields its first token); guidance doubles the
        batch of each call, not the number of calls."""
        total, given = self.latent_frames(num_frames, prefix_frames)
        return (total - given) * self.cfg.grid_h * self.cfg.grid_w
