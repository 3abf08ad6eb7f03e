"""``vtlm diffusion fit``: train the diffusion baseline on the GPT's token shards."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.diffusion.config import DiTConfig, preset
from vtlm.diffusion.flow import FlowConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .overrides import apply_overrides, overrides_of
from .runs import check_window, fit_and_export, pairing, start_run

DiTOverrides = overrides_of(DiTConfig)


def latent_statistics(
    shards, bottleneck: torch.nn.Module, max_clips: int = 2048
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the latents that the shards' codes stand for."""
    picks = np.linspace(0, len(shards) - 1, min(max_clips, len(shards))).round().astype(int)
    total, total_sq, count = 0.0, 0.0, 0
    with torch.no_grad():
        for i in picks:
            latents = bottleneck.indices_to_latents(torch.from_numpy(shards.codes(int(i)))[None]).double()
            total = total + latents.sum(dim=(0, 2, 3, 4))
            total_sq = total_sq + latents.pow(2).sum(dim=(0, 2, 3, 4))
            count += latents[0, 0].numel()
    mean = total / count
    std = (total_sq / count - mean.pow(2)).clamp(min=1e-8).sqrt()
    return mean.tolist(), std.tolist()


def fit(
    preset_name: str = "small",
    model: DiTOverrides = DiTOverrides(),
    flow: FlowConfig = FlowConfig(),
    optim: OptimConfig = OptimConfig(lr=3e-4, weight_decay=0.0, betas=(0.9, 0.95)),
    data: TokenDataConfig = TokenDataConfig(),
    trainer: TrainerConfig = TrainerConfig(out_dir="runs/diffusion"),
    ema_decay: float | None = None,
) -> str:
    """Train the diffusion transformer (rectified flow) on token shards, mapped to the
    tokenizer's latents; resume from the run's last checkpoint when there is one.

    Same shards, text model, window and trainer settings as `vtlm gpt fit`, so the two
    families see the same data. Writes OUT/diffusion, which `vtlm sample` reads.

    Args:
        preset_name: DiT preset, matched to the GPT preset of the same name by parameters.
        model: DiT fields to change from the preset.
        flow: noise-level sampling, clean-prefix training, caption dropout.
        optim: AdamW and the warmup + cosine schedule.
        data: token shards, text model, window length, batch size.
        trainer: run directory, steps, time budget, hardware, precision, strategy, resumption.
        ema_decay: EMA of the weights (evaluated and exported); null to turn off.
    """
    from vtlm.data.token_datamodule import TokenDataModule
    from vtlm.diffusion.training import DiffusionModule
    from vtlm.tokenizer.io import load_tokenizer

    datamodule = TokenDataModule(data)
    shards = datamodule.train_shards
    tokenizer_dir = shards.extra.get("tokenizer_dir")
    if not tokenizer_dir or not Path(tokenizer_dir).is_dir():
        raise FileNotFoundError(
            f"data.train: the shards' tokenizer is not at {tokenizer_dir!r} (it maps codes to latents)"
        )
    tokenizer = load_tokenizer(tokenizer_dir)
    h, w = shards.grid
    cfg = apply_overrides(preset(preset_name), model)
    cfg = replace(
        cfg,
        text_size=datamodule.text.vocab_size,
        latent_dim=tokenizer.bottleneck.latent_dim,
        grid_h=h,
        grid_w=w,
    )
    check_window(data.window, cfg.max_frames, shards, data.train)
    mean, std = latent_statistics(shards, tokenizer.bottleneck)
    settings = {
        "preset": preset_name,
        "model": cfg.to_dict(),
        "flow": asdict(flow),
        "optim": asdict(optim),
        "data": asdict(data),
        "trainer": asdict(trainer),
    }
    run_dir = start_run(trainer, settings)
    info = pairing(shards, data.text_model, data.train)
    module = DiffusionModule(
        cfg, flow, optim, trainer.max_steps, tokenizer.bottleneck, mean, std, ema_decay, info
    )
    print(
        f"diffusion: {module.dit.num_params() / 1e6:.2f}M parameters, {module.dit.flops_per_example(data.window) / 1e9:.2f} "
        f"GFLOPs per training example ({data.window} latent frames of {h}x{w}x{cfg.latent_dim}); run dir {run_dir}",
        flush=True,
    )
    return fit_and_export(trainer, module, datamodule, "diffusion")


COMMANDS = {"fit": fit}
