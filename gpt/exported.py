"""The GPT's one-token decoding step compiled ahead of time: ``torch.export``, then AOTInductor.

On a CPU, ``GPT.forward(..., compiled=True)`` runs its one-token steps through this. A
``torch.compile`` step pays Dynamo's guard checks and a Python wrapper at every token (0.6-0.7
ms of an 8 ms step on ``make bench``'s model, profiled); an exported step compiled to a shared
library is one C++ call. Its shapes are static: the position goes in as a (1,) tensor and
attention runs over the whole cache with the later slots masked
(``vtlm.layers.attention.static_cache_attention``), so one build serves every position of a
batch and cache shape. The KV caches are the model's own tensors, passed in at every call: an
eager prefill's keys are there, and the step's writes stay for later eager calls. The weights
are compiled in as constants, so a model whose parameters changed since a build (a version
counter moved: an optimizer step, ``load_state_dict``) gets a new build. A build takes about
20 s on a 2-core CPU and needs a C++ compiler, as ``torch.compile`` does.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from vtlm.layers.attention import StaticKV
from vtlm.layers.basic import linear

if TYPE_CHECKING:
    from .model import GPT


def cache_tensors(model: GPT) -> list[torch.Tensor]:
    """The model's KV caches as the step's inputs: keys then values of each block, (B, H, L, D)."""
    return [t for block in model.blocks for t in (block.attn.cache.k, block.attn.cache.v)]


def step_key(ids: torch.Tensor, positions: torch.Tensor, model: GPT) -> tuple:
    """What one build is specialized to: the shapes, dtypes and device of its inputs."""
    if model.blocks[0].attn.cache is None:
        raise RuntimeError("compiled decoding: call setup_caches first")
    cache = model.blocks[0].attn.cache.k
    return tuple((t.shape, t.dtype, t.device) for t in (ids, positions, cache))


class Builds(dict):
    """A model's exported steps by ``step_key``. Copies of a model (``copy.deepcopy``, pickling)
    start with none: a build holds its weights compiled in, so a copy makes its own."""

    def __deepcopy__(self, memo: dict) -> Builds:
        return Builds()

    def __reduce__(self):
        return Builds, ()


class _Traced(nn.Module):
    """What ``torch.export`` traces: the step with each block's keys and values passed in."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, ids, positions, start, *caches) -> torch.Tensor:
        pairs = [StaticKV(k, v) for k, v in zip(caches[0::2], caches[1::2])]
        return linear(self.model.hidden(ids, positions, start, caches=pairs), self.model.head)


class ExportedStep:
    """``step(ids (B, 1), positions (1, 3), start int) -> logits (B, 1, vocab.size)`` of the
    model it was built from, at the shapes of the call it was built for (``step_key``).

    The model's caches must be set up (``GPT.setup_caches``) for SDPA (flash-attn caches decode
    on a GPU, through ``graphed_step``)."""

    def __init__(self, model: GPT, ids: torch.Tensor, positions: torch.Tensor):
        self.key = step_key(ids, positions, model)
        if any(block.attn.cache.flash for block in model.blocks):
            raise RuntimeError("ExportedStep: the caches are flash-attn's (they decode on a GPU)")
        self.caches = cache_tensors(model)
        self.weights = list(model.parameters())
        self.versions = self._versions()
        start = torch.zeros(1, dtype=torch.long, device=ids.device)
        example = (ids, positions, start, *self.caches)
        held = [block.attn.cache for block in model.blocks]
        for block in model.blocks:  # the caches go in as inputs, not as buffers of the module
            block.attn.cache = None
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as folder:
            warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated", FutureWarning)  # torch's own
            try:
                with torch.no_grad():
                    program = torch.export.export(_Traced(model), example, strict=False)
            finally:
                for block, cache in zip(model.blocks, held):
                    block.attn.cache = cache
            package = torch._inductor.aoti_compile_and_package(
                program, package_path=str(Path(folder) / "step.pt2")
            )
            # the loader's own call: inputs and outputs as flat lists, none of the pytree
            # bookkeeping that the package's Python wrapper does at every call
            self.run = torch._inductor.aoti_load_package(package).loader.run

    def _versions(self) -> tuple[int, ...]:
        """Every weight's version counter: any in-place change of a weight moves one."""
        return tuple(w._version for w in self.weights)

    def fits(self, model: GPT, ids: torch.Tensor, positions: torch.Tensor) -> bool:
        """Whether this build serves this call: the same shapes, and :meth:`current`."""
        return self.key == step_key(ids, positions, model) and self.current(model)

    def current(self, model: GPT) -> bool:
        """Whether the model still has this build's cache tensors and weight tensors, none of
        the weights changed since (the shapes are the caller's to match: ``step_key``)."""
        return (
            self.caches[0] is model.blocks[0].attn.cache.k
            and self.weights[0] is model.embed.weight
            and self.versions == self._versions()
        )

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor, start: int) -> torch.Tensor:
        """Logits (B, 1, vocab.size) of ids (B, 1) at ``positions`` (1, 3), cache slot ``start``."""
        return self.run([ids, positions, torch.tensor([start], device=ids.device), *self.caches])[0]
