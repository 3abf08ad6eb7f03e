"""``vtlm diffusion fit``: train the diffusion baseline on the GPT's token shards."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.diffusion.config import DiTConfig, preset
from vtlm.diffusion.flow import FlowConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .overrides import apply_overrides, overrides_of
from .runs import ShardSetup, fit_and_export, start_run

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
        ema_decay: EMA of the weights (evaluated and exported); null to turn off. The decay
            in use at step n is min(ema_decay, (1 + n) / (10 + n)): 0.99 at step 900.
    """
    from vtlm.diffusion.training import DiffusionModule

    setup = LatentSetup(preset_name, model, data, frame_causal=False)
    run_dir = start_run(
        trainer, setup.settings(flow=asdict(flow), optim=asdict(optim), trainer=asdict(trainer))
    )
    module = DiffusionModule(
        setup.cfg, flow, optim, trainer.max_steps, *setup.latent_args(), ema_decay, setup.info
    )
    setup.announce("diffusion", module.dit, run_dir)
    return fit_and_export(trainer, module, setup.datamodule, "diffusion")


class LatentSetup(ShardSetup):
    """What a DiT family's fit needs from its shards, made once: the shards' setup, the tokenizer
    that maps codes to latents, the preset sized to the data and the latent statistics (shared
    by `vtlm diffusion fit` and `vtlm forcing fit`)."""

    def __init__(self, preset_name: str, model, data: TokenDataConfig, frame_causal: bool):
        from vtlm.tokenizer.io import load_tokenizer

        super().__init__(preset_name, data)
        shards = self.shards
        tokenizer_dir = shards.extra.get("tokenizer_dir")
        if not tokenizer_dir or not Path(tokenizer_dir).is_dir():
            raise FileNotFoundError(
                f"data.train: the shards' tokenizer is not at {tokenizer_dir!r} (it maps codes to latents)"
            )
        self.tokenizer = load_tokenizer(tokenizer_dir)
        base = apply_overrides(preset(preset_name, frame_causal), model)
        self.cfg = self.sized(base, latent_dim=self.tokenizer.bottleneck.latent_dim)
        self.mean, self.std = latent_statistics(shards, self.tokenizer.bottleneck)

    def settings(self, **sections: dict) -> dict:
        """The run's settings for run.yaml: preset, model, data and the family's sections."""
        return self.run_settings(self.cfg, **sections)

    def latent_args(self) -> tuple:
        """(to_latents, latent_mean, latent_std) as the DiT modules take them."""
        return self.tokenizer.bottleneck, self.mean, self.std

    def announce(self, kind: str, net, run_dir: Path) -> None:
        window, cfg = self.data.window, self.cfg
        print(
            f"{kind}: {net.num_params() / 1e6:.2f}M parameters, {net.flops_per_example(window) / 1e9:.2f} GFLOPs per "
            f"training example ({window} latent frames of {cfg.grid_h}x{cfg.grid_w}x{cfg.latent_dim}); run dir {run_dir}",
            flush=True,
        )


COMMANDS = {"fit": fit}
