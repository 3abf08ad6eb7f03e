"""Multi-head self-attention with a backend choice and a static KV cache.

Backends: ``flash`` (flash-attn, CUDA only, fp16 / bf16; its KV-cache kernel for decoding)
and ``sdpa`` (``torch.nn.functional.scaled_dot_product_attention``, everywhere). ``auto``
takes flash-attn when it is installed and the inputs are CUDA fp16 / bf16, else SDPA; the
choice is logged once per process.

Layout: x (B, N, C); q, k, v (B, H, N, D). The cache is preallocated once for a maximum
batch and length (:meth:`Attention.setup_cache`), so decoding allocates nothing per token.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from .basic import linear
from .rope import apply_rope

log = logging.getLogger(__name__)
_LOGGED: set[str] = set()


def check_heads(dim: int, heads: int) -> None:
    """Refuse a width that does not split into heads of an even size (RoPE rotates pairs)."""
    if dim % heads or (dim // heads) % 2:
        raise ValueError(
            f"dim, heads: expected dim divisible by heads with an even head size, got {dim}, {heads}"
        )


def flash_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def choose_backend(requested: str, x: torch.Tensor) -> str:
    """``flash`` or ``sdpa`` for this input, given ``auto``, ``flash`` or ``sdpa``."""
    if requested not in ("auto", "flash", "sdpa"):
        raise ValueError(f"attention backend: expected 'auto', 'flash' or 'sdpa', got {requested!r}")
    usable = x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) and flash_available()
    if requested == "flash" and not usable:
        raise ValueError("attention backend 'flash' needs flash-attn installed and CUDA fp16/bf16 inputs")
    backend = "flash" if (requested == "flash" or (requested == "auto" and usable)) else "sdpa"
    if backend not in _LOGGED:
        _LOGGED.add(backend)
        log.info("attention backend: %s", backend)
    return backend


class KVCache(nn.Module):
    """Keys and values of past positions, preallocated and filled in place.

    Layout (B_max, H, N_max, D) for SDPA; (B_max, N_max, H, D) for flash-attn, whose decoding
    kernel writes into it directly.
    """

    def __init__(
        self, batch: int, heads: int, length: int, head_dim: int, dtype: torch.dtype, device, flash: bool
    ):
        super().__init__()
        self.flash = flash
        shape = (batch, length, heads, head_dim) if flash else (batch, heads, length, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    @property
    def length(self) -> int:
        return self.k.shape[1 if self.flash else 2]

    def write(self, k: torch.Tensor, v: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H, n, D) at positions [start, start + n); return all keys and values so far."""
        n, end = k.shape[2], start + k.shape[2]
        if end > self.length:
            raise ValueError(f"KV cache: position {end} beyond its length {self.length}")
        keys, values = self.k, self.v
        if k.shape[0] < keys.shape[0]:
            keys, values = keys[: k.shape[0]], values[: k.shape[0]]
        keys.narrow(2, start, n).copy_(k)
        values.narrow(2, start, n).copy_(v)
        return keys.narrow(2, 0, end), values.narrow(2, 0, end)


class Attention(nn.Module):
    """Self-attention: causal (GPT) or bidirectional (diffusion), RoPE on q and k."""

    def __init__(self, dim: int, heads: int, causal: bool, backend: str = "auto"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.head_dim, self.causal, self.backend = heads, dim // heads, causal, backend
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.cache: KVCache | None = None

    def setup_cache(self, batch: int, length: int, dtype: torch.dtype, device) -> None:
        """Preallocate the cache for decoding up to ``length`` positions of ``batch`` sequences;
        a cache of that size, dtype and device is kept as it is (nothing is read past what a
        run writes, so its stale slots need no clearing, and a captured CUDA graph keeps
        pointing at the same memory)."""
        probe = torch.empty(0, dtype=dtype, device=device)
        flash = choose_backend(self.backend, probe) == "flash"
        old = self.cache
        if old is not None and old.flash == flash and old.length == length and old.k.shape[0] == batch:
            if old.k.dtype == dtype and old.k.device == probe.device:
                return
        self.cache = KVCache(batch, self.heads, length, self.head_dim, dtype, device, flash)

    def forward(
        self,
        x: torch.Tensor,
        rope: torch.Tensor,
        start: int | torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, N, C) -> (B, N, C). ``rope``: rotations (``rope_angles``) of these N positions.

        ``start``: with a cache set up, x holds positions [start, start + N) and attends to
        every cached position before them (and causally among themselves when ``causal``). A
        (1,) int64 tensor on x's device instead of an int makes a static-shape step: the same
        shapes at every position (the cache written with ``index_copy_``, attention over all
        of it with the slots after the new positions masked), so a CUDA graph captured once
        replays at every position.
        ``mask``: (N, keys) bool, True where a query may attend (e.g. ``frame_causal_mask``);
        it replaces the causal rule and always runs on SDPA (flash-attn takes no mask).
        """
        b, n, _ = x.shape
        qkv = self.project(x)
        q, k = apply_rope(qkv[:2], rope)  # (B, H, N, D) each, rotated in one pass
        v = qkv[2]
        backend = choose_backend(self.backend, x)
        if start is not None and self.cache is None:
            raise RuntimeError("Attention: call setup_cache before decoding with start=")
        if isinstance(start, torch.Tensor):
            if mask is not None:
                raise ValueError("mask: a static-shape step (a tensor start) takes none")
            return linear(self._static_cached(q, k, v, start).reshape(b, n, -1), self.proj)
        if start is not None:
            if self.cache.flash:
                if mask is not None:
                    raise ValueError(
                        "mask: the flash-attn cache takes none (decode frame-causal layouts on SDPA)"
                    )
                return linear(self._flash_cached(q, k, v, start).reshape(b, n, -1), self.proj)
            k, v = self.cache.write(k, v, start)
        if mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return linear(y.transpose(1, 2).reshape(b, n, -1), self.proj)
        if backend == "flash" and start is None:
            from flash_attn import flash_attn_func

            y = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=self.causal)
            return linear(y.reshape(b, n, -1), self.proj)
        mask, causal = None, self.causal
        if causal and start is not None and start > 0:
            if n == 1:
                causal = False  # one new token sees every cached position
            else:  # a block of new tokens: causal among themselves, after the cache
                rows = torch.arange(n, device=x.device)[:, None] + start
                mask, causal = rows >= torch.arange(start + n, device=x.device)[None], False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        y = y.view(b, n, -1) if n == 1 else y.transpose(1, 2).reshape(b, n, -1)  # (B, H, 1, D) is (B, 1, C)
        return linear(y, self.proj)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, C) -> q, k, v stacked, (3, B, H, N, D), before RoPE (a view of one product)."""
        b, n, _ = x.shape
        return linear(x, self.qkv).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)

    def _static_cached(self, q, k, v, start: torch.Tensor) -> torch.Tensor:
        """q, k, v (B, H, n, D) at positions start + [0, n) -> (B, n, H, D): a step whose shapes
        do not depend on ``start`` ((1,) int64), for CUDA graphs."""
        if self.cache.flash:  # flash-attn's cache kernel takes the lengths as a tensor already
            return self._flash_cached(q, k, v, start)
        b = q.shape[0]
        return static_cache_attention(q, k, v, self.cache.k[:b], self.cache.v[:b], start, self.causal)

    def _flash_cached(self, q, k, v, start: int | torch.Tensor) -> torch.Tensor:
        from flash_attn import flash_attn_with_kvcache

        b = q.shape[0]
        cache_k, cache_v = self.cache.k[:b], self.cache.v[:b]  # (B, N, H, D), written in place
        if isinstance(start, torch.Tensor):
            seqlens = start.to(torch.int32).expand(b)
        else:
            seqlens = torch.full((b,), start, dtype=torch.int32, device=q.device)
        y = flash_attn_with_kvcache(
            q.transpose(1, 2),
            cache_k,
            cache_v,
            k=k.transpose(1, 2),
            v=v.transpose(1, 2),
            cache_seqlens=seqlens,
            causal=self.causal,
        )
        return y


def static_cache_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache_k: torch.Tensor,
    cache_v: torch.Tensor,
    start: torch.Tensor,
    causal: bool,
) -> torch.Tensor:
    """Attention with shapes that do not depend on the position: q, k, v (B, H, n, D) at slots
    ``start`` + [0, n) (``start`` a (1,) int64 tensor) -> (B, n, H, D). k and v are written into
    the caches (B, H, L, D) in place (``index_copy_``); the queries attend over all L slots,
    those after their own (``causal``) or after the new ones masked, so stale slots are never seen."""
    n = q.shape[2]
    slots = start + torch.arange(n, device=q.device)  # (n,)
    cache_k.index_copy_(2, slots, k.to(cache_k.dtype))
    cache_v.index_copy_(2, slots, v.to(cache_v.dtype))
    keys = torch.arange(cache_k.shape[2], device=q.device)[None]  # (1, L)
    allowed = keys <= slots[:, None] if causal else keys < start + n  # (n, L)
    return F.scaled_dot_product_attention(q, cache_k, cache_v, attn_mask=allowed).transpose(1, 2)


class StaticKV:
    """One layer's keys and values as plain tensors (B, H, L, D), for a step traced with its
    caches as inputs (``vtlm.gpt.exported``): :meth:`attend` is the static-shape step of
    :class:`Attention` over them, in the ``cache.attend`` form that ``Block`` takes."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        self.keys, self.values = keys, values

    def attend(
        self, attn: Attention, x: torch.Tensor, rope: torch.Tensor, start: torch.Tensor, mask: None = None
    ) -> torch.Tensor:
        """x (B, n, C) at slots ``start`` + [0, n) -> (B, n, C); ``mask`` must be None."""
        if mask is not None:
            raise ValueError("mask: a static-shape step takes none")
        b, n, _ = x.shape
        qkv = attn.project(x)
        q, k = apply_rope(qkv[:2], rope)
        y = static_cache_attention(q, k, qkv[2], self.keys[:b], self.values[:b], start, attn.causal)
        return linear(y.reshape(b, n, -1), attn.proj)
