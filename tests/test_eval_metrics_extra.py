"""Model-free metrics: Physics-IQ motion masks, flicker, drift summary, bootstrap statistics.

Expected values are derived by hand (in the comments) or come from independent references
(OpenCV for the motion masks, np.polyfit for slopes, the normal-theory interval width).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtlm.eval.metrics.physics_iq import (
    MotionMaskConfig,
    motion_masks,
    physics_iq_per_clip,
    physics_iq_scores,
    physics_iq_scores_batch,
)
from vtlm.eval.metrics.temporal import flicker, flicker_ratio
from vtlm.eval.stats.bootstrap import best_of_n, bootstrap_ci, summarize
from vtlm.eval.stats.drift import drift_summary

T, H, W = 10, 48, 64


def square_video(top: int, side: int = 8, speed: int = 5, left: int = 6, frames: int = T) -> np.ndarray:
    """uint8 (T, H, W, 3): a white square on black, rows [top, top + side), moving right."""
    video = np.zeros((frames, H, W, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, top : top + side, left + speed * t : left + speed * t + side] = 255
    return video


# ---- Physics-IQ ---------------------------------------------------------------------------------


def opencv_masks(video: np.ndarray) -> np.ndarray:
    """The benchmark's mask recipe written with OpenCV calls (binary_mask_generator.py)."""
    cv2 = pytest.importorskip("cv2")
    kernel = np.ones((5, 5), np.uint8)
    grey = [cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (5, 5), 0) for frame in video]
    background = grey[0].astype(np.float64)
    masks = [np.zeros(grey[0].shape, dtype=bool)]
    for frame in grey[1:]:
        cv2.accumulateWeighted(frame, background, 0.3)
        _, binary = cv2.threshold(
            cv2.absdiff(frame, cv2.convertScaleAbs(background)), 10, 255, cv2.THRESH_BINARY
        )
        binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
        masks.append(cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel) > 0)
    return np.stack(masks)


def test_motion_masks_match_the_opencv_recipe():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (T, H // 6, W // 8, 3), dtype=np.uint8)  # blocks that touch the borders
    video = np.repeat(np.repeat(coarse, 6, axis=1), 8, axis=2).astype(np.int64)
    video = np.clip(video + rng.integers(-12, 13, video.shape), 0, 255).astype(np.uint8)
    video = np.maximum(video, square_video(top=20))
    ours, reference = motion_masks(video), opencv_masks(video)
    assert 0.2 < reference[1:].mean() < 0.9  # a mix of moving and still pixels
    if int(cv2.__version__.split(".")[0]) >= 5:
        np.testing.assert_array_equal(ours, reference)
    else:  # OpenCV 4 rounds its grey conversion with 14 instead of 15 bits: rare one-level ties
        assert (ours != reference).mean() < 0.01


def test_identical_videos_score_perfectly():
    video = square_video(top=20)
    assert motion_masks(video)[1:].any(axis=(1, 2)).all()  # the square moves in every frame
    scores = physics_iq_scores(video, video.copy())
    assert scores == {"spatial_iou": 1.0, "spatiotemporal_iou": 1.0, "weighted_spatial_iou": 1.0, "mse": 0.0}


@pytest.mark.parametrize("morph_size", [1, 5])
def test_vertically_shifted_copy_has_the_derived_overlap(morph_size):
    # Without blur, every mask is (rows [top, top + s)) x (some set of columns C_t): the image
    # only changes inside that band, and opening/closing with a square factor into rows and
    # columns (a band of s >= 5 rows survives both). Shifting the video down by d shifts the
    # rows only, so each non-empty frame, the OR over time and the per-pixel weights all have
    # IoU |overlap| / |union| = (s - d) / (s + d). Frame 0 is empty in both: IoU 1.
    # Each frame differs on 2 * s * d pixels by 1 (intensities in [0, 1]) in all channels.
    side, shift = 8, 3
    config = MotionMaskConfig(blur_size=1, morph_size=morph_size)
    true, generated = square_video(top=20, side=side), square_video(top=20 + shift, side=side)
    assert motion_masks(true, config)[1:].any(axis=(1, 2)).all()
    ratio = (side - shift) / (side + shift)
    scores = physics_iq_scores(generated, true, config)
    assert scores["spatial_iou"] == pytest.approx(ratio)
    assert scores["weighted_spatial_iou"] == pytest.approx(ratio)
    assert scores["spatiotemporal_iou"] == pytest.approx((1 + (T - 1) * ratio) / T)
    assert scores["mse"] == pytest.approx(2 * side * shift / (H * W))


def test_static_videos_count_as_agreeing_on_no_motion():
    still = np.full((T, H, W, 3), 90, dtype=np.uint8)
    still[:, 10:30, 10:30] = (200, 30, 30)
    assert not motion_masks(still).any()
    both_still = physics_iq_scores(still, still)
    assert both_still == {
        "spatial_iou": 1.0,
        "spatiotemporal_iou": 1.0,
        "weighted_spatial_iou": 1.0,
        "mse": 0.0,
    }
    strict = physics_iq_scores(still, still, empty_iou=0.0)
    assert strict["spatial_iou"] == strict["spatiotemporal_iou"] == strict["weighted_spatial_iou"] == 0.0
    # a frozen generation of a moving scene: nothing overlaps, only frame 0 (empty in both) agrees
    frozen = physics_iq_scores(np.repeat(square_video(top=20)[:1], T, axis=0), square_video(top=20))
    assert frozen["spatial_iou"] == 0.0 and frozen["weighted_spatial_iou"] == 0.0
    assert frozen["spatiotemporal_iou"] == pytest.approx(1 / T)


def test_motion_in_a_disjoint_region_scores_zero():
    top, bottom = square_video(top=4), square_video(top=34)  # bands 22 rows apart
    scores = physics_iq_scores(top, bottom)
    assert scores["spatial_iou"] == 0.0 and scores["weighted_spatial_iou"] == 0.0
    assert scores["spatiotemporal_iou"] == pytest.approx(1 / T)  # frame 0: both empty
    # the black frame before both clips starts the background, so frame 0 moves too
    black = np.zeros((H, W, 3), dtype=np.uint8)
    assert motion_masks(top, previous=black)[0].any()
    assert physics_iq_scores(top, bottom, previous=black)["spatiotemporal_iou"] == 0.0


def test_batch_scores_average_the_clips():
    generated = np.stack([square_video(top=20), square_video(top=4)])
    true = np.stack([square_video(top=20), square_video(top=34)])
    per_clip = physics_iq_per_clip(generated, true)
    first, second = physics_iq_scores(generated[0], true[0]), physics_iq_scores(generated[1], true[1])
    for key, values in per_clip.items():
        np.testing.assert_allclose(values, [first[key], second[key]])
    assert physics_iq_scores_batch(generated, true) == pytest.approx(
        {key: (first[key] + second[key]) / 2 for key in first}
    )
    assert motion_masks(generated).shape == (2, T, H, W)


def test_physics_iq_rejects_bad_inputs():
    video = square_video(top=20)
    with pytest.raises(ValueError, match="generated"):
        physics_iq_scores(video.astype(np.float32), video)
    with pytest.raises(ValueError, match="one shape"):
        physics_iq_scores(video[:-1], video)
    with pytest.raises(ValueError, match="blur_size"):
        MotionMaskConfig(blur_size=4)


# ---- flicker ------------------------------------------------------------------------------------


def test_flicker_of_static_alternating_and_ramped_videos():
    static = torch.rand(2, 3, 1, 8, 8).mul(2).sub(1).expand(2, 3, 6, 8, 8)
    assert torch.equal(flicker(static), torch.zeros(2, 5))
    alternating = torch.tensor([-1.0, 1.0] * 3).view(1, 1, 6, 1, 1).expand(2, 3, 6, 8, 8)
    assert torch.equal(flicker(alternating), torch.full((2, 5), 255.0))
    # brightness rising by 0.2 per frame in [-1, 1] is 0.2 * 127.5 = 25.5 grey levels per frame
    ramp = torch.linspace(-1.0, 0.0, 6).view(1, 1, 6, 1, 1).expand(1, 3, 6, 4, 4)
    torch.testing.assert_close(flicker(ramp), torch.full((1, 5), 25.5))


def test_flicker_ratio():
    video = torch.rand(3, 3, 5, 8, 8) * 2 - 1
    torch.testing.assert_close(flicker_ratio(video, video), torch.ones(3))
    full = torch.tensor([-1.0, 1.0] * 3).view(1, 1, 6, 1, 1).expand(1, 3, 6, 8, 8)
    half = torch.tensor([-1.0, 0.0] * 3).view(1, 1, 6, 1, 1).expand(1, 3, 6, 8, 8)
    torch.testing.assert_close(flicker_ratio(full, half), torch.tensor([2.0]))
    still = torch.zeros(1, 3, 6, 8, 8)
    assert flicker_ratio(still, still).item() == 1.0
    assert flicker_ratio(full, still).item() == float("inf")
    with pytest.raises(ValueError, match="reference"):
        flicker_ratio(video, video[:, :, :1])


# ---- drift --------------------------------------------------------------------------------------


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_drift_slope_matches_polyfit(higher_is_better):
    frames = np.arange(20)
    clean = 30.0 - 0.5 * frames
    summary = drift_summary(clean, higher_is_better)
    assert summary["degradation_slope"] == pytest.approx(0.5 if higher_is_better else -0.5)
    noisy = clean + np.random.default_rng(1).normal(0.0, 1.0, size=20)
    fitted = np.polyfit(frames[4:], noisy[4:], 1)[0]
    summary = drift_summary(noisy, higher_is_better, start=4)
    assert summary["degradation_slope"] == pytest.approx(-fitted if higher_is_better else fitted)
    assert summary["start_value"] == noisy[4] and summary["end_value"] == noisy[-1]


def test_drift_threshold_crossing_of_a_step():
    psnr = np.array([30.0] * 7 + [20.0] * 5)  # drops below 25 dB at frame 7
    assert drift_summary(psnr, True, threshold=25.0)["frames_to_threshold"] == 7
    assert drift_summary(psnr, True, threshold=25.0, start=2)["frames_to_threshold"] == 5
    assert drift_summary(psnr, True, threshold=15.0)["frames_to_threshold"] is None
    assert drift_summary(psnr, True, threshold=None)["frames_to_threshold"] is None
    assert drift_summary(psnr, True, threshold=35.0)["frames_to_threshold"] == 0
    error = np.array([1.0] * 4 + [5.0] * 6)  # rises above 3 at frame 4
    assert drift_summary(error, False, threshold=3.0, start=1)["frames_to_threshold"] == 3
    with pytest.raises(ValueError, match="start"):
        drift_summary(error, False, start=9)
    with pytest.raises(ValueError, match="finite"):
        drift_summary(np.array([1.0, np.inf, 2.0]), False)


# ---- statistics ---------------------------------------------------------------------------------


def test_bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    trials, covered = 200, 0
    for trial in range(trials):
        sample = rng.normal(1.0, 2.0, size=30)
        low, high = bootstrap_ci(sample, confidence=0.95, num_resamples=1000, seed=trial)
        covered += low <= 1.0 <= high
    # nominal 0.95 (the percentile bootstrap runs a little low at n = 30); binomial sd ~0.015
    assert 0.88 <= covered / trials <= 0.99


def test_bootstrap_interval_width_follows_the_normal_theory():
    rng = np.random.default_rng(1)
    widths = {}
    for n in (25, 400):
        sample = rng.normal(0.0, 1.0, size=n)
        low, high = bootstrap_ci(sample, seed=0)
        widths[n] = high - low
        expected = 2 * 1.96 * sample.std(ddof=1) / np.sqrt(n)
        assert widths[n] == pytest.approx(expected, rel=0.2)
    assert widths[400] < widths[25] / 2  # sixteen times the samples: about a quarter the width


def test_bootstrap_is_deterministic_in_seed_and_handles_edge_cases():
    sample = np.random.default_rng(2).normal(size=50)
    assert bootstrap_ci(sample, seed=3) == bootstrap_ci(sample, seed=3)
    assert bootstrap_ci(sample, seed=3) != bootstrap_ci(sample, seed=4)
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)
    with pytest.warns(RuntimeWarning, match="dropped 2"):
        with_nan = bootstrap_ci(np.concatenate([sample, [np.nan, np.inf]]), seed=3)
    assert with_nan == bootstrap_ci(sample, seed=3)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(sample, confidence=95)


def test_summarize():
    values = np.array([1.0, 2.0, 4.0, np.nan])
    with pytest.warns(RuntimeWarning):
        summary = summarize(values, num_resamples=500)
    assert summary["mean"] == pytest.approx(7 / 3)
    assert summary["std"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    assert 1.0 <= summary["ci_low"] < summary["mean"] < summary["ci_high"] <= 4.0
    assert (summary["n"], summary["n_dropped"]) == (3, 1)
    single = summarize(np.array([5.0]))
    assert (single["mean"], single["std"], single["ci_low"], single["ci_high"]) == (5.0, 0.0, 5.0, 5.0)


def test_best_of_n_direction():
    scores = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, np.nan], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(best_of_n(scores, higher_is_better=True), [3.0, 5.0, np.nan])
    np.testing.assert_array_equal(best_of_n(scores, higher_is_better=False), [1.0, 4.0, np.nan])
    with pytest.raises(ValueError, match="per_sample"):
        best_of_n(np.ones(3), higher_is_better=True)
