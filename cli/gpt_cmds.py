"""``vtlm gpt fit``: train the GPT over [caption | video codes] on token shards."""

from __future__ import annotations

from dataclasses import asdict, replace

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.gpt.config import GPTConfig, preset
from vtlm.gpt.objective import GPTLossConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .overrides import apply_overrides, overrides_of
from .runs import check_window, fit_and_export, pairing, start_run

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
        ema_decay: EMA of the weights (evaluated and exported); null to turn off.
        compile: torch.compile the network (GPU; slow to start on CPU).
    """
    from vtlm.data.token_datamodule import TokenDataModule
    from vtlm.gpt.training import GPTModule

    datamodule = TokenDataModule(data)
    shards = datamodule.train_shards
    h, w = shards.grid
    cfg = apply_overrides(preset(preset_name), model)
    cfg = replace(
        cfg, text_size=datamodule.text.vocab_size, codebook_size=shards.codebook_size, grid_h=h, grid_w=w
    )
    check_window(data.window, cfg.max_frames, shards, data.train)
    settings = {
        "preset": preset_name,
        "model": cfg.to_dict(),
        "loss": asdict(loss),
        "optim": asdict(optim),
        "data": asdict(data),
        "trainer": asdict(trainer),
    }
    run_dir = start_run(trainer, settings)
    tokenizer = pairing(shards, data.text_model, data.train)
    module = GPTModule(cfg, loss, optim, trainer.max_steps, ema_decay, compile, tokenizer)
    seq = cfg.text_len + 2 + data.window * cfg.frame_tokens + 1
    print(
        f"gpt: {module.gpt.num_params() / 1e6:.2f}M parameters ({module.gpt.num_params(False) / 1e6:.2f}M without embeddings), "
        f"{module.gpt.flops_per_token(seq) / 1e6:.1f} MFLOPs per training token; vocab {module.gpt.vocab.size} "
        f"({cfg.text_size} text + {cfg.codebook_size} codes); sequences of {seq} tokens; run dir {run_dir}",
        flush=True,
    )
    return fit_and_export(trainer, module, datamodule, "gpt")


COMMANDS = {"fit": fit}
