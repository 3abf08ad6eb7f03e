"""What the loader and generation workloads read: a caption text model, and model directories
of a tokenizer, a GPT and a DiT with random weights (speed does not depend on training).

The model directories are written the way ``vtlm {tokenizer,gpt,diffusion} fit`` exports them
(``train.checkpoint.save_model_dir``: config.yaml + weights.safetensors, with the paired
tokenizer's directory and weights hash and the text model recorded), so ``load_generator``
reads them through the same checks as a trained run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, render_clip
from vtlm.data.text import TextTokenizer, train_text_tokenizer
from vtlm.diffusion.config import preset as dit_preset
from vtlm.diffusion.model import DiT
from vtlm.gpt.config import preset as gpt_preset
from vtlm.gpt.model import GPT
from vtlm.tokenizer.config import preset as tokenizer_preset
from vtlm.tokenizer.encode import weights_sha256
from vtlm.tokenizer.model import VideoTokenizer
from vtlm.train.checkpoint import save_model_dir

RESOLUTION, NUM_FRAMES = 64, 17


def tokenizer_config(preset_name: str = "small"):
    """A tokenizer preset at 4x temporal and 8x spatial compression: 17x64x64 pixels -> 5x8x8
    latents; ``small`` is the demo's tokenizer (FSQ, 4375 codes, 5 latent channels) at 8x."""
    return replace(tokenizer_preset(preset_name), spatial_downsample=8)


def bench_captions(count: int) -> list[str]:
    """Descriptive captions of the first ``count`` built-in shapes clips (32 px, cheap to render)."""
    cfg = SyntheticConfig(kind="shapes", shapes=ShapesConfig(resolution=32, num_frames=9))
    return [render_clip(cfg, i).caption_descriptive for i in range(count)]


def text_model(path: Path) -> Path:
    """A SentencePiece caption model trained on 200 bench captions (about a second)."""
    if not path.is_file():
        train_text_tokenizer(bench_captions(200), path, vocab_size=400)
    return path


@dataclass
class GeneratorDirs:
    tokenizer: Path
    text_model: Path
    gpt: Path
    diffusion: Path


def generator_dirs(
    work_dir: Path,
    preset_name: str = "tiny",
    tokenizer_preset_name: str = "small",
    resolution: int = RESOLUTION,
    num_frames: int = NUM_FRAMES,
) -> GeneratorDirs:
    """Model directories of a GPT and a DiT of the preset ``preset_name`` (matched in parameters),
    each holding a whole clip of ``num_frames`` x ``resolution`` px in its window (17x64x64:
    5 latent frames of 8x8), paired with one tokenizer of :func:`tokenizer_config`
    (``tokenizer_preset_name``); all weights random."""
    torch.manual_seed(0)
    tokenizer_cfg = tokenizer_config(tokenizer_preset_name)
    text = text_model(work_dir / "text.model")
    text_size = TextTokenizer(text).vocab_size
    tokenizer = VideoTokenizer(tokenizer_cfg)
    frames, h, w = tokenizer_cfg.latent_shape(num_frames, resolution, resolution)
    tokenizer_dir = save_model_dir(
        work_dir / "tokenizer", "tokenizer", tokenizer_cfg.to_dict(), tokenizer.state_dict()
    )
    paired = {"dir": str(tokenizer_dir), "sha256": weights_sha256(tokenizer_dir), "text_model": str(text)}

    gpt_cfg = replace(
        gpt_preset(preset_name),
        max_frames=frames,
        grid_h=h,
        grid_w=w,
        text_size=text_size,
        codebook_size=tokenizer_cfg.codebook_size,
    )
    gpt = GPT(gpt_cfg)
    gpt_dir = save_model_dir(
        work_dir / "gpt",
        "gpt",
        gpt_cfg.to_dict(),
        gpt.state_dict(),
        {"params": gpt.num_params(), "tokenizer": paired},
    )

    dit_cfg = replace(
        dit_preset(preset_name),
        max_frames=frames,
        grid_h=h,
        grid_w=w,
        text_size=text_size,
        latent_dim=tokenizer_cfg.latent_dim,
    )
    dit = DiT(dit_cfg)
    statistics = {  # identity normalization of the latents: mean 0, std 1 per channel
        "latent_mean": torch.zeros(1, dit_cfg.latent_dim, 1, 1, 1),
        "latent_std": torch.ones(1, dit_cfg.latent_dim, 1, 1, 1),
    }
    dit_dir = save_model_dir(
        work_dir / "diffusion",
        "diffusion",
        dit_cfg.to_dict(),
        {**dit.state_dict(), **statistics},
        {"params": dit.num_params(), "tokenizer": paired},
    )
    return GeneratorDirs(tokenizer_dir, text, gpt_dir, dit_dir)
