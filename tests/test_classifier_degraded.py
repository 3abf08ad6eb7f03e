"""Tokenizer-like degradations for the attribute classifier: what each one does, seeded draws and
the share of degraded training clips, and the color front end on degraded clips. (Held-out
accuracy on degraded clips is in test_classifier.py, with the trained classifier.)"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from vtlm.data.clips import to_clip_tensor
from vtlm.data.splits import clip_seed
from vtlm.data.synthetic import ShapesConfig, render_shapes
from vtlm.data.synthetic.shapes import COLOR_NAMES
from vtlm.eval.adherence.augment import Degradation, augment_batch
from vtlm.eval.adherence.classifier import ClassifierConfig, _targets
from vtlm.eval.adherence.color_regions import palette_affinity

DEMO = ClassifierConfig().data
# A moderate tokenizer-like degradation: about what a decent 4x-spatial, 4x-temporal autoencoder
# does to these clips (soft edges, a little smear of moving objects, slightly shifted colors).
MODERATE = dict(smear=0.3, down=2, sigma=0.7, hue=0.05, desaturate=0.1)


def render(cfg: ShapesConfig, count: int, split: str) -> tuple[torch.Tensor, list[dict]]:
    """Clips 0..count-1 of a split (dataset seed 0): videos (N, 3, T, R, R) and their labels."""
    clips = [render_shapes(cfg, clip_seed(0, split, i)) for i in range(count)]
    return torch.stack([to_clip_tensor(c.frames) for c in clips]), [c.labels for c in clips]


@pytest.fixture(scope="module")
def clips():
    return render(DEMO, 12, "val")


# --- each degradation does what it says ---------------------------------------------------------


def test_no_degradation_leaves_clips_unchanged(clips):
    videos, _ = clips
    torch.testing.assert_close(Degradation.fixed(len(videos)).apply(videos), videos, atol=1e-6, rtol=0)


def test_spatial_degradations_soften_edges_and_keep_the_mean(clips):
    videos, _ = clips

    def edge(v: torch.Tensor) -> float:  # mean over clips of the largest step between pixels along x
        return (v[..., 1:] - v[..., :-1]).abs().amax((1, 2, 3, 4)).mean().item()

    for kw in (dict(sigma=1.0), dict(down=2), dict(down=4), dict(block=1.0)):
        out = Degradation.fixed(len(videos), **kw).apply(videos)
        assert out.shape == videos.shape and out.min() >= -1 and out.max() <= 1
        torch.testing.assert_close(out.mean((2, 3, 4)), videos.mean((2, 3, 4)), atol=0.02, rtol=0)
        if "block" not in kw:
            assert edge(out) < 0.7 * edge(videos), kw
    weak, strong = (Degradation.fixed(len(videos), sigma=s).apply(videos) for s in (0.5, 1.5))
    assert edge(strong) < edge(weak) < edge(videos)
    blocks = Degradation.fixed(len(videos), block=1.0).apply(videos)  # constant 4 x 4 blocks
    assert torch.equal(blocks, blocks[..., ::4, ::4].repeat_interleave(4, 3).repeat_interleave(4, 4))


def test_temporal_smear_moves_only_moving_content(clips):
    videos, _ = clips
    still = videos[:, :, :1].expand_as(videos).contiguous()  # every frame is frame 0
    for kw in (dict(smear=0.8), dict(group=1.0)):
        torch.testing.assert_close(
            Degradation.fixed(len(videos), **kw).apply(still), still, atol=1e-6, rtol=0
        )
        assert (Degradation.fixed(len(videos), **kw).apply(videos) - videos).abs().max() > 0.3, kw
    grouped = Degradation.fixed(len(videos), group=1.0).apply(videos)
    torch.testing.assert_close(grouped[:, :, 0], videos[:, :, 0])  # frame 0 is its own latent step
    torch.testing.assert_close(
        grouped[:, :, 1:5], videos[:, :, 1:5].mean(2, keepdim=True).expand(-1, -1, 4, -1, -1)
    )


def test_color_degradations_keep_grays_gray_and_shift_colors(clips):
    videos, _ = clips
    gray = torch.linspace(-1, 1, 32).view(1, 1, 1, 1, 32).expand(2, 3, 3, 32, 32)
    for kw in (dict(hue=0.1), dict(desaturate=0.5)):
        torch.testing.assert_close(Degradation.fixed(2, **kw).apply(gray), gray, atol=1e-5, rtol=0)
        assert (Degradation.fixed(len(videos), **kw).apply(videos) - videos).abs().max() > 0.08, kw
    flat = Degradation.fixed(len(videos), desaturate=1.0).apply(videos)
    torch.testing.assert_close(flat[:, 0], flat[:, 1])
    torch.testing.assert_close(flat[:, 1], flat[:, 2])
    mixes = Degradation.draw(64, 1.0, torch.Generator().manual_seed(0)).mix
    torch.testing.assert_close(mixes.sum(2), torch.ones(64, 3))  # rows sum to 1: grays stay gray


# --- seeded draws and the share of degraded training clips --------------------------------------


def test_augmentation_is_deterministic_in_the_seed_and_degrades_the_share(clips):
    videos, labels = clips
    videos, labels = videos.repeat(4, 1, 1, 1, 1), labels * 4  # 48 clips
    targets = torch.from_numpy(np.stack([_targets(lab) for lab in labels]))

    def run(seed: int, share: float) -> tuple[torch.Tensor, torch.Tensor]:  # flips, then degradations
        return augment_batch(videos, targets, 0.0, torch.Generator().manual_seed(seed), 1.0, share)

    a, b, c = run(0, 0.6), run(0, 0.6), run(1, 0.6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    flips = [torch.stack([v.flip(3) if m else v for v in videos]) for m in (False, True)]
    flips = [f.flip(2) for f in flips] + flips  # every mirror / reverse combination of each clip

    def undegraded(out):  # clips equal to one of their flips: not degraded
        return sum(any(torch.equal(out[i], f[i]) for f in flips) for i in range(len(out)))

    assert undegraded(run(0, 0.0)[0]) == len(videos)
    assert undegraded(run(0, 1.0)[0]) <= 3  # a draw may be (almost) no degradation
    assert 0.2 * len(videos) <= undegraded(a[0]) <= 0.6 * len(videos)  # about 40% left clean


def test_degradation_settings_are_checked_and_part_of_the_cache_key():
    base = ClassifierConfig()
    keys = {base.key(), replace(base, degrade=0.0).key(), replace(base, degrade_share=0.3).key()}
    assert len(keys) == 3
    assert {"degrade", "degrade_share"} <= set(base.to_dict())
    with pytest.raises(ValueError, match="degrade"):
        ClassifierConfig(degrade=-0.5)
    with pytest.raises(ValueError, match="degrade_share"):
        ClassifierConfig(degrade_share=1.5)


# --- the color front end on degraded clips -----------------------------------------------------


def test_front_end_finds_each_objects_color_in_degraded_clips():
    """Inside each object's disc, its own color channel holds the most affinity, also blurred."""
    videos, labels = render(DEMO, 40, "val")
    yy, xx = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    for kw in ({}, MODERATE, dict(sigma=1.5), dict(smear=0.6, group=0.6)):
        affinity = palette_affinity(Degradation.fixed(len(videos), **kw).apply(videos))[:, :-1]
        hits, own = [], []
        for b, lab in enumerate(labels):
            for i, obj in enumerate(lab["objects"]):
                for t, (x, y) in enumerate(obj["positions"]):
                    others = [o["positions"][t] for j, o in enumerate(lab["objects"]) if j != i]
                    if any(np.hypot(x - ox, y - oy) < 2 * obj["radius"] + 6 for ox, oy in others):
                        continue  # another object (or its blur) nearby
                    disc = ((xx - x) ** 2 + (yy - y) ** 2 <= (0.7 * obj["radius"]) ** 2).float()
                    mass = (affinity[b, :, t] * disc).sum((1, 2))
                    hits.append(int(mass.argmax()) == COLOR_NAMES.index(obj["color"]))
                    own.append(float(mass[COLOR_NAMES.index(obj["color"])] / disc.sum()))
        assert len(hits) > 500 and np.mean(hits) > 0.99 and np.mean(own) > 0.8, (
            kw,
            np.mean(hits),
            np.mean(own),
        )
