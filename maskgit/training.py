"""Lightning module that trains the MaskGIT network on token shards: network + masked-token
objective, on the generator-training base (AdamW groups, warmup + cosine, EMA, gradient watch,
export).

Batches: ``{"codes": (B, t, h, w) int64, "text": list of caption id lists}``. Validation masks
with a generator seeded by the batch index, so its loss is comparable across validations.
"""

from __future__ import annotations

import torch

from vtlm.train.generator import CodeModule
from vtlm.train.optim import OptimConfig

from .config import MaskGITConfig
from .model import MaskGIT
from .objective import MaskGITLossConfig, build_batch, masked_token_loss


class MaskGITModule(CodeModule):
    def __init__(
        self,
        model: MaskGITConfig,
        loss: MaskGITLossConfig,
        optim: OptimConfig,
        total_steps: int,
        ema_decay: float | None = None,
        compile: bool = False,
        tokenizer: dict | None = None,
    ):
        net = MaskGIT(model)
        super().__init__("maskgit", net, model, loss, optim, total_steps, ema_decay, compile, tokenizer)

    def sequence_length(self, frames: int) -> int:
        """Training sequence length for ``frames`` latent frames (the frame-causal layout holds
        the frames twice: clean, then a masked copy)."""
        copies = 2 if self.model_cfg.frame_causal else 1
        return self.model_cfg.prefix_len + copies * frames * self.model_cfg.frame_tokens

    def training_flops(self, batch: dict) -> float:
        """FLOPs of one training step on ``batch`` (forward + backward over every input token)."""
        b, t = batch["codes"].shape[:2]
        length = self.sequence_length(t)
        return b * length * self.maskgit.flops_per_token(length)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        codes = batch["codes"]
        drop = self.caption_drop(codes.shape[0], self.loss_cfg.caption_dropout)
        masked = build_batch(self.model_cfg, self.loss_cfg, self.maskgit.mask_id, codes, batch["text"], drop)
        loss, logs = masked_token_loss(self.maskgit, masked, self.forward_hidden)
        self.log_training(loss, logs, codes.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        codes = batch["codes"]
        generator = torch.Generator(device=codes.device).manual_seed(batch_idx)
        net = self.eval_net
        masked = build_batch(
            self.model_cfg, self.loss_cfg, net.mask_id, codes, batch["text"], None, generator
        )
        _, logs = masked_token_loss(net, masked)
        self.log_validation(logs, "masked_loss", codes.shape[0])
