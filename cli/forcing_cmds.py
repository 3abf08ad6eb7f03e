"""``vtlm forcing fit``: train the frame-causal diffusion (diffusion forcing) family on the GPT's
token shards, with the diffusion baseline's latents and presets (frame-causal, matched to the GPT)."""

from __future__ import annotations

from dataclasses import asdict

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.diffusion.forcing import ForcingConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .diffusion_cmds import DiTOverrides, LatentSetup
from .runs import fit_and_export, start_run


def fit(
    preset_name: str = "small",
    model: DiTOverrides = DiTOverrides(),
    forcing: ForcingConfig = ForcingConfig(),
    optim: OptimConfig = OptimConfig(lr=3e-4, weight_decay=0.0, betas=(0.9, 0.95)),
    data: TokenDataConfig = TokenDataConfig(),
    trainer: TrainerConfig = TrainerConfig(out_dir="runs/forcing"),
    ema_decay: float | None = None,
) -> str:
    """Train the frame-causal DiT with one noise level per latent frame on token shards, mapped
    to the tokenizer's latents; resume from the run's last checkpoint when there is one.

    Same shards, text model, window and trainer settings as `vtlm gpt fit` and `vtlm diffusion
    fit`. Writes OUT/forcing, which `vtlm sample` reads (`--forcing.*` sets its sampler).

    Args:
        preset_name: frame-causal DiT preset, matched to the GPT preset of the same name by parameters.
        model: DiT fields to change from the preset (frame_causal stays true).
        forcing: per-frame level sampling, history and history-dropout shares, the context-noise
            augmentation (max_context_noise), caption dropout.
        optim: AdamW and the warmup + cosine schedule.
        data: token shards, text model, window length, batch size.
        trainer: run directory, steps, time budget, hardware, precision, strategy, resumption.
        ema_decay: EMA of the weights (evaluated and exported); null to turn off. The decay
            in use at step n is min(ema_decay, (1 + n) / (10 + n)): 0.99 at step 900.
    """
    from vtlm.diffusion.forcing_training import ForcingModule

    setup = LatentSetup(preset_name, model, data, frame_causal=True)
    sections = {"forcing": asdict(forcing), "optim": asdict(optim), "trainer": asdict(trainer)}
    run_dir = start_run(trainer, setup.settings(**sections))
    module = ForcingModule(
        setup.cfg, forcing, optim, trainer.max_steps, *setup.latent_args(), ema_decay, setup.info
    )
    setup.announce("forcing", module.dit, run_dir)
    return fit_and_export(trainer, module, setup.datamodule, "forcing")


COMMANDS = {"fit": fit}
