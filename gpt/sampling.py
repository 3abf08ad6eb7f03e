"""Sampling video codes from the GPT: cached decoding, CFG in one batch, sliding window,
and the faster schedules.

Generation runs latent frame by latent frame through a :class:`vtlm.gpt.stream.Stream`. While
the video fits in the context (``max_frames`` latent frames), every new token is one cached
forward step. Beyond it, the window slides: by default the caption and the last
``max_frames - 1`` latent frames are re-encoded as a new prefix (positions restart, as in
training) and the next frame is decoded from there, so a rollout can go far beyond the
training length; with ``rolling_cache`` the keys and values are kept instead (the oldest frame
leaves, held keys are rotated to their new positions; see ``stream.py`` for where that differs
from re-encoding).

Schedules: one token per network call (the plain sampler); speculative Jacobi decoding
(``jacobi_window`` > 1, ``jacobi.py``): each call verifies a run of guessed tokens and keeps
the longest accepted prefix, with the model's distribution unchanged; or rows decoded in
parallel (``row_lag`` > 0, ``parallel.py``, ZipAR / diagonal decoding): each row of latent
tokens starts a few calls after the row above, an approximation of the model's distribution
that needs far fewer calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from vtlm.layers.quant import int8_copy, is_int8

from .choice import choose, filter_logits  # noqa: F401  (the sampler's public choosers)
from .jacobi import decode_jacobi
from .model import GPT
from .parallel import decode_parallel
from .stream import Stream
from .vocab import check_request


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    # Keep the k most likely codes (0: all) and the smallest set with probability >= top_p (1: all).
    top_k: int = 0
    top_p: float = 1.0
    # Classifier-free guidance: logits = uncond + scale * (cond - uncond); 1 is plain conditional.
    cfg_scale: float = 1.0
    # Anti-drift: when the window slides, continue from the context decoded to pixels and
    # encoded again by the tokenizer (the codes a real clip of those frames would have), not
    # from the sampled codes themselves. Costs a decode and an encode of the video per new frame.
    reencode_context: bool = False
    # Slide the window by keeping keys and values (the oldest frame leaves, held keys are
    # rotated to their new positions) instead of re-encoding the window for every new frame.
    # Exact for a one-block network; deeper ones differ (vtlm.gpt.stream). No effect when
    # max_frames is 1.
    rolling_cache: bool = False
    # Speculative Jacobi decoding: tokens per network call (the last decided token and
    # jacobi_window - 1 guesses, from the same place in the previous latent frame), keeping the
    # longest accepted run; the distribution is the model's. 1: one token per call.
    jacobi_window: int = 1
    # Spatially parallel decoding (ZipAR / diagonal): each row of latent tokens starts this many
    # network calls after the row above (a frame's first row after the previous frame's last),
    # one token of every running row per call. 0: off; grid_w (or more): raster order, the
    # plain sampler; 1: diagonal decoding. Not exact: a token does not see the end of the rows
    # above it, still undecided. Runs attention on SDPA (a flash-attn cache takes no mask).
    row_lag: int = 0
    # Weights the network runs with: "fp32" as trained, or "int8" (weight-only, one scale per
    # output channel, vtlm.layers.quant): a quarter of the weight bytes read per token. Applies
    # to every linear layer; embeddings and norms stay as they are.
    weights: str = "fp32"
    # Run every one-token step of the plain sampler compiled: on a CPU exported and compiled
    # ahead of time (vtlm.gpt.exported: fused kernels, one C++ call per token), on a GPU with
    # static shapes, replayed as a CUDA graph (vtlm.gpt.model.graphed_step); the same tokens up
    # to float rounding. The first step of a batch shape compiles (~20 s on a 2-core CPU, again
    # after the weights change), so it pays off for long or many samples. Prefills, rolling
    # caches and the parallel schedules' blocks stay eager.
    compile: bool = False

    def __post_init__(self):
        if self.weights not in ("fp32", "int8"):
            raise ValueError(f"weights: expected 'fp32' or 'int8', got {self.weights!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature: expected >= 0 (0 is greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: expected a value in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k: expected >= 0, got {self.top_k}")
        if self.jacobi_window < 1:
            raise ValueError(f"jacobi_window: expected >= 1 tokens per call, got {self.jacobi_window}")
        if self.row_lag < 0:
            raise ValueError(f"row_lag: expected >= 0 (0: off), got {self.row_lag}")
        if self.row_lag and self.jacobi_window > 1:
            raise ValueError("row_lag: rows in parallel and jacobi_window > 1 are two schedules; choose one")
        if self.row_lag and self.rolling_cache:
            raise ValueError(
                "row_lag: decodes out of raster order, which the rolling cache does not hold; "
                "use it with the re-encoded window"
            )
        if self.rolling_cache and self.reencode_context:
            raise ValueError(
                "rolling_cache: keeps the keys of the sampled context, which reencode_context replaces "
                "at every slide; choose one"
            )


def decode_sequential(
    stream: Stream, context: torch.Tensor, new_frames: int, cfg: SamplingConfig, generator
) -> torch.Tensor:
    """Decode ``new_frames`` latent frames after ``context`` (B, t0, h, w) one token per network
    call -> (B, new_frames, h, w)."""
    b, t0, h, w = context.shape
    logits = stream.start(context, new_frames)
    first, count = t0 * h * w, new_frames * h * w
    out = []
    for i in range(count):
        code = choose(logits, cfg, generator)
        out.append(code)
        if i < count - 1:
            logits = stream.feed(code[:, None], first + i)[:, 0]
    return torch.stack(out, dim=1).view(b, new_frames, h, w)


def decode(
    stream: Stream, context: torch.Tensor, new_frames: int, cfg: SamplingConfig, generator
) -> torch.Tensor:
    """``new_frames`` latent frames (B, new, h, w) after ``context`` by ``cfg``'s schedule."""
    if cfg.jacobi_window > 1:
        return decode_jacobi(stream, context, new_frames, cfg, generator)
    if cfg.row_lag:
        return decode_parallel(stream, context, new_frames, cfg, generator)
    return decode_sequential(stream, context, new_frames, cfg, generator)


@torch.no_grad()
def sample_codes(
    model: GPT,
    captions: list[list[int]],
    num_frames: int,
    cfg: SamplingConfig,
    prefix: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reencode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Latent codes (B, num_frames, h, w): the prefix (B, t0, h, w) kept as given, the rest sampled.

    ``reencode``: codes (B, t, h, w) -> the codes of their decode / encode round trip through
    the tokenizer, used for the context of every slid window when ``cfg.reencode_context``.

    ``captions``: one list of at most ``text_len`` text ids per sample (empty: unconditional).
    The window slides once the video outgrows ``model.cfg.max_frames`` latent frames. Captions
    and prefix that do not fit the model are refused before any network call.
    """
    if cfg.weights == "int8" and not is_int8(model):
        model = int8_copy(model)  # a copy per call; the GPT generator keeps one instead
    m = model.cfg
    batch = len(captions)
    t0 = check_request(m, captions, num_frames, prefix, cfg.reencode_context and reencode is None)
    model.eval()
    rolling = cfg.rolling_cache and m.max_frames > 1
    spare = m.max_frames * m.grid_h if cfg.row_lag else 0  # the parallel rows' stand-ins
    stream = Stream(model, captions, cfg.cfg_scale, rolling, spare, compiled=cfg.compile)
    device = model.embed.weight.device
    video = (
        prefix if prefix is not None else torch.zeros(batch, 0, m.grid_h, m.grid_w, dtype=torch.long)
    ).to(device)
    if video.shape[1] > m.max_frames - 1:
        video_context = video[:, -(m.max_frames - 1) :] if m.max_frames > 1 else video[:, :0]
    else:
        video_context = video
    # First window: everything that fits after the context in one cached pass (rolling: all).
    first = num_frames - t0 if rolling else min(num_frames - t0, m.max_frames - video_context.shape[1])
    video = torch.cat([video, decode(stream, video_context, first, cfg, generator)], dim=1)
    while video.shape[1] < num_frames:  # slide: keep max_frames - 1 frames of context
        source = reencode(video) if cfg.reencode_context else video
        context = source[:, video.shape[1] - (m.max_frames - 1) :] if m.max_frames > 1 else video[:, :0]
        video = torch.cat([video, decode(stream, context, 1, cfg, generator)], dim=1)
    return video
