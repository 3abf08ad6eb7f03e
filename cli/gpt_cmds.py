"""``vtlm gpt fit``: train the GPT over [caption | video codes] on token shards."""

from __future__ import annotations

from dataclasses import asdict

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.gpt.config import GPTConfig, preset
from vtlm.gpt.objective import GPTLossConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .overrides import apply_overrides, overrides_of
from .runs import ShardSetup, fit_and_export, start_run

GPTOverrides = overrides_of(GPTConfig)


def fit(
    preset_name: str = "small",
    model: GPTOverrides = GPTOverrides(),
    loss: GPTLossConfig = GPTLossConfig(),
    optim: OptimConfig = OptimConfig(lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95)),
    data: TokenDataConfig = TokenDataConfig(),
    trainer: TrainerConfig = TrainerConfig(out_dir="runs/gpt"),
    ema_decay: float | None = None,
    compile: bool = False,
) -> str:
    """Train the GPT on token shards; resume from the run's last checkpoint when there is one.

    The vocabulary (text pieces + video codes), the latent grid and the context length come
    from the text model and the shards; the preset sets the architecture. Writes
    OUT/checkpoints, OUT/logs and, at the end, OUT/gpt (config.yaml + weights.safetensors,
    with the tokenizer and text model it pairs with), which `vtlm sample` reads.

    Args:
        preset_name: GPT preset (debug, small ~20M, base ~120M, large ~350M).
        model: GPT fields to change from the preset (text_len, max_frames, rope, ...).
        loss: caption dropout (for CFG), text loss weight, context corruption.
        optim: AdamW with decay / no-decay groups, warmup + cosine.
        data: token shards, text model, window length, batch size.
        trainer: run directory, steps, time budget, hardware, precision, strategy, resumption.
        ema_decay: EMA of the weights (evaluated and exported); null to turn off. The decay
            in use at step n is min(ema_decay, (1 + n) / (10 + n)): 0.99 at step 900.
        compile: torch.compile the network (GPU; slow to start on CPU).
    """
    from vtlm.gpt.training import GPTModule

    setup = ShardSetup(preset_name, data)
    cfg = setup.sized(apply_overrides(preset(preset_name), model), codebook_size=setup.shards.codebook_size)
    sections = {"loss": asdict(loss), "optim": asdict(optim), "trainer": asdict(trainer)}
    run_dir = start_run(trainer, setup.run_settings(cfg, **sections))
    module = GPTModule(cfg, loss, optim, trainer.max_steps, ema_decay, compile, setup.info)
    seq = cfg.text_len + 2 + data.window * cfg.frame_tokens + 1
    print(
        f"gpt: {module.gpt.num_params() / 1e6:.2f}M parameters ({module.gpt.num_params(False) / 1e6:.2f}M without embeddings), "
        f"{module.gpt.flops_per_token(seq) / 1e6:.1f} MFLOPs per training token; vocab {module.gpt.vocab.size} "
        f"({cfg.text_size} text + {cfg.codebook_size} codes); sequences of {seq} tokens; run dir {run_dir}",
        flush=True,
    )
    return fit_and_export(trainer, module, setup.datamodule, "gpt")


COMMANDS = {"fit": fit}
