"""The GPT: a pre-norm decoder (RMSNorm, causal attention with RoPE, SwiGLU) over token ids.

The network maps ids (B, N) at positions (N, 3) to logits (B, N, vocab); what the sequence
means (vocab.py) and how it is trained (objective.py) or sampled (sampling.py) live apart.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from vtlm.layers.basic import RMSNorm, keep_transposed, linear
from vtlm.layers.block import Block, init_weights
from vtlm.layers.flops import FlopMeter, forward_flops, matmul_weights, training_flops
from vtlm.layers.rolling_cache import RollingKV
from vtlm.layers.rope import rope_angles

from .config import GPTConfig
from .exported import Builds, ExportedStep, step_key
from .vocab import Vocab


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.vocab = Vocab(cfg.text_size, cfg.codebook_size)
        self.embed = nn.Embedding(self.vocab.size, cfg.dim)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio, causal=True, backend=cfg.attention)
            for _ in range(cfg.depth)
        )
        self.norm = RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, self.vocab.size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        init_weights(self, self.blocks)
        self.meter = FlopMeter()  # forward FLOPs of every call (sampling costs)
        self.block_weights = matmul_weights(self.blocks)
        self.exported = Builds()  # compiled one-token steps by input shapes

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        start: int | None = None,
        caches: list[RollingKV] | None = None,
        last: int | None = None,
        mask: torch.Tensor | None = None,
        compiled: bool = False,
    ) -> torch.Tensor:
        """ids (B, N) int64, positions (N, 3) int -> logits (B, N, vocab.size) float.

        ``start``: decoding with the caches set up; ids are positions [start, start + N).
        ``caches``: one rolling cache per block to decode through instead (slots from ``start``).
        ``last``: logits of the last ``last`` positions only (B, last, vocab.size).
        ``mask``: (N, start + N) bool, which cached slots each id may attend to, replacing the
        causal rule (decoding out of raster order).
        ``compiled``: a one-token step on the static cache (N = 1, ``start`` given, no rolling
        caches, no mask) runs through :meth:`exported_step` on a CPU and :func:`graphed_step`
        on a GPU; any other call runs eagerly.
        """
        rows, n = ids.shape
        outputs = n if last is None else last
        cfg = self.cfg
        self.meter.add(rows * forward_flops(self.block_weights, cfg.depth, cfg.dim, n, (start or 0) + n))
        self.meter.add(rows * outputs * 2 * self.head.weight.numel())
        if compiled and n == 1 and start is not None and caches is None and mask is None:
            positions = positions.to(ids.device)
            if ids.is_cuda:  # static shapes, the position as a tensor: one graph for every position
                at = torch.tensor([start], device=ids.device)
                return graphed_step()(self, ids, positions, at).clone()
            return self.exported_step(ids, positions)(ids, positions, start)
        hidden = self.hidden(ids, positions, start, caches, mask)
        return linear(hidden if last is None else hidden[:, -last:], self.head)

    def hidden(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        start: int | torch.Tensor | None = None,
        caches: list[RollingKV] | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The normalized last hidden states (B, N, dim) that the output layer ``head`` maps to
        logits (training computes its loss from them chunk by chunk). ``start`` as in
        ``Attention.forward``: an int, or a (1,) tensor for the static-shape step."""
        rope = self.rotations(positions.to(ids.device))
        x = self.embed(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, rope, start, mask, None if caches is None else caches[i])
        return self.norm(x)

    def exported_step(self, ids: torch.Tensor, positions: torch.Tensor) -> ExportedStep:
        """The ahead-of-time compiled one-token step (``vtlm.gpt.exported``) for calls shaped
        like this one, built on first use and again after the weights change."""
        step = self.exported.get(step_key(ids, positions, self))  # a build of these shapes
        if step is None or not step.current(self):
            step = ExportedStep(self, ids, positions)
            self.exported[step.key] = step
        return step

    def rotations(self, positions: torch.Tensor) -> torch.Tensor:
        """RoPE rotations of positions (N, 3) (``vtlm.layers.rope.rope_angles``)."""
        return rope_angles(positions, self.cfg.dim // self.cfg.heads, self.cfg.rope, self.cfg.rope_base)

    def setup_caches(self, batch: int, length: int | None = None, dtype: torch.dtype | None = None) -> None:
        """Preallocate every layer's KV cache once, for ``batch`` sequences of ``length``.

        Single-sequence float32 decoding on CPU also keeps transposed copies of the weights
        (``vtlm.layers.basic.linear``), made here from the current weights.
        """
        weight = self.embed.weight
        for block in self.blocks:
            block.attn.setup_cache(batch, length or self.cfg.max_len, dtype or weight.dtype, weight.device)
        keep_transposed(self, batch == 1 and weight.device.type == "cpu" and weight.dtype == torch.float32)

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.embed.weight.numel()

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward, vtlm.layers.flops): 6 per weight of the
        blocks and the output layer, plus attention over ``seq_len`` keys (default: the context)."""
        seq_len = seq_len or self.cfg.max_len
        return training_flops(
            matmul_weights(self.blocks, self.head), self.cfg.depth, self.cfg.dim, 1, seq_len
        )


def _one_token(
    model: GPT, ids: torch.Tensor, positions: torch.Tensor, start: int | torch.Tensor
) -> torch.Tensor:
    return linear(model.hidden(ids, positions, start), model.head)


@functools.cache
def graphed_step():
    """The one-token step for CUDA: ``step(model, ids (B, 1), positions (1, 3), start (1,)
    int64 tensor) -> logits (B, 1, vocab.size)``, compiled with static shapes (attention over
    the whole cache, the slots after ``start`` masked: ``Attention``'s tensor ``start``) and
    ``mode="reduce-overhead"``, so inductor records it as a CUDA graph once per model and batch
    size and replays it at every position: one launch per token instead of one per kernel.
    Each replay overwrites the graph's output, so the caller copies it (``GPT.forward``)."""
    return torch.compile(_one_token, mode="reduce-overhead", dynamic=False)
