"""The causal 3-D tokenizer as a network: shapes, causality, chunking, quantizer round trips, bad input."""

from dataclasses import replace

import pytest
import torch

from vtlm.tokenizer.blocks import streaming
from vtlm.tokenizer.config import TokenizerConfig, preset
from vtlm.tokenizer.model import VideoTokenizer


def randomized(cfg: TokenizerConfig, seed: int = 0) -> VideoTokenizer:
    """A tokenizer whose zero-initialized layers are perturbed, so every path carries signal."""
    torch.manual_seed(seed)
    model = VideoTokenizer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def video(frames: int, size: int = 16, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


TINY = TokenizerConfig(
    patch_size=2, base_channels=8, channel_mult=(1, 2, 2), spatial_downsample=4, temporal_downsample=4
)


@pytest.mark.parametrize("temporal, time_kernel", [(1, 3), (2, 3), (4, 3), (8, 3), (4, 1)])
def test_latent_frames_never_depend_on_later_frames(temporal, time_kernel):
    stages = max(1, temporal.bit_length() - 1)
    cfg = replace(
        TINY,
        temporal_downsample=temporal,
        spatial_downsample=2,
        patch_size=1,
        channel_mult=(1,) + (2,) * stages,
        res_time_kernel=time_kernel,
    )
    model = randomized(cfg)
    frames = 1 + 2 * temporal
    x = video(frames)
    base = model.encode_latents(x)
    assert base.shape[2] == 3
    for changed in range(1, frames):
        y = x.clone()
        y[:, :, changed:] = video(frames - changed, seed=changed)
        out = model.encode_latents(y)
        last_untouched = (changed - 1) // temporal  # latent j covers frames up to j * temporal
        assert torch.equal(out[:, :, : last_untouched + 1], base[:, :, : last_untouched + 1]), (
            changed,
            temporal,
        )
        assert not torch.equal(out[:, :, last_untouched + 1 :], base[:, :, last_untouched + 1 :])


def test_an_image_is_a_one_frame_video_in_the_same_code_space():
    model = randomized(TINY)
    clip = video(9)
    image_codes = model.encode(clip[:, :, :1])
    assert image_codes.shape == (1, 1, 4, 4)
    assert torch.equal(image_codes[:, 0], model.encode(clip)[:, 0])
    assert model.decode(image_codes).shape == (1, 3, 1, 16, 16)


@pytest.mark.parametrize("out_blocks, time_kernel", [(0, 3), (1, 3), (1, 1)])
def test_chunked_encode_and_decode_equal_one_pass(out_blocks, time_kernel):
    model = randomized(
        replace(TINY, decoder_out_blocks=out_blocks, res_time_kernel=time_kernel, norm_groups=8)
    )
    assert any(k.startswith("decoder.out_blocks.") for k in model.state_dict()) == (out_blocks > 0)
    conv = model.decoder.mid[0].conv1.conv
    assert conv.kernel_size == (time_kernel, 3, 3) and model.decoder.mid[0].norm1.num_groups == 8
    long = video(1 + 4 * 7)
    full = model.encode_latents(long)
    for chunk in (4, 8, 12):
        assert torch.equal(model.encode_latents(long, chunk_frames=chunk), full)
    assert torch.equal(model.encode(long, chunk_frames=8), model.encode(long))
    decoded = model.decode_latents(full)
    assert decoded.shape == long.shape
    assert torch.allclose(model.decode_latents(full, chunk_frames=2), decoded, atol=1e-6)
    with pytest.raises(ValueError, match="chunk_frames"):
        model.encode(long, chunk_frames=6)
    with streaming(model.encoder):
        pass
    assert all(getattr(m, "stream", None) is None for m in model.modules())


@pytest.mark.parametrize("quantizer", ["fsq", "lfq", "vq"])
def test_indices_round_trip_exactly(quantizer):
    model = randomized(replace(TINY, quantizer=quantizer, lfq_bits=8, vq_codebook_size=64, vq_dim=4))
    if quantizer == "vq":  # initialize the codebook by k-means on real encoder outputs
        model.train()
        model(video(9, batch=4))
        model.eval()
    x = video(9, batch=2, seed=3)
    indices = model.encode(x)
    assert indices.dtype == torch.int64 and indices.shape == (2, 3, 4, 4)
    assert 0 <= int(indices.min()) and int(indices.max()) < model.codebook_size
    latents = model.encode_latents(x)
    assert torch.allclose(model.bottleneck.indices_to_latents(indices), latents, atol=1e-6)
    assert torch.allclose(model.decode(indices), model.decode_latents(latents), atol=1e-5)


@pytest.mark.parametrize("quantizer", ["none", "kl"])
def test_continuous_bottlenecks(quantizer):
    model = randomized(replace(TINY, quantizer=quantizer, latent_channels=6))
    x = video(5)
    latents = model.encode_latents(x)
    assert latents.shape == (1, 6, 2, 4, 4)
    assert model.decode_latents(latents).shape == x.shape
    assert torch.equal(model.encode_latents(x), latents)  # the KL mean, not a sample, at eval
    with pytest.raises(TypeError, match="continuous"):
        model.encode(x)
    model.train()
    _, q = model(x)
    assert q.indices is None and torch.isfinite(q.aux_loss)


def test_bad_inputs_say_what_was_expected():
    model = VideoTokenizer(TINY).eval()
    with pytest.raises(ValueError, match=r"\[-1, 1\].*255"):
        model.encode((video(5) + 1) * 127.5)
    with pytest.raises(ValueError, match=r"frames: expected 1 \+ k \* 4.*got 8"):
        model.encode(video(8))
    with pytest.raises(ValueError, match="divisible by 4"):
        model.encode(torch.zeros(1, 3, 5, 18, 16))
    with pytest.raises(ValueError, match="uint8"):
        model.encode(torch.zeros(1, 3, 5, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"codes in \[0, 4375\)"):
        model.decode(torch.full((1, 2, 4, 4), 5000))
    with pytest.raises(ValueError, match="channel_mult"):
        TokenizerConfig(channel_mult=(1, 2))
    with pytest.raises(ValueError, match="quantizer"):
        TokenizerConfig(quantizer="rvq")
    with pytest.raises(ValueError, match="res_time_kernel"):
        TokenizerConfig(res_time_kernel=2)
    with pytest.raises(ValueError, match="unknown field"):
        TokenizerConfig.from_dict({"base_channel": 3})


def test_presets_build_and_report_their_size():
    sizes = {
        name: sum(p.numel() for p in VideoTokenizer(preset(name)).parameters()) for name in ("debug", "small")
    }
    assert sizes["debug"] < 1e6 < sizes["small"] < 10e6
    assert preset("base").spatial_downsample == 8 and preset("base").attention
    with pytest.raises(ValueError, match="preset"):
        preset("huge")
