"""Cross-entropy of a linear output layer, chunked over rows, without the full logits.

``linear_cross_entropy(hidden, weight, targets, row_weights)`` returns the weighted sum
``sum_i row_weights[i] * CE(hidden[i] @ weight.T, targets[i])`` and the per-row losses
(float32, detached, for logging), the same numbers as ``F.cross_entropy`` on the full logits,
without ever holding the (rows, vocab) logits: rows go through in chunks, and each chunk's
gradients (softmax minus one-hot, times its row weight) are computed in the same pass, so
the backward pass only scales them by the incoming scalar gradient. On CPU the full float32
logits of a vocab-8192 GPT step are 67 MB tensors whose log-softmax, its backward and the zero
fill of its gradient took ~17% of a training step (bench profile); a chunk stays in cache.

The gradients are computed in the forward pass only when an input needs them.
"""

from __future__ import annotations

import torch


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, row_weights, chunk: int):
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        for start in range(0, hidden.shape[0], chunk):
            rows = slice(start, start + chunk)
            h, t = hidden[rows], targets[rows]
            logits = (h @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            losses[rows] = lse - logits.gather(1, t[:, None]).squeeze(1)
            if need_hidden or need_weight:  # d loss / d logits = w_i (softmax_i - onehot_i)
                grads = logits.sub_(lse[:, None]).exp_()
                grads[torch.arange(len(t), device=t.device), t] -= 1.0
                grads.mul_(row_weights[rows].float()[:, None])
                if need_hidden:
                    grad_hidden[rows] = (grads.to(weight.dtype) @ weight).to(hidden.dtype)
                if need_weight:
                    grad_weight.addmm_(grads.t(), h.float())
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(losses)
        total = (losses * row_weights.float()).sum()
        return total, losses

    @staticmethod
    def backward(ctx, grad_total, grad_losses):
        grad_hidden, grad_weight = ctx.saved_tensors
        d_hidden = None if grad_hidden is None else grad_hidden * grad_total.to(grad_hidden.dtype)
        d_weight = None if grad_weight is None else (grad_weight * grad_total).to(ctx.weight_dtype)
        return d_hidden, d_weight, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    row_weights: torch.Tensor,
    chunk: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted cross-entropy sum (scalar) and per-row losses (N,) float32 (detached) of the
    logits ``hidden @ weight.T``.

    hidden (N, C); weight (V, C), an output layer's weight; targets (N,) int64 in [0, V);
    row_weights (N,) float, constants (no gradient flows to them).
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1] or row_weights.shape != targets.shape:
        raise ValueError(
            f"expected hidden (N, C), targets (N,) and row_weights (N,), got {tuple(hidden.shape)}, "
            f"{tuple(targets.shape)}, {tuple(row_weights.shape)}"
        )
    return _LinearCrossEntropy.apply(hidden, weight, targets, row_weights.detach(), chunk)
