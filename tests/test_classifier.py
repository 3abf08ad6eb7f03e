"""The shapes attribute classifier: accuracy on held-out real clips, caching, determinism, adherence."""

import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from vtlm.cli.world import SHAPES as WORLD_SHAPES
from vtlm.data.clips import to_clip_tensor
from vtlm.data.splits import clip_seed
from vtlm.data.synthetic import ShapesConfig, render_shapes
from vtlm.data.synthetic.captions import DIRECTIONS, direction_word
from vtlm.data.synthetic.shapes import COLOR_NAMES, PALETTE
from vtlm.data.video_io import get_backend
from vtlm.data.writers import write_mp4
from vtlm.eval.adherence.augment import Degradation, augment_batch
from vtlm.eval.adherence.captions import caption_adherence, direction_votes, motion_direction
from vtlm.eval.adherence.classifier import (
    SHIPPED_DIR,
    ClassifierConfig,
    _targets,
    cache_path,
    color_centroids,
    features,
    load_or_train,
    palette_affinity,
    predict,
    train_classifier,
)

TINY = ClassifierConfig(width=4, crop_width=4, code_dim=8, steps=3, batch_size=4, val_clips=4)
DEMO = ClassifierConfig().data
# The world the demo builds (vtlm.cli.world.SHAPES, judged on 17 frames): the harness's classifier
# for it ships trained with vtlm (the default recipe, 300 steps), so the tests below check the
# weights every run on that world is judged with, without training them. Rebuilding them
# (`vtlm eval classifier`) records new held-out accuracies, which the shipped-classifier test
# checks. On the NUM_TEST held-out clips of that world they give presence, colors, shape, size and
# colors + shapes 1.0, direction 0.91, + directions 0.885.
WORLD = replace(WORLD_SHAPES, num_frames=17)
SHIPPED = ClassifierConfig(data=WORLD)
NUM_TEST = 200  # held-out test-split clips: never seen in training (train split) or recorded (val)
# A moderate tokenizer-like degradation: about what a decent 4x-spatial, 4x-temporal autoencoder
# does to these clips (soft edges, moving objects a little smeared, colors slightly shifted).
MODERATE = dict(smear=0.3, down=2, sigma=0.7, hue=0.05, desaturate=0.1)


def render(cfg: ShapesConfig, count: int, split: str = "test") -> tuple[torch.Tensor, list[dict]]:
    """Clips 0..count-1 of a split (dataset seed 0): videos (N, 3, T, R, R) and their labels."""
    clips = [render_shapes(cfg, clip_seed(0, split, i)) for i in range(count)]
    return torch.stack([to_clip_tensor(c.frames) for c in clips]), [c.labels for c in clips]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The shipped classifier of the demo's world, as the harness gets it (an empty cache)."""
    cache = tmp_path_factory.mktemp("classifier_cache")
    return load_or_train(SHIPPED, cache), cache


@pytest.fixture(scope="session")
def held_out():
    return render(WORLD, NUM_TEST)


@pytest.fixture(scope="session")
def predicted(trained, held_out):
    """The trained classifier's predictions on the clean held-out clips (made once)."""
    return predict(trained[0], held_out[0])


# --- direction over a window, palette assignment, centroids, flips -------------------------------


@pytest.mark.parametrize("degrees", [0, 10, 44, 46, 90, 135, 180, 200, 269, 300, 359])
def test_straight_motion_has_the_caption_word_of_its_velocity(degrees):
    v = 1.5 * np.array([math.cos(math.radians(degrees)), -math.sin(math.radians(degrees))])
    positions = np.array([10.0, 10.0]) + np.arange(9)[:, None] * v
    assert motion_direction(positions) == direction_word(*v)
    votes = direction_votes(positions)  # split between the two flanking words, linearly in angle
    low = int(degrees // 45)
    expected = np.zeros(9)
    expected[1 + low % 8] += 1 - (degrees - 45 * low) / 45
    expected[1 + (low + 1) % 8] += (degrees - 45 * low) / 45
    np.testing.assert_allclose(votes, expected, atol=1e-9)


def test_dominant_direction_is_the_longest_travel_and_follows_the_window():
    right = [[4.0 + 2 * t, 5.0] for t in range(4)]  # 3 steps of 2 px right
    left = [[right[-1][0] - 1.5 * t, 5.0] for t in range(1, 11)]  # then 10 steps of 1.5 px left
    path = right + left
    np.testing.assert_allclose(direction_votes(path)[[1, 5]], [6 / 21, 15 / 21])
    assert motion_direction(path) == "left"
    assert motion_direction(path, 0, 4) == "right"  # only the first 3 steps are judged
    assert motion_direction([[3.0, 3.0]] * 9) == "still"
    assert motion_direction([[3.0, 3.0 + 0.05 * t] for t in range(9)]) == "still"  # below MIN_STEP
    assert motion_direction(path, 5, 6) == "still"  # one frame shows no motion


def test_direction_agrees_with_labels_when_nothing_changes_the_velocity():
    """Objects in no event keep their initial velocity: the label word is then the truth."""
    checked = 0
    for seed in range(150):
        labels = render_shapes(DEMO, seed).labels
        for i, obj in enumerate(labels["objects"]):
            if not any(i in e["objects"] for e in labels["events"]):
                assert motion_direction(obj["positions"]) == obj["direction"], (seed, i)
                checked += 1
    assert checked >= 20


def test_palette_colors_and_dark_grays_are_assigned_to_their_channel():
    rgb = [PALETTE[c] for c in COLOR_NAMES] + [(0, 0, 0), (40, 40, 40), (85, 85, 85)]
    video = torch.tensor(rgb, dtype=torch.float32).T.reshape(1, 3, 1, 1, len(rgb)) / 127.5 - 1
    affinity = palette_affinity(video)[0, :, 0, 0]  # (channels, pixels)
    assert affinity.argmax(0).tolist() == list(range(len(COLOR_NAMES))) + [len(COLOR_NAMES)] * 3
    assert affinity.max(0).values.min() > 0.99
    torch.testing.assert_close(affinity.sum(0), torch.ones(len(rgb)))


def test_color_centroids_follow_the_labeled_positions():
    videos, labels = render(DEMO, 40, "val")
    centers = color_centroids(palette_affinity(videos)[:, :-1], reach=7.0).numpy()
    errors = []
    for b, lab in enumerate(labels):
        for i, obj in enumerate(lab["objects"]):
            p = np.array(obj["positions"])
            for t in range(len(p)):  # frames where no other object is within 1.5 px of its disc
                if all(
                    np.hypot(*(p[t] - other["positions"][t])) > obj["radius"] + other["radius"] + 1.5
                    for j, other in enumerate(lab["objects"])
                    if j != i
                ):
                    errors.append(np.abs(centers[b, COLOR_NAMES.index(obj["color"]), t] - p[t]).max())
    assert len(errors) > 500 and np.mean(errors) < 0.2 and np.max(errors) < 1.0


def flipped(video: torch.Tensor, mirror: bool, reverse: bool) -> torch.Tensor:
    """(3, T, H, W) mirrored left-right and/or reversed in time."""
    video = video.flip(3) if mirror else video
    return video.flip(1) if reverse else video


def test_flips_remap_directions_like_the_flipped_positions():
    """Mirror and time reversal: targets equal those of labels with transformed positions."""
    clips = [render_shapes(DEMO, clip_seed(0, "train", i)) for i in range(24)]
    videos = torch.stack([to_clip_tensor(c.frames) for c in clips])
    targets = torch.from_numpy(np.stack([_targets(c.labels) for c in clips]))
    out, new = augment_batch(videos, targets, 0.0, torch.Generator().manual_seed(1))
    seen = set()
    for b, clip in enumerate(clips):
        mirror, reverse = next(
            (m, r)
            for m in (False, True)
            for r in (False, True)
            if torch.equal(out[b], flipped(videos[b], m, r))
        )
        objects = []
        for obj in clip.labels["objects"]:
            p = np.array(obj["positions"])
            p[:, 0] = DEMO.resolution - p[:, 0] if mirror else p[:, 0]
            objects.append({**obj, "positions": p[::-1] if reverse else p})
        torch.testing.assert_close(new[b], torch.from_numpy(_targets({"objects": objects})))
        seen.add((mirror, reverse))
    assert len(seen) == 4  # every combination happened


# --- adherence bookkeeping (no model) -----------------------------------------------------------


def perfect(labels: dict) -> dict:
    keys = ("color", "shape", "size")
    return {
        "objects": [
            {**{k: o[k] for k in keys}, "direction": motion_direction(o["positions"])}
            for o in labels["objects"]
        ]
    }


def test_adherence_counts_what_differs():
    labels = [render_shapes(DEMO, seed).labels for seed in range(40)]
    preds = [perfect(lab) for lab in labels]
    report = caption_adherence(preds, labels)
    for name in (
        "colors",
        "colors_shapes",
        "colors_shapes_directions",
        "presence",
        "shape",
        "size",
        "direction",
    ):
        assert report[name] == 1.0, name
    moving = next(
        i for i in range(3, 40) if motion_direction(labels[i]["objects"][0]["positions"]) != "still"
    )
    votes = direction_votes(labels[moving]["objects"][0]["positions"])
    preds[moving]["objects"][0]["direction"] = DIRECTIONS[
        int(np.argmin(votes[1:]))
    ]  # its least travelled way
    preds[1]["objects"][0]["shape"] = next(
        s for s in ("circle", "square") if s != labels[1]["objects"][0]["shape"]
    )
    preds[2]["objects"] = preds[2]["objects"][1:]  # a missed object
    clips = (report := caption_adherence(preds, labels))["per_clip"]
    assert clips["colors_shapes"][moving] and not clips["colors_shapes_directions"][moving]
    assert clips["colors"][1] and not clips["colors_shapes"][1]
    assert not clips["colors"][2] and not clips["colors_shapes_directions"][2]
    assert sum(clips["colors_shapes_directions"]) == len(labels) - 3
    assert report["presence"] == pytest.approx(1 - 1 / (8 * len(labels)))
    assert report["colors"] == pytest.approx(1 - 1 / len(labels))
    # the same object judged over a window where it does not move: its direction no longer counts
    still = {"objects": [dict(labels[moving]["objects"][0], positions=[[5.0, 5.0]] * 17)]}
    pred = {"objects": preds[moving]["objects"][:1]}
    assert caption_adherence([pred], [still])["colors_shapes_directions"] == 1.0
    with pytest.raises(ValueError, match="labels_list"):
        caption_adherence(preds, labels[:3])


# --- configuration, shapes, determinism, caching (tiny models) ----------------------------------


def test_bad_arguments_are_named():
    model = train_classifier(TINY)
    with pytest.raises(ValueError, match=r"videos: expected .*\(B, 3, 17, 32, 32\)"):
        predict(model, torch.zeros(2, 3, 9, 32, 32))
    with pytest.raises(ValueError, match="videos"):
        features(model, torch.zeros(2, 17, 32, 32, 3))
    with pytest.raises(ValueError, match="width"):
        ClassifierConfig(width=10)
    with pytest.raises(ValueError, match="augment"):
        ClassifierConfig(augment=-1.0)
    with pytest.raises(ValueError, match="steps"):
        ClassifierConfig(steps=0)


def test_training_is_deterministic_and_leaves_global_state_alone():
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    a, b = train_classifier(TINY).state_dict(), train_classifier(TINY).state_dict()
    assert torch.equal(rng, torch.get_rng_state()) and torch.get_num_threads() == threads
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = train_classifier(replace(TINY, seed=1)).state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_the_built_in_worlds_classifier_ships_trained_and_holds_its_recorded_accuracy(tmp_path, monkeypatch):
    """The harness's classifier for the world the demo builds (config from the tokenizer's data,
    as FeatureSets makes it) is loaded from the shipped folder, never trained, and measuring it
    again on the same held-out clips gives the accuracies its config.yaml records."""
    import vtlm.eval.adherence.classifier as module
    from vtlm.data.synthetic import SyntheticConfig
    from vtlm.eval.features import FeatureSets

    monkeypatch.setattr(module, "train_classifier", lambda *a: pytest.fail("trained instead of loaded"))
    model = FeatureSets(None, str(tmp_path), SyntheticConfig(shapes=WORLD_SHAPES), "cpu").classifier
    assert list(tmp_path.iterdir()) == [] and cache_path(model.config, SHIPPED_DIR).is_dir()
    assert model.config.steps == ClassifierConfig().steps
    recorded, again = model.heldout, module.evaluate(model, model.config.val_clips, "val")
    for name in ("presence", "colors", "shape", "size", "direction", "colors_shapes"):
        assert again[name] == pytest.approx(recorded[name], abs=0.01), name
    assert recorded["colors"] > 0.97 and recorded["colors_shapes"] > 0.95 and recorded["direction"] > 0.8


def test_cache_loads_instead_of_training_and_keys_follow_the_config(tmp_path, monkeypatch):
    first = load_or_train(TINY, tmp_path)
    folder = cache_path(TINY, tmp_path)
    meta = yaml.safe_load((folder / "config.yaml").read_text())
    assert meta["config"] == TINY.to_dict() and set(meta["heldout"]) >= {"presence", "shape", "colors"}
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folders left

    import vtlm.eval.adherence.classifier as module

    monkeypatch.setattr(module, "train_classifier", lambda *a: pytest.fail("trained again"))
    second = load_or_train(TINY, tmp_path)
    assert second.heldout == meta["heldout"]
    videos, _ = render(TINY.data, 6)
    assert predict(first, videos) == predict(second, videos)
    np.testing.assert_array_equal(features(first, videos), features(second, videos))

    variants = [
        replace(TINY, width=8),
        replace(TINY, augment=0.5),
        replace(TINY, degrade_share=0.3),
        replace(TINY, data=replace(DEMO, camera_pan=False)),
    ]
    assert len({TINY.key()} | {v.key() for v in variants}) == 5
    assert ClassifierConfig(**TINY.to_dict()).key() == TINY.key()  # rebuilt from plain values: same key


# --- the trained classifier on held-out real clips ----------------------------------------------


@pytest.mark.slow
def test_trained_classifier_is_accurate_on_held_out_clips(held_out, predicted):
    _, labels = held_out
    report = caption_adherence(predicted, labels)
    assert report["presence"] > 0.99 and report["colors"] > 0.98
    assert report["shape"] > 0.98 and report["size"] > 0.98
    assert report["direction"] > 0.85
    assert report["colors_shapes"] > 0.98 and report["colors_shapes_directions"] > 0.82
    # the same clips paired with other clips' labels: adherence collapses
    shuffled = caption_adherence(predicted, labels[1:] + labels[:1])
    assert shuffled["colors"] < 0.1 and shuffled["colors_shapes_directions"] < 0.05


@pytest.mark.slow
def test_moderately_degraded_clips_keep_most_of_the_clean_accuracy(trained, held_out, predicted):
    """Tokenizer-like blur, smear and color shift cost little accuracy. The bounds sit between
    what the shipped classifier gives on these degraded clips (presence 0.999, colors 0.995,
    size 0.997, colors + shapes 0.985, + directions 0.865) and what the same recipe gives trained
    without the degradations (0.995, 0.96, 0.865, 0.95, 0.845; clean 0.999, 0.995, 1.0, 0.995,
    0.88): a classifier trained without them fails this test."""
    model, _ = trained
    videos, labels = held_out
    degraded = predict(model, Degradation.fixed(len(videos), **MODERATE).apply(videos))
    clean = caption_adherence(predicted, labels)
    blurred = caption_adherence(degraded, labels)
    assert blurred["presence"] > 0.99 and blurred["colors"] > 0.98 and blurred["size"] > 0.95
    assert blurred["colors_shapes"] > 0.97 and blurred["colors_shapes_directions"] > 0.8
    assert (
        blurred["colors"] >= clean["colors"] - 0.03
        and blurred["colors_shapes"] >= clean["colors_shapes"] - 0.04
    )
    shuffled = caption_adherence(degraded, labels[1:] + labels[:1])
    assert shuffled["colors"] < 0.1 and shuffled["colors_shapes_directions"] < 0.05


@pytest.mark.slow
def test_predictions_survive_an_mp4_round_trip(trained, held_out, predicted, tmp_path):
    model, _ = trained
    videos, labels = held_out[0][:64], held_out[1][:64]
    backend, decoded = get_backend("pyav"), []
    for i, clip in enumerate(videos):
        frames = ((clip.permute(1, 2, 3, 0) + 1) * 127.5).round().byte().numpy()
        path = write_mp4(tmp_path / f"{i}.mp4", frames, crf=0, pix_fmt="yuv444p")
        decoded.append(to_clip_tensor(backend.read(path, range(len(frames)))))
    decoded = torch.stack(decoded)
    assert (decoded - videos).abs().max() > 0  # the round trip did change pixels
    after = predict(model, decoded)
    assert np.mean([a == b for a, b in zip(after, predicted[:64])]) >= 0.95  # few clips judged otherwise
    report = caption_adherence(after, labels)
    assert report["presence"] > 0.99 and report["shape"] > 0.95 and report["direction"] > 0.75
    assert report["colors_shapes"] > 0.9


@pytest.mark.slow
def test_a_second_call_loads_the_trained_classifier(trained, held_out):
    model, cache = trained
    began = time.perf_counter()
    again = load_or_train(SHIPPED, cache)
    assert time.perf_counter() - began < 5.0
    videos = held_out[0][:16]
    assert predict(again, videos) == predict(model, videos)
    meta = yaml.safe_load((cache_path(SHIPPED, SHIPPED_DIR) / "config.yaml").read_text())
    assert meta["heldout"] == model.heldout and meta["train_seconds"] > 0


@pytest.mark.slow
def test_feature_distance_separates_real_from_damaged_clips(trained, held_out):
    """Two disjoint real sets are closer in feature space than real and frame-shuffled clips."""
    from scipy import linalg

    def frechet(a: np.ndarray, b: np.ndarray) -> float:
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        covmean = linalg.sqrtm(ca @ cb).real
        return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * covmean))

    model, _ = trained
    videos = held_out[0]
    other, _ = render(WORLD, NUM_TEST, "val")
    order = torch.randperm(videos.shape[2], generator=torch.Generator().manual_seed(0))
    feats = features(model, videos)
    assert feats.shape == (NUM_TEST, 8 * model.config.width) and np.isfinite(feats).all()
    real = frechet(feats, features(model, other))
    shuffled = frechet(feats, features(model, other[:, :, order]))
    assert shuffled > 2 * real


def test_the_classifier_command_trains_the_config_the_harness_loads(tmp_path, capsys):
    """`vtlm eval classifier` writes the cache folder of the harness's config for the demo's world
    (here at 2 steps: the folder of SHIPPED with steps=2), with its held-out accuracies."""
    from vtlm.cli.main import main

    main(["eval", "classifier", "--out", str(tmp_path), "--steps", "2"])
    folder = cache_path(replace(SHIPPED, steps=2), tmp_path)
    meta = yaml.safe_load((folder / "config.yaml").read_text())
    assert meta["config"] == replace(SHIPPED, steps=2).to_dict() and meta["train_seconds"] > 0
    out = capsys.readouterr().out
    assert f"wrote {folder}" in out and f"presence {meta['heldout']['presence']:.3f}" in out
