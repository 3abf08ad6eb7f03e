"""Lightning module that trains the GPT on token shards: network + next-token objective, on
the generator-training base (AdamW groups, warmup + cosine, EMA, gradient watch, export).

Batches: ``{"codes": (B, t, h, w) int64, "text": list of caption id lists}``. Gradient
accumulation, clipping, precision and strategy (DDP, FSDP) come from the Lightning Trainer.
"""

from __future__ import annotations

import torch

from vtlm.train.generator import CodeModule
from vtlm.train.optim import OptimConfig

from .config import GPTConfig
from .model import GPT
from .objective import GPTLossConfig, build_sequences, next_token_loss


class GPTModule(CodeModule):
    def __init__(
        self,
        model: GPTConfig,
        loss: GPTLossConfig,
        optim: OptimConfig,
        total_steps: int,
        ema_decay: float | None = None,
        compile: bool = False,
        tokenizer: dict | None = None,
    ):
        super().__init__("gpt", GPT(model), model, loss, optim, total_steps, ema_decay, compile, tokenizer)

    def _sequences(self, batch: dict, drop_captions: bool):
        codes = batch["codes"]
        drop = self.caption_drop(codes.shape[0], self.loss_cfg.caption_dropout) if drop_captions else None
        return build_sequences(self.gpt.vocab, codes, batch["text"], self.model_cfg.text_len, drop)

    def training_flops(self, batch: dict) -> float:
        """FLOPs of one training step on ``batch`` (forward + backward over its input tokens)."""
        b, t, h, w = batch["codes"].shape
        inputs = self.model_cfg.text_len + 2 + t * h * w  # BOS, caption, BOV, codes, EOV; minus the last
        return b * inputs * self.gpt.flops_per_token(inputs)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        sequences = self._sequences(batch, drop_captions=True)
        loss, logs = next_token_loss(
            self.gpt, sequences, self.loss_cfg, self.global_step, self.forward_hidden
        )
        size = batch["codes"].shape[0]
        self.log_training(loss, logs, size)
        self.log("train/corruption", self.loss_cfg.corruption(self.global_step), batch_size=size)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        sequences = self._sequences(batch, drop_captions=False)
        _, logs = next_token_loss(self.eval_net, sequences, GPTLossConfig(), step=0)
        self.log_validation(logs, "video_loss", batch["codes"].shape[0])
