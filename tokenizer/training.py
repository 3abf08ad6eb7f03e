"""Lightning module that trains the tokenizer: network + objective + optimizers, EMA weights,
validation metrics (PSNR, SSIM, codebook utilization and perplexity) and reconstruction grids.

Optimization is manual: one generator step per batch, then one discriminator step once the
adversarial loss has started. ``global_step`` counts generator steps only.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from vtlm.common.pixel_metrics import psnr_per_frame, ssim_per_frame
from vtlm.data.writers import frame_strip, grid_video, to_uint8, upscale, write_gif, write_mp4, write_png
from vtlm.train.checkpoint import save_model_dir
from vtlm.train.ema import EMA
from vtlm.train.health import GradNormWatch
from vtlm.train.optim import OptimConfig, build_optimizer, build_scheduler

from .config import TokenizerConfig
from .model import VideoTokenizer
from .objective import LossConfig, TokenizerObjective


class TokenizerModule(L.LightningModule):
    """Trains a :class:`VideoTokenizer`. Batches: ``{"video": (B, 3, T, H, W) in [-1, 1], ...}``."""

    def __init__(
        self,
        model: TokenizerConfig,
        loss: LossConfig,
        optim: OptimConfig,
        total_steps: int,
        ema_decay: float | None = 0.999,
        sample_dir: str | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        # Plain values only, so Lightning checkpoints load with weights_only=True.
        self.save_hyperparameters(
            {
                "model": model.to_dict(),
                "loss": asdict(loss),
                "optim": asdict(optim),
                "total_steps": total_steps,
                "ema_decay": ema_decay,
            }
        )
        self.model_cfg, self.loss_cfg, self.optim_cfg, self.total_steps = model, loss, optim, total_steps
        self.tokenizer = VideoTokenizer(model)
        self.objective = TokenizerObjective(loss)
        self.ema = EMA(self.tokenizer, ema_decay) if ema_decay else None
        self.sample_dir = Path(sample_dir) if sample_dir else None
        self._code_counts: torch.Tensor | None = None
        self.grad_watch = GradNormWatch("tokenizer")
        self.last_val: dict[str, float] = {}

    # -- optimization -----------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = build_optimizer(self.tokenizer, self.optim_cfg)
        sched = build_scheduler(opt_g, self.optim_cfg, self.total_steps)
        optimizers, schedulers = [opt_g], [{"scheduler": sched, "interval": "step"}]
        if self.objective.discriminator is not None:
            betas = self.optim_cfg.betas
            optimizers.append(
                torch.optim.AdamW(
                    self.objective.discriminator.parameters(), lr=self.loss_cfg.discriminator_lr, betas=betas
                )
            )
        return optimizers, schedulers

    def _optimizers(self):
        opts = self.optimizers()
        return (opts, None) if not isinstance(opts, list) else (opts[0], opts[1])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        video = batch["video"]
        step = self.global_step
        opt_g, opt_d = self._optimizers()
        if hasattr(self.tokenizer.bottleneck, "entropy_scale"):
            self.tokenizer.bottleneck.entropy_scale = self.objective.lfq_entropy_scale(step)
        recon, quantized = self.tokenizer(video)
        loss, logs = self.objective.generator_loss(
            video, recon, quantized, step, self.tokenizer.decoder.last_layer
        )
        if not torch.isfinite(loss):
            parts = {k: float(v) for k, v in logs.items()}
            raise FloatingPointError(
                f"tokenizer: non-finite loss {float(loss.detach())} at step {step} ({parts}); stopping, the last checkpoint is kept"
            )
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        grad_norm = self.grad_watch(self.tokenizer.parameters(), self.optim_cfg.grad_clip, step)
        self.log("train/grad_norm", grad_norm, prog_bar=False)
        opt_g.step()
        self.lr_schedulers().step()
        if opt_d is not None and self.objective.adversarial_factor(step) > 0:
            d_loss, d_logs = self.objective.discriminator_loss(video, recon)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.optimizer.step()  # the raw optimizer: global_step counts generator steps only
            logs.update(d_logs)
        if self.ema is not None:
            self.ema.update(self.tokenizer)
        kind, size = ("image" if video.shape[2] == 1 else "video"), video.shape[0]
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=size)
        self.log(f"train/rec_{kind}", logs.pop("rec"), batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=size)
        with torch.no_grad():
            self.log(
                f"train/psnr_{kind}",
                psnr_per_frame(recon.clamp(-1, 1), video).mean(),
                prog_bar=True,
                batch_size=size,
            )
        return loss.detach()

    # -- validation -------------------------------------------------------------------------
    @property
    def eval_tokenizer(self) -> VideoTokenizer:
        """The weights that are evaluated and exported: the EMA average when kept."""
        return self.ema.shadow if self.ema is not None else self.tokenizer

    def on_validation_epoch_start(self) -> None:
        size = self.tokenizer.codebook_size
        self._code_counts = torch.zeros(size, dtype=torch.long, device=self.device) if size else None

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        video = batch["video"]
        tokenizer = self.eval_tokenizer
        recon, quantized = tokenizer(video)
        recon, size = recon.clamp(-1, 1), video.shape[0]
        self.log("val/psnr", psnr_per_frame(recon, video).mean(), sync_dist=True, batch_size=size)
        if min(video.shape[-2:]) >= 11:
            self.log("val/ssim", ssim_per_frame(recon, video).mean(), sync_dist=True, batch_size=size)
        self.log("val/rec_l1", (recon - video).abs().mean(), sync_dist=True, batch_size=size)
        if self._code_counts is not None and quantized.indices is not None:
            self._code_counts += torch.bincount(
                quantized.indices.flatten(), minlength=self._code_counts.numel()
            )
        if batch_idx == 0:
            self._write_grid(video, recon)

    def on_validation_epoch_end(self) -> None:
        counts = self._code_counts
        if counts is not None and counts.sum() > 0:
            if self.trainer.world_size > 1:
                counts = self.all_gather(counts).sum(dim=0)
            probs = counts.double() / counts.sum()
            entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
            self.log("val/utilization", (counts > 0).double().mean().float(), rank_zero_only=True)
            self.log("val/perplexity", entropy.exp().float(), rank_zero_only=True)
        metrics = self.trainer.callback_metrics
        self.last_val = {k: float(v) for k, v in metrics.items() if k.startswith("val/")}

    def _write_grid(self, video: torch.Tensor, recon: torch.Tensor) -> None:
        if self.sample_dir is None or self.global_rank != 0:
            return
        count = min(4, video.shape[0])
        columns = [to_uint8(video[:count]), to_uint8(recon[:count])]
        grid = upscale(grid_video(columns), max(1, 128 // video.shape[-1]))
        stem = self.sample_dir / f"step{self.global_step:07d}"
        write_png(stem.with_suffix(".png"), frame_strip(grid, max_frames=9))
        write_gif(stem.with_suffix(".gif"), grid, fps=6)
        write_mp4(stem.with_suffix(".mp4"), grid, fps=6)

    # -- export -----------------------------------------------------------------------------
    def export(self, path: str | Path, training: dict | None = None) -> Path:
        """Write the evaluated weights and the config as a model directory (load_tokenizer reads it)."""
        extra = {
            "step": int(self.global_step),
            "val": self.last_val,
            "params": count_parameters(self.tokenizer),
            "training": training or {},
        }
        return save_model_dir(
            path, "tokenizer", self.model_cfg.to_dict(), self.eval_tokenizer.state_dict(), extra
        )


def count_parameters(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
