"""Discriminator, GAN losses and stabilizers, and the file-loaded perceptual loss."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vtlm.tokenizer.adversarial import (
    LeCAM,
    adaptive_weight,
    adversarial_factor,
    d_loss,
    g_loss,
    hinge_d_loss,
    hinge_g_loss,
    ns_d_loss,
    ns_g_loss,
    r1_penalty,
)
from vtlm.tokenizer.discriminator import DiscriminatorConfig, PatchDiscriminator3D
from vtlm.tokenizer.perceptual import TAP_CHANNELS, PerceptualLoss, VGG16Features

# ---------------------------------------------------------------- discriminator


@pytest.fixture(scope="module")
def disc() -> PatchDiscriminator3D:
    torch.manual_seed(0)
    return PatchDiscriminator3D(DiscriminatorConfig())


@pytest.mark.parametrize(
    "shape, out",
    [
        ((2, 3, 1, 32, 32), (2, 1, 1, 2, 2)),
        ((2, 3, 9, 32, 32), (2, 1, 2, 2, 2)),
        ((1, 3, 17, 64, 64), (1, 1, 3, 6, 6)),
    ],
)
def test_discriminator_shapes(disc, shape, out):
    with torch.no_grad():
        logits = disc(torch.rand(shape) * 2 - 1)
    assert logits.shape == out
    assert torch.isfinite(logits).all()


def test_discriminator_param_count(disc):
    n = sum(p.numel() for p in disc.parameters())
    assert n == 8_293_185


def test_discriminator_depends_on_input(disc):
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = disc(x), disc(-x)
    assert not torch.allclose(a, b)
    x.requires_grad_(True)
    disc(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_discriminator_is_causal_in_time():
    """Output step j sees only input frames <= 2**num_layers * j (causal pad, per-frame norm)."""
    d = PatchDiscriminator3D(DiscriminatorConfig.debug())  # num_layers = 2: stride 4 in time
    x = torch.rand(1, 3, 17, 24, 24) * 2 - 1
    y = x.clone()
    y[:, :, 5] = torch.rand_like(y[:, :, 5])  # change frame 5 only
    with torch.no_grad():
        a, b = d(x), d(y)
    assert a.shape[2] == 5
    changed = (a - b).abs().flatten(3).amax(dim=(0, 1, 3))  # per output time step
    assert torch.all(changed[:2] == 0)  # steps 0, 1 see frames <= 4
    assert torch.all(changed[2:] > 0)


def test_discriminator_batch_elements_independent(disc):
    x = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    y = x.clone()
    y[1] = -y[1]
    with torch.no_grad():
        a, b = disc(x), disc(y)
    assert torch.equal(a[0], b[0])
    assert not torch.allclose(a[1], b[1])


def test_discriminator_config_validation_and_small_input():
    with pytest.raises(ValueError, match="num_layers"):
        DiscriminatorConfig(num_layers=0)
    with pytest.raises(ValueError, match="max_channels"):
        DiscriminatorConfig(channels=64, max_channels=32)
    with pytest.raises(ValueError, match="temporal_kernel"):
        DiscriminatorConfig(temporal_kernel=0)
    with pytest.raises(ValueError, match="24 px"):
        PatchDiscriminator3D()(torch.zeros(1, 3, 1, 16, 16))


# ---------------------------------------------------------------- GAN losses


def test_hinge_losses_known_values():
    real, fake = torch.full((2, 1, 3, 2, 2), 2.0), torch.full((2, 1, 3, 2, 2), -2.0)
    assert hinge_d_loss(real, fake).item() == 0.0
    assert hinge_d_loss(fake, real).item() == pytest.approx(0.5 * (3 + 3))
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(1.0)
    assert hinge_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)
    assert d_loss("hinge", real, fake).item() == 0.0
    assert g_loss("hinge", fake).item() == pytest.approx(2.0)


def test_ns_losses_closed_form():
    real, fake = torch.tensor([0.5, 3.0, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    sig = torch.sigmoid
    want_d = 0.5 * (-torch.log(sig(real)).mean() - torch.log(1 - sig(fake)).mean())
    assert ns_d_loss(real, fake).item() == pytest.approx(want_d.item(), rel=1e-5)
    assert ns_g_loss(fake).item() == pytest.approx(-torch.log(sig(fake)).mean().item(), rel=1e-5)
    assert ns_d_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))
    # stable at large logits where log(sigmoid) would underflow
    assert math.isfinite(ns_g_loss(torch.tensor([-200.0])).item())
    assert ns_g_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0)
    assert d_loss("non_saturating", real, fake).item() == ns_d_loss(real, fake).item()
    assert g_loss("non_saturating", fake).item() == ns_g_loss(fake).item()


def test_loss_dispatch_rejects_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        d_loss("wasserstein", torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="kind"):
        g_loss("vanilla", torch.zeros(1))


# ---------------------------------------------------------------- LeCAM


def test_lecam_ema_update():
    reg = LeCAM(decay=0.9)
    reg.update(torch.full((4, 1, 2, 2), 2.0), torch.full((4, 1, 2, 2), -1.0))
    assert reg.ema_real.item() == pytest.approx(0.2)
    assert reg.ema_fake.item() == pytest.approx(-0.1)
    reg.update(torch.tensor([1.0, 3.0]), torch.tensor([-1.0]))
    assert reg.ema_real.item() == pytest.approx(0.9 * 0.2 + 0.1 * 2.0)
    assert reg.ema_fake.item() == pytest.approx(0.9 * -0.1 + 0.1 * -1.0)
    assert set(reg.state_dict()) == {"ema_real", "ema_fake"}
    assert LeCAM().decay == 0.99


def test_lecam_penalty():
    reg = LeCAM()
    reg.ema_real.fill_(1.0)
    reg.ema_fake.fill_(-1.0)
    # real below ema_fake and fake above ema_real: nothing to penalize
    assert reg.penalty(torch.tensor([-2.0, -1.5]), torch.tensor([2.0, 1.0])).item() == 0.0
    # real = 1 is 2 above ema_fake; fake = -2 is 3 below ema_real
    real = torch.tensor([1.0, -3.0], requires_grad=True)
    fake = torch.tensor([-2.0, 5.0], requires_grad=True)
    p = reg.penalty(real, fake)
    assert p.item() == pytest.approx(4.0 / 2 + 9.0 / 2)
    p.backward()
    assert real.grad[0] > 0 and fake.grad[0] < 0
    reg.update(real, fake)  # no grad needed, no error on leaf tensors requiring grad
    assert not reg.ema_real.requires_grad


# ---------------------------------------------------------------- R1


class LinearD(nn.Module):
    """D(x) = sum(w * x) per sample: d D / d x = w, so R1 = ||w||^2."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_r1_linear_discriminator():
    d = LinearD((3, 2, 4, 4))
    real = torch.randn(5, 3, 2, 4, 4)
    r1 = r1_penalty(d, real)
    assert r1.item() == pytest.approx(d.w.pow(2).sum().item(), rel=1e-5)
    r1.backward()  # d ||w||^2 / dw = 2w
    torch.testing.assert_close(d.w.grad, 2 * d.w.detach())


def test_r1_trains_patch_discriminator():
    d = PatchDiscriminator3D(DiscriminatorConfig.debug())
    r1 = r1_penalty(d, torch.rand(2, 3, 5, 24, 24) * 2 - 1)
    assert r1.item() > 0
    r1.backward()
    grads = {name: p.grad for name, p in d.named_parameters()}
    last_bias = grads.pop("layers.8.conv.bias")  # a constant shift: no effect on dD/dx
    assert last_bias is None
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["layers.0.conv.weight"].abs().sum() > 0
    assert grads["layers.8.conv.weight"].abs().sum() > 0


# ---------------------------------------------------------------- adaptive weight


def test_adaptive_weight_ratio_clamp_and_no_grad_left():
    w = nn.Parameter(torch.randn(4, 3))
    rec, g = 3.0 * w.sum(), 0.5 * w.sum()  # gradient norms 3 * sqrt(12) and 0.5 * sqrt(12)
    got = adaptive_weight(rec, g, w, eps=1e-4)
    want = 3 * math.sqrt(12) / (0.5 * math.sqrt(12) + 1e-4)
    assert got.item() == pytest.approx(want, rel=1e-5)
    assert not got.requires_grad
    assert w.grad is None
    assert adaptive_weight(rec, g, w, max_weight=2.0).item() == 2.0
    assert adaptive_weight(rec, -g, w).item() == pytest.approx(want, rel=1e-5)  # norms, not signs
    # the graph is still there for the real backward
    (rec + g).backward()
    torch.testing.assert_close(w.grad, torch.full((4, 3), 3.5))


def test_adaptive_weight_through_a_layer():
    layer = nn.Conv2d(4, 3, 1)
    h = torch.randn(2, 4, 5, 5)
    out = layer(h)
    rec, g = out.pow(2).mean(), -out.mean()
    got = adaptive_weight(rec, g, layer.weight)
    gr = torch.autograd.grad(rec, layer.weight, retain_graph=True)[0]
    gg = torch.autograd.grad(g, layer.weight, retain_graph=True)[0]
    assert got.item() == pytest.approx((gr.norm() / (gg.norm() + 1e-4)).item(), rel=1e-5)
    assert layer.weight.grad is None


# ---------------------------------------------------------------- schedule


def test_adversarial_factor():
    assert adversarial_factor(0, start_step=10, warmup_steps=4) == 0.0
    assert adversarial_factor(9, 10, 4) == 0.0
    assert [adversarial_factor(s, 10, 4) for s in range(10, 15)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert adversarial_factor(10, 10) == 1.0
    assert adversarial_factor(10**6, 10, 4) == 1.0
    assert adversarial_factor(0, 0) == 1.0
    with pytest.raises(ValueError, match="warmup_steps"):
        adversarial_factor(0, 0, -1)


# ---------------------------------------------------------------- perceptual loss


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """Random weights written in torchvision's VGG16 layout and LPIPS's vgg.pth layout."""
    root = tmp_path_factory.mktemp("weights")
    g = torch.Generator().manual_seed(0)
    vgg = VGG16Features()
    state = {}
    for k, v in vgg.state_dict().items():  # He-style init so activations survive 13 layers
        fan_in = v[0].numel() if v.ndim == 4 else 1
        scale = math.sqrt(2.0 / fan_in) if v.ndim == 4 else 0.01
        state[k] = torch.randn(v.shape, generator=g) * scale
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the head: ignored
    lpips = {
        f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(TAP_CHANNELS)
    }
    torch.save(state, root / "vgg16-397923af.pth")
    torch.save(lpips, root / "vgg.pth")
    return root / "vgg16-397923af.pth", root / "vgg.pth", state, lpips


@pytest.fixture(scope="module")
def lpips(weight_files):
    return PerceptualLoss.from_files(weight_files[0], weight_files[1])


def test_perceptual_loads_weights_frozen_eval(lpips, weight_files):
    _, _, state, heads = weight_files
    torch.testing.assert_close(lpips.vgg.features[28].weight, state["features.28.weight"])
    torch.testing.assert_close(lpips.lins[3].weight, heads["lin3.model.1.weight"])
    assert not any(p.requires_grad for p in lpips.parameters())
    lpips.train()
    assert not lpips.training and not any(m.training for m in lpips.modules())


def test_perceptual_zero_on_equal_positive_otherwise_grad_flows(lpips):
    x = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    assert lpips(x, x).item() == 0.0
    x.requires_grad_(True)
    loss = lpips(x, y)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_perceptual_matches_reference_formula(lpips):
    """Compare one image pair with the LPIPS formula written out step by step."""
    x, y = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    fx, fy = lpips.vgg((x - shift) / scale), lpips.vgg((y - shift) / scale)
    want = 0.0
    for a, b, lin in zip(fx, fy, lpips.lins):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        want += (lin.weight * (a - b).pow(2)).sum(1).mean()
    assert lpips(x, y).item() == pytest.approx(want.item(), rel=1e-4)


def test_perceptual_5d_and_4d_agree_and_max_frames(lpips):
    x, y = torch.rand(2, 1, 3, 3, 32, 32) * 2 - 1
    frames = [lpips(x[:, :, t], y[:, :, t]).item() for t in range(3)]
    assert lpips(x, y).item() == pytest.approx(sum(frames) / 3, rel=1e-5)
    assert lpips(x[:, :, 1], y[:, :, 1]).item() == pytest.approx(lpips(x[:, :, 1:2], y[:, :, 1:2]).item())
    # 2 evenly spaced frames out of 3 are the first and the last
    assert lpips(x, y, max_frames=2).item() == pytest.approx((frames[0] + frames[2]) / 2, rel=1e-5)
    lpips.max_frames = 1
    try:
        assert lpips(x, y).item() == pytest.approx(frames[0], rel=1e-5)
    finally:
        lpips.max_frames = None


def test_perceptual_small_inputs_upsampled(lpips):
    x, y = torch.rand(2, 1, 3, 16, 16) * 2 - 1
    got = lpips(x, y)
    up = [F.interpolate(v, size=(32, 32), mode="bilinear", align_corners=False) for v in (x, y)]
    assert got.item() > 0
    assert got.item() == pytest.approx(lpips(*up).item(), rel=1e-5)


def test_perceptual_missing_file(weight_files, tmp_path):
    vgg_path, lpips_path, _, _ = weight_files
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth") as err:
        PerceptualLoss.from_files(tmp_path / "nope.pth", lpips_path)
    assert "nope.pth" in str(err.value) and "downloads nothing" in str(err.value)
    with pytest.raises(FileNotFoundError, match="lpips_missing.pth") as err:
        PerceptualLoss.from_files(vgg_path, tmp_path / "lpips_missing.pth")
    assert "vgg.pth" in str(err.value)


def test_perceptual_wrong_keys(weight_files, tmp_path):
    vgg_path, lpips_path, state, heads = weight_files
    broken = {k: v for k, v in state.items() if k != "features.12.bias"}
    torch.save(broken, tmp_path / "vgg_broken.pth")
    with pytest.raises(ValueError, match="features.12.bias"):
        PerceptualLoss.from_files(tmp_path / "vgg_broken.pth", lpips_path)
    extra = dict(heads, **{"lin5.model.1.weight": torch.zeros(1, 8, 1, 1)})
    torch.save(extra, tmp_path / "lpips_extra.pth")
    with pytest.raises(ValueError, match="lin5.model.1.weight"):
        PerceptualLoss.from_files(vgg_path, tmp_path / "lpips_extra.pth")
    # the two files swapped: every expected VGG key is missing
    with pytest.raises(ValueError, match="features.0.weight"):
        PerceptualLoss.from_files(lpips_path, vgg_path)
    wrong_shape = dict(heads, **{"lin0.model.1.weight": torch.zeros(1, 32, 1, 1)})
    torch.save(wrong_shape, tmp_path / "lpips_shape.pth")
    with pytest.raises(ValueError, match="lin0.model.1.weight"):
        PerceptualLoss.from_files(vgg_path, tmp_path / "lpips_shape.pth")


def test_perceptual_safetensors(weight_files, tmp_path, lpips):
    from safetensors.torch import save_file

    _, lpips_path, state, _ = weight_files
    save_file(state, tmp_path / "vgg16.safetensors")
    loaded = PerceptualLoss.from_files(tmp_path / "vgg16.safetensors", lpips_path)
    x, y = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    assert loaded(x, y).item() == pytest.approx(lpips(x, y).item())


_UNPICKLED = []


def _side_effect():
    _UNPICKLED.append("ran")
    return torch.zeros(1)


class _Payload:
    """Unpickling this would call _side_effect: weights_only loading must refuse it."""

    def __reduce__(self):
        return (_side_effect, ())


def test_perceptual_refuses_pickled_objects(weight_files, tmp_path):
    vgg_path, _, _, heads = weight_files
    evil = dict(heads, **{"lin0.model.1.weight": _Payload()})
    torch.save(evil, tmp_path / "evil.pth")
    with pytest.raises(pickle.UnpicklingError, match="[Ww]eights only"):
        PerceptualLoss.from_files(vgg_path, tmp_path / "evil.pth")
    assert _UNPICKLED == []
    torch.load(tmp_path / "evil.pth", weights_only=False)  # what a plain unpickle would do
    assert _UNPICKLED == ["ran"]
