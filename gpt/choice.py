"""Choosing codes from logits: temperature, top-k / top-p, and speculative acceptance.

``cfg`` is the GPT's ``SamplingConfig`` (``vtlm.gpt.sampling``); only its ``temperature``,
``top_k`` and ``top_p`` are read here. Logits are over video codes, (B, codebook) float.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .sampling import SamplingConfig


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """logits (B, V) with everything outside top-k / top-p set to -inf."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # keep the first token past the threshold
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def choose(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> torch.Tensor:
    """One code per row from logits (B, codebook).

    With top-k on, the draw is made among the k best codes only (their softmax, then top-p on
    them): the same distribution as masking the rest to -inf, without a softmax and a
    multinomial over the whole codebook at every step.
    """
    if cfg.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / cfg.temperature
    if not cfg.top_k or cfg.top_k >= logits.shape[-1]:
        logits = filter_logits(logits, 0, cfg.top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    values, codes = torch.topk(logits, cfg.top_k, dim=-1)  # sorted, best first
    if cfg.top_p < 1.0:
        probs = values.softmax(dim=-1)
        values = values.masked_fill(probs.cumsum(dim=-1) - probs > cfg.top_p, float("-inf"))
    pick = torch.multinomial(values.softmax(dim=-1), 1, generator=generator)
    return codes.gather(-1, pick).squeeze(-1)


def probabilities(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """The distribution (B, V) float that :func:`choose` draws from, for logits (B, V) and
    temperature > 0."""
    return filter_logits(logits.float() / cfg.temperature, cfg.top_k, cfg.top_p).softmax(dim=-1)


def speculate(
    logits: torch.Tensor, guesses: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None
) -> tuple[int, torch.Tensor]:
    """Verify guessed codes against the model: (how many are accepted, the code after them).

    ``logits`` (B, k, V): row j is the model's distribution for the position of guess j, given
    every earlier guess; row k - 1 the one after the last guess. ``guesses`` (B, k - 1).

    Each guess g is a point mass proposal, so it is accepted with probability p(g) (greedy: when
    it is the argmax); at the first rejection the code is drawn from p with g removed and
    renormalised. Every accepted or drawn code is then distributed exactly as p. Rows accept
    different runs; all keep the shortest (a row's code at that position is its accepted guess
    or its own redraw, both draws from p; its later guesses are dropped). When every guess is
    accepted the code after them is ``choose``'s draw from row k - 1, so k = 1 is plain sampling.
    """
    b, k, _ = logits.shape
    if k > 1:
        head, g = logits[:, :-1], guesses[..., None]
        if cfg.temperature == 0:
            best = head.argmax(dim=-1)
            accepted = best == guesses
        else:
            probs = probabilities(head.reshape(b * (k - 1), -1), cfg).view(b, k - 1, -1)
            draws = torch.rand(b, k - 1, generator=generator, device=logits.device)
            accepted = draws < probs.gather(-1, g)[..., 0]
        run = int(accepted.long().cumprod(dim=-1).sum(dim=-1).min())
        if run < k - 1:
            if cfg.temperature == 0:
                return run, best[:, run]
            p = probs[:, run]
            residual = p.scatter(-1, g[:, run], 0.0)
            residual = torch.where(residual.sum(dim=-1, keepdim=True) > 0, residual, p)
            redraw = torch.multinomial(residual, 1, generator=generator).squeeze(-1)
            return run, torch.where(accepted[:, run], guesses[:, run], redraw)
    return k - 1, choose(logits[:, -1], cfg, generator)
