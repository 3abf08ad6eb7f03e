"""Loading a trained tokenizer from its model directory (no pickles, no Lightning)."""

from __future__ import annotations

import os

import torch

from vtlm.train.checkpoint import load_model_dir

from .config import TokenizerConfig
from .model import VideoTokenizer


def load_tokenizer(path: str | os.PathLike, device: str | torch.device = "cpu") -> VideoTokenizer:
    """The tokenizer saved in ``path`` (config.yaml + weights.safetensors), in eval mode."""
    meta, state = load_model_dir(path, "tokenizer")
    model = VideoTokenizer(TokenizerConfig.from_dict(meta["config"]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match its config (missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    return model.to(device).eval()
