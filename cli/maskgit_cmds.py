"""``vtlm maskgit fit``: train the masked-decoding transformer on the GPT's token shards."""

from __future__ import annotations

from dataclasses import asdict

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.maskgit.config import MaskGITConfig, preset
from vtlm.maskgit.objective import MaskGITLossConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .overrides import apply_overrides, overrides_of
from .runs import ShardSetup, fit_and_export, start_run

MaskGITOverrides = overrides_of(MaskGITConfig)


def fit(
    preset_name: str = "small",
    model: MaskGITOverrides = MaskGITOverrides(),
    loss: MaskGITLossConfig = MaskGITLossConfig(),
    optim: OptimConfig = OptimConfig(lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95)),
    data: TokenDataConfig = TokenDataConfig(),
    trainer: TrainerConfig = TrainerConfig(out_dir="runs/maskgit"),
    ema_decay: float | None = None,
    compile: bool = False,
) -> str:
    """Train the masked-decoding transformer on token shards; resume from the run's last
    checkpoint when there is one.

    The vocabulary (text pieces + video codes + MASK), the latent grid and the context come
    from the text model and the shards; the preset sets the architecture (matched to the GPT
    preset of the same name). Writes OUT/checkpoints, OUT/logs and, at the end, OUT/maskgit
    (config.yaml + weights.safetensors, with the tokenizer and text model it pairs with), which
    `vtlm sample` reads.

    Args:
        preset_name: preset (debug, mini, tiny, small ~20M, base ~120M, large ~350M).
        model: fields to change from the preset (frame_causal, text_len, max_frames, ...).
        loss: caption dropout (for CFG), masking schedule, clean video prefixes.
        optim: AdamW with decay / no-decay groups, warmup + cosine.
        data: token shards, text model, window length, batch size.
        trainer: run directory, steps, time budget, hardware, precision, strategy, resumption.
        ema_decay: EMA of the weights (evaluated and exported); null to turn off. The decay
            in use at step n is min(ema_decay, (1 + n) / (10 + n)): 0.99 at step 900.
        compile: torch.compile the network (GPU; slow to start on CPU).
    """
    from vtlm.maskgit.training import MaskGITModule

    setup = ShardSetup(preset_name, data)
    cfg = setup.sized(apply_overrides(preset(preset_name), model), codebook_size=setup.shards.codebook_size)
    sections = {"loss": asdict(loss), "optim": asdict(optim), "trainer": asdict(trainer)}
    run_dir = start_run(trainer, setup.run_settings(cfg, **sections))
    module = MaskGITModule(cfg, loss, optim, trainer.max_steps, ema_decay, compile, setup.info)
    net, seq = module.maskgit, module.sequence_length(data.window)
    layout = "frame-causal" if cfg.frame_causal else "joint"
    print(
        f"maskgit ({layout}): {net.num_params() / 1e6:.2f}M parameters ({net.num_params(False) / 1e6:.2f}M without "
        f"embeddings), {net.flops_per_token(seq) / 1e6:.1f} MFLOPs per training token; {cfg.text_size} text + "
        f"{cfg.codebook_size} codes + MASK; sequences of {seq} tokens; run dir {run_dir}",
        flush=True,
    )
    return fit_and_export(trainer, module, setup.datamodule, "maskgit")


COMMANDS = {"fit": fit}
