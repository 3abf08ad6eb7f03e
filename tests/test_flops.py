"""Training FLOPs, counted the same way for every family (vtlm.layers.flops), checked twice: against
a count by hand from the presets' shapes, and against torch's own FLOP counter over a real forward
and backward pass (attention on SDPA's math kernel, so its matrix products are counted too)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vtlm.diffusion.config import preset as dit_preset
from vtlm.diffusion.model import DiT
from vtlm.gpt.config import preset as gpt_preset
from vtlm.gpt.model import GPT
from vtlm.gpt.vocab import sequence_positions
from vtlm.maskgit.config import preset as maskgit_preset
from vtlm.maskgit.model import MaskGIT

# The demo's world: 512 text pieces, 1000 codes of 4 channels on an 8x8 latent grid, 32-piece captions.
WORLD = {"text_size": 512, "text_len": 32, "grid_h": 8, "grid_w": 8, "max_frames": 3}


def swiglu_hidden(dim: int, ratio: float) -> int:
    return 64 * ((int(ratio * dim) + 63) // 64)


def block_weights(dim: int, ratio: float) -> int:
    """qkv (3 d^2) + output projection (d^2) + SwiGLU (w1 and w3: 2 d h; w2: h d)."""
    h = swiglu_hidden(dim, ratio)
    return 3 * dim * dim + dim * dim + 2 * dim * h + h * dim


def by_hand_code_model(cfg, vocab_out: int, tokens: int) -> float:
    """Forward + backward FLOPs per token of a GPT / masked decoder, written out by hand."""
    per_token = cfg.depth * block_weights(cfg.dim, cfg.mlp_ratio) + cfg.dim * vocab_out
    attention = cfg.depth * 2 * 2 * tokens * cfg.dim  # scores q.k and the sum over values, per token
    return 3 * (2 * per_token + attention)


def by_hand_dit(cfg, frames: int) -> float:
    d, text = cfg.dim, cfg.text_len
    latent_tokens = frames * cfg.grid_h * cfg.grid_w
    tokens = text + latent_tokens
    every_token = cfg.depth * (block_weights(d, cfg.mlp_ratio) + 6 * d * d) + 2 * d * d  # + adaLN; time MLP
    latent_only = cfg.latent_dim * d + 2 * d * d + d * cfg.latent_dim  # input, output adaLN, output
    attention = cfg.depth * 4 * tokens * d
    return 3 * (tokens * (2 * every_token + attention) + latent_tokens * 2 * latent_only)


def counted(run) -> float:
    """FLOPs torch's counter sees in ``run()`` (forward and backward), attention on the math kernel."""
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        run()
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ["micro", "mini", "tiny"])
def test_gpt_training_flops_match_a_count_by_hand_and_torch(name):
    cfg = replace(gpt_preset(name), codebook_size=1000, **WORLD)
    model = GPT(cfg)
    tokens = cfg.max_len - 1  # the inputs of a training sequence
    ours = model.flops_per_token(tokens)
    assert ours == pytest.approx(by_hand_code_model(cfg, model.vocab.size, tokens), rel=0.01)
    ids = torch.randint(0, model.vocab.size, (2, tokens))
    positions = sequence_positions(cfg.text_len, cfg.max_frames, cfg.grid_h, cfg.grid_w, with_eov=True)[
        :tokens
    ]
    assert counted(lambda: model(ids, positions).sum().backward()) == pytest.approx(
        2 * tokens * ours, rel=0.01
    )


@pytest.mark.parametrize("name", ["micro", "mini", "tiny"])
def test_maskgit_training_flops_match_a_count_by_hand_and_torch(name):
    cfg = replace(maskgit_preset(name), codebook_size=1000, **WORLD)
    model = MaskGIT(cfg)
    tokens = cfg.text_len + 2 + cfg.max_frames * cfg.frame_tokens
    ours = model.flops_per_token(tokens)
    assert ours == pytest.approx(by_hand_code_model(cfg, cfg.codebook_size, tokens), rel=0.01)


@pytest.mark.parametrize(
    "name, frame_causal", [("micro", False), ("mini", False), ("mini", True), ("tiny", False)]
)
def test_dit_training_flops_match_a_count_by_hand_and_torch(name, frame_causal):
    cfg = replace(dit_preset(name, frame_causal), latent_dim=4, **WORLD)
    model = DiT(cfg)
    frames = cfg.max_frames
    ours = model.flops_per_example(frames)
    assert ours == pytest.approx(by_hand_dit(cfg, frames), rel=0.01)
    latents = torch.randn(2, cfg.latent_dim, frames, cfg.grid_h, cfg.grid_w)
    levels, text = torch.rand(2, frames), torch.randint(0, cfg.text_size, (2, cfg.text_len))
    assert counted(lambda: model(latents, levels, text).sum().backward()) == pytest.approx(2 * ours, rel=0.01)


def test_the_meter_counts_cached_gpt_decoding_call_by_call():
    """One window from a caption, no guidance: a prefill of the caption prefix, then one call per
    code with one more key each time; guidance doubles every call's rows."""
    from vtlm.gpt.sampling import SamplingConfig, sample_codes

    cfg = replace(
        gpt_preset("debug"), codebook_size=64, text_size=64, text_len=4, grid_h=2, grid_w=2, max_frames=2
    )
    model = GPT(cfg)

    def per_token(keys: int) -> float:
        return 2 * model.block_weights + 4 * cfg.depth * cfg.dim * keys + 2 * cfg.dim * model.vocab.size

    prefix = cfg.text_len + 2  # BOS, caption, BOV
    codes = 2 * cfg.frame_tokens
    # the prefill's matmuls run on every prefix token, its output layer on the last one only
    prefill = (
        prefix * (2 * model.block_weights + 4 * cfg.depth * cfg.dim * prefix) + 2 * cfg.dim * model.vocab.size
    )
    steps = sum(per_token(prefix + i + 1) for i in range(codes - 1))
    for scale, rows in ((1.0, 1), (3.0, 2)):
        before = model.meter.total
        sample_codes(model, [[5, 6]], 2, SamplingConfig(cfg_scale=scale))
        assert model.meter.total - before == pytest.approx(rows * (prefill + steps), rel=1e-9)


def test_the_meter_counts_every_diffusion_step():
    from vtlm.diffusion.flow import SamplerConfig, sample

    cfg = replace(
        dit_preset("debug"), latent_dim=4, text_len=4, text_size=64, grid_h=2, grid_w=2, max_frames=2
    )
    model = DiT(cfg)
    text = torch.randint(1, 64, (3, cfg.text_len))
    for solver, calls in (("euler", 5), ("heun", 9)):
        before = model.meter.total
        sample(model, (3, 4, 2, 2, 2), text, SamplerConfig(steps=5, solver=solver))
        assert model.meter.total - before == pytest.approx(3 * calls * model.flops_per_example(2) / 3)


def test_the_meter_counts_masked_decoding_steps():
    """Joint masked decoding of one window: every step runs the whole sequence through the blocks
    and the output layer over the video positions."""
    from vtlm.maskgit.sampling import MaskGITSamplingConfig, sample_codes

    cfg = replace(
        maskgit_preset("debug"), codebook_size=64, text_size=64, text_len=4, grid_h=2, grid_w=2, max_frames=2
    )
    model = MaskGIT(cfg)
    tokens, video = cfg.prefix_len + 2 * cfg.frame_tokens, 2 * cfg.frame_tokens
    step = (
        tokens * (2 * model.block_weights + 4 * cfg.depth * cfg.dim * tokens)
        + video * 2 * cfg.dim * cfg.codebook_size
    )
    before = model.meter.total
    sample_codes(model, [[5, 6]], 2, MaskGITSamplingConfig(steps=4))
    assert model.meter.total - before == pytest.approx(4 * step, rel=1e-9)
