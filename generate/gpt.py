"""The GPT as a generator: captions and prefix frames in, decoded videos out."""

from __future__ import annotations

import os

import torch

from vtlm.gpt.config import GPTConfig
from vtlm.gpt.model import GPT
from vtlm.gpt.parallel import parallel_calls
from vtlm.gpt.sampling import SamplingConfig, sample_codes
from vtlm.gpt.stream import network_calls
from vtlm.layers.quant import int8_copy

from .base import CodeGenerator


class GPTGenerator(CodeGenerator):
    """A trained GPT with the tokenizer and text model it was trained with.

    The tokenizer is checked against the hash recorded at training time, so a GPT is never
    decoded by a tokenizer whose codes mean something else. ``sampling``: temperature, top-k /
    top-p, guidance, the context round trip (``reencode_context``), the rolling cache and the
    Jacobi schedule.
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
        # (frames, prefix frames, sampling) -> network calls of the last generate (the harness's
        # sweeps share this dict between shallow copies that differ in sampling)
        self.counted: dict[tuple[int, int, str], int] = {}
        # sampling.weights -> the network sampled with, made once (shared like ``counted``)
        self.networks: dict[str, torch.nn.Module] = {"fp32": self.model}

    def network(self) -> torch.nn.Module:
        """The loaded model, or its int8 copy (made on first use) when ``sampling.weights`` asks."""
        if self.sampling.weights not in self.networks:
            self.networks[self.sampling.weights] = int8_copy(self.model)
        return self.networks[self.sampling.weights]

    def generate(
        self, captions: list[str], num_frames: int, prefix: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """As ``CodeGenerator.generate``; also records the network calls it made."""
        with network_calls(self.network()) as calls:
            video = super().generate(captions, num_frames, prefix, seed)
        self.counted[(num_frames, 0 if prefix is None else prefix.shape[2], repr(self.sampling))] = calls[0]
        return video

    def function_evaluations(self, num_frames: int, prefix_frames: int = 0) -> int:
        """Sequential network calls to generate ``num_frames`` after ``prefix_frames`` given
        frames: one per new latent token (a window's prefill yields its first token), with the
        re-encoded or the rolling window alike; guidance doubles the batch of each call, not the
        number of calls. Rows in parallel (``row_lag``): (rows - 1) * lag + row width per window
        (the first holds every frame that fits, each slide one frame). Jacobi decoding
        (``jacobi_window`` > 1) decides 1 to ``jacobi_window`` tokens per call, as the tokens go:
        its count is the one the last ``generate`` of that length made, or before any, the
        sequential count, which bounds it from above."""
        m = self.cfg
        total, given = self.latent_frames(num_frames, prefix_frames)
        sequential = (total - given) * m.grid_h * m.grid_w
        if self.sampling.row_lag:
            first = min(total - given, m.max_frames - min(given, m.max_frames - 1))
            window = parallel_calls(first, m.grid_h, m.grid_w, self.sampling.row_lag)
            return window + (total - given - first) * parallel_calls(
                1, m.grid_h, m.grid_w, self.sampling.row_lag
            )
        if self.sampling.jacobi_window > 1:
            return self.counted.get((num_frames, prefix_frames, repr(self.sampling)), sequential)
        return sequential
