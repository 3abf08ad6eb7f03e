"""Built-in procedural datasets: determinism, layout, captions that match the pixels, physics."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from vtlm.data.synthetic.captions import digits_captions, direction_word, shapes_captions
from vtlm.data.synthetic.clip import bounce_in_box
from vtlm.data.synthetic.digits import DigitsConfig, render_digits
from vtlm.data.synthetic.shapes import PALETTE, ShapesConfig, render_shapes

SHAPE_CLAUSE = re.compile(
    r"a (small|medium|large) (\w+) (circle|square|triangle) (?:moves ([a-z-]+)|stays still)"
)
DIGIT_CLAUSE = re.compile(r"digit (\d) moves ([a-z-]+)")


def color_mask(frames: np.ndarray, color: str, tol: int = 40) -> np.ndarray:
    """(T, H, W) bool: pixels within `tol` of a palette color on every channel."""
    return (np.abs(frames.astype(np.int16) - np.array(PALETTE[color])) <= tol).all(axis=-1)


def centroid(weights: np.ndarray) -> np.ndarray:
    """(x, y) weighted centroid of a (H, W) image, in pixel coordinates (centers at +0.5)."""
    ys, xs = np.indices(weights.shape)
    w = weights.astype(np.float64)
    return np.array([(w * xs).sum() / w.sum() + 0.5, (w * ys).sum() / w.sum() + 0.5])


def apart(labels: dict, i: int, t: int, margin: float = 1.5) -> bool:
    """Object i's disc is clear of every other object's disc at frame t (so not occluded)."""
    objs = labels["objects"]
    p, r = np.array(objs[i]["positions"][t]), objs[i]["radius"]
    return all(
        np.hypot(*(p - np.array(o["positions"][t]))) > r + o["radius"] + margin
        for j, o in enumerate(objs)
        if j != i
    )


def first_event(labels: dict, i: int) -> int:
    """Frame of the first event involving object i, or num_frames if none."""
    return next((e["frame"] for e in labels["events"] if i in e["objects"]), labels["num_frames"])


def check_direction(word: str, shift: np.ndarray) -> None:
    """A displacement (dx, dy) goes the way a compass word says (y down); diagonals need both."""
    expected = np.array([("right" in word) - ("left" in word), ("down" in word) - ("up" in word)])
    for axis in (0, 1):
        if expected[axis]:
            assert np.sign(shift[axis]) == expected[axis] and abs(shift[axis]) > 0.5, (word, shift)
        else:  # a pure compass word: the other axis must dominate
            assert abs(shift[axis]) < abs(shift[1 - axis]), (word, shift)


def test_determinism():
    for cfg, render in (
        (ShapesConfig(collisions=True, camera_pan=True), render_shapes),
        (DigitsConfig(resolution=32, num_frames=8), render_digits),
    ):
        a, b, c = render(cfg, 7), render(cfg, 7), render(cfg, 8)
        assert np.array_equal(a.frames, b.frames)
        assert (a.caption_terse, a.caption_descriptive, a.labels) == (
            b.caption_terse,
            b.caption_descriptive,
            b.labels,
        )
        assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("resolution, num_frames", [(16, 1), (32, 17), (48, 5)])
def test_layout(resolution, num_frames):
    for clip in (
        render_shapes(
            ShapesConfig(resolution=resolution, num_frames=num_frames, textured_background=True), 0
        ),
        render_digits(DigitsConfig(resolution=resolution, num_frames=num_frames), 0),
    ):
        assert clip.frames.shape == (num_frames, resolution, resolution, 3)
        assert clip.frames.dtype == np.uint8
        assert clip.frames.max() > 0
        assert all(len(o["positions"]) == num_frames for o in clip.labels["objects"])


def test_labels_are_json():
    for clip in (
        render_shapes(ShapesConfig(collisions=True, camera_pan=True, num_frames=30), 3),
        render_digits(DigitsConfig(), 3),
    ):
        assert json.loads(json.dumps(clip.labels)) == clip.labels  # no tuples, no numpy scalars


@pytest.mark.parametrize(
    "options", [{}, {"textured_background": True, "collisions": True}, {"camera_pan": True}]
)
def test_shape_captions_match_rendered_motion(options):
    cfg = ShapesConfig(resolution=64, num_frames=12, **options)
    moving = still = 0
    for seed in range(30):
        clip = render_shapes(cfg, seed)
        labels, frames = clip.labels, clip.frames
        index = {o["color"]: i for i, o in enumerate(labels["objects"])}
        clauses = SHAPE_CLAUSE.findall(clip.caption_descriptive)
        assert len(clauses) == len(labels["objects"])
        for _size, color, _shape, word in clauses:
            i = index[color]
            masks = color_mask(frames, color)
            if not word:  # "stays still": the same pixels in every unoccluded frame
                seen = np.array([centroid(masks[t]) for t in range(cfg.num_frames) if apart(labels, i, t)])
                if len(seen) > 1:  # edge pixels blend with a panning background: allow a little jitter
                    assert np.abs(seen - seen[0]).max() < 0.25
                    still += 1
                continue
            last = first_event(labels, i) - 1  # last frame reached without any bounce or collision
            if last < 3 or not (apart(labels, i, 0) and apart(labels, i, last)):
                continue
            check_direction(word, centroid(masks[last]) - centroid(masks[0]))
            moving += 1
    assert moving >= 15 and (still >= 3 or cfg.collisions)


def test_shape_positions_match_color_centroid():
    cfg = ShapesConfig(resolution=64, num_frames=9, textured_background=True)
    checked = 0
    for seed in range(20):
        clip = render_shapes(cfg, seed)
        for i, obj in enumerate(clip.labels["objects"]):
            masks = color_mask(clip.frames, obj["color"])
            for t in range(cfg.num_frames):
                if apart(clip.labels, i, t):
                    assert np.abs(centroid(masks[t]) - obj["positions"][t]).max() < 1.0
                    checked += 1
    assert checked > 200


@pytest.mark.parametrize("collisions", [False, True])
def test_objects_stay_inside(collisions):
    cfg = ShapesConfig(resolution=32, num_frames=60, collisions=collisions, max_speed=0.15)
    walls = set()
    for seed in range(30):
        labels = render_shapes(cfg, seed).labels
        for obj in labels["objects"]:
            pos, r = np.array(obj["positions"]), obj["radius"]
            assert pos.min() >= r - 1e-3 and pos.max() <= cfg.resolution - r + 1e-3
        walls |= {e["wall"] for e in labels["events"] if e["type"] == "wall"}
    assert walls == {"left", "right", "top", "bottom"}


def test_collisions_are_elastic_and_resolved():
    cfg = ShapesConfig(num_frames=40, min_objects=2, static_prob=0.0, collisions=True)
    collisions = 0
    for seed in range(40):
        labels = render_shapes(cfg, seed).labels
        objs = labels["objects"]
        pos = np.array([o["positions"] for o in objs])  # (N, T, 2)
        radius = np.array([o["radius"] for o in objs])
        for i in range(len(objs)):
            for j in range(i + 1, len(objs)):
                gap = np.hypot(*(pos[i] - pos[j]).T) - radius[i] - radius[j]
                assert gap.min() > -0.01
        mass = radius**2
        energy0 = (mass * (np.array([o["velocity0"] for o in objs]) ** 2).sum(1)).sum()
        busy = {e["frame"] for e in labels["events"]}
        for t in set(range(1, cfg.num_frames)) - busy:  # between event-free frames, velocity = step
            energy = (mass * ((pos[:, t] - pos[:, t - 1]) ** 2).sum(1)).sum()
            assert abs(energy / energy0 - 1.0) < 2e-3
        collisions += sum(e["type"] == "collision" for e in labels["events"])
    assert collisions >= 10


def test_static_objects_are_fixed_obstacles():
    cfg = ShapesConfig(num_frames=40, min_objects=3, static_prob=0.5, collisions=True)
    hits = 0
    for seed in range(40):
        labels = render_shapes(cfg, seed).labels
        for e in labels["events"]:
            if e["type"] == "collision":
                hits += any(labels["objects"][k]["static"] for k in e["objects"])
        for obj in labels["objects"]:
            if obj["static"]:
                assert np.ptp(np.array(obj["positions"]), axis=0).max() == 0.0
    assert hits >= 3


def test_collision_stepper_matches_closed_form_walls():
    for seed in range(20):
        cfg = ShapesConfig(min_objects=1, max_objects=1, num_frames=50, max_speed=0.15)
        free = render_shapes(cfg, seed).labels
        stepped = render_shapes(replace(cfg, collisions=True), seed).labels
        np.testing.assert_allclose(
            stepped["objects"][0]["positions"], free["objects"][0]["positions"], atol=1e-3
        )
        assert stepped["events"] == free["events"]


def test_bounce_in_box_reflects_at_walls():
    positions, events = bounce_in_box(np.array([[2.0, 5.0]]), np.array([[3.0, 0.0]]), 1.0, 9.0, 5)
    np.testing.assert_allclose(positions[:, 0, 0], [2.0, 5.0, 8.0, 7.0, 4.0])  # 11 folds back to 7
    assert events == [{"frame": 3, "type": "wall", "objects": [0], "wall": "right"}]


def test_camera_pan_moves_background():
    cfg = ShapesConfig(resolution=64, num_frames=17, camera_pan=True)
    for seed in range(5):
        clip = render_shapes(cfg, seed)
        camera = np.array(clip.labels["camera"])
        steps = np.diff(camera, axis=0)
        assert np.array_equal(camera[0], [0.0, 0.0])
        np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=1e-3)
        assert 0.005 * 64 - 1e-3 <= np.hypot(*steps[0]) <= 0.015 * 64 + 1e-3
        free = np.ones(clip.frames.shape[:3], dtype=bool)  # pixels no object's disc comes near
        ys, xs = np.indices(free.shape[1:]) + 0.5
        for obj in clip.labels["objects"]:
            for t, (x, y) in enumerate(obj["positions"]):
                free[t] &= np.hypot(xs - x, ys - y) > obj["radius"] + 2
        gray = clip.frames[..., 0].astype(np.float64)
        for t in range(cfg.num_frames - 1):
            both = free[t] & free[t + 1]
            assert np.abs(gray[t + 1] - gray[t])[both].mean() > 0.05
        # the background content moves by -camera: frame T-1 at p shows frame 0 at p + camera
        shift = np.round(camera[-1]).astype(int)
        err = {}
        for name, (dx, dy) in {"labelled": shift, "none": (0, 0), "opposite": -shift}.items():
            a = gray[-1][16:48, 16:48]
            b = gray[0][16 + dy : 48 + dy, 16 + dx : 48 + dx]
            ok = free[-1][16:48, 16:48] & free[0][16 + dy : 48 + dy, 16 + dx : 48 + dx]
            err[name] = np.abs(a - b)[ok].mean()
        assert err["labelled"] < 0.5 * min(err["none"], err["opposite"]), err


def test_static_texture_without_pan():
    clip = render_shapes(ShapesConfig(textured_background=True), 1)
    assert clip.labels["camera"] == [[0.0, 0.0]] * 17
    far = np.ones(clip.frames.shape[1:3], dtype=bool)
    ys, xs = np.indices(far.shape) + 0.5
    for obj in clip.labels["objects"]:
        for x, y in obj["positions"]:
            far &= np.hypot(xs - x, ys - y) > obj["radius"] + 2
    assert far.any() and (clip.frames[:, far] == clip.frames[0, far]).all()
    assert 0.08 * 255 - 1 <= clip.frames[0, far].min() and clip.frames[0, far].max() <= 0.35 * 255 + 1


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: ShapesConfig(resolution=8), "resolution"),
        (lambda: ShapesConfig(num_frames=0), "num_frames"),
        (lambda: ShapesConfig(min_objects=0), "min_objects"),
        (lambda: ShapesConfig(max_objects=4), "max_objects"),
        (lambda: ShapesConfig(static_prob=1.5), "static_prob"),
        (lambda: ShapesConfig(min_speed=0.1, max_speed=0.05), "max_speed"),
        (lambda: ShapesConfig(size_fractions=(0.2, 0.1, 0.3)), "size_fractions"),
        (lambda: ShapesConfig(max_pan_speed=0.5), "max_pan_speed"),
        (lambda: DigitsConfig(resolution=8), "resolution"),
        (lambda: DigitsConfig(max_digits=3), "max_digits"),
        (lambda: DigitsConfig(digit_size=0.9), "digit_size"),
        (lambda: DigitsConfig(min_speed=0.0), "min_speed"),
    ],
)
def test_config_validation(make, field):
    with pytest.raises(ValueError, match=rf"\.{field} must be"):
        make()


def test_digit_captions_name_the_digits():
    counts = set()
    for seed in range(20):
        clip = render_digits(DigitsConfig(resolution=32, num_frames=6), seed)
        digits = [o["digit"] for o in clip.labels["objects"]]
        counts.add(len(digits))
        named = [int(d) for d in re.findall(r"\d", clip.caption_terse)]
        assert named == digits
        assert [int(d) for d, _ in DIGIT_CLAUSE.findall(clip.caption_descriptive)] == digits
        assert clip.caption_terse.startswith("digit " if len(digits) == 1 else "digits ")
    assert counts == {1, 2}


def test_single_digit_moves_as_captioned():
    cfg = DigitsConfig(resolution=64, num_frames=10, min_digits=1, max_digits=1)
    checked = 0
    for seed in range(20):
        clip = render_digits(cfg, seed)
        gray = clip.frames[..., 0]
        obj = clip.labels["objects"][0]
        for t in range(cfg.num_frames):  # the labeled center is the center of the ink's bounding box
            rows, cols = np.nonzero(gray[t] > 0)
            box_center = [(cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2]
            assert np.abs(np.array(box_center) - obj["positions"][t]).max() <= 1.0
        ((digit, word),) = DIGIT_CLAUSE.findall(clip.caption_descriptive)
        last = first_event(clip.labels, 0) - 1
        if last >= 3:
            check_direction(word, centroid(gray[last]) - centroid(gray[0]))
            checked += 1
    assert checked >= 8


def test_caption_wording():
    objects = [
        {"shape": "circle", "color": "red", "size": "small", "static": False, "direction": "left"},
        {"shape": "square", "color": "blue", "size": "large", "static": True, "direction": "still"},
    ]
    events = [{"frame": 4, "type": "wall", "objects": [0], "wall": "left"}]
    assert shapes_captions(objects, events) == (
        "red circle, blue square",
        "a small red circle moves left and bounces off the left wall while a large blue square stays still",
    )
    events = [{"frame": 2, "type": "collision", "objects": [0, 1]}] + events
    assert shapes_captions(objects, events)[1] == (
        "a small red circle moves left, collides with the blue square and bounces off the left wall"
        " while a large blue square stays still"
    )
    digits = [{"digit": 3, "direction": "up-left"}, {"digit": 7, "direction": "right"}]
    walls = [{"frame": 1, "type": "wall", "objects": [k], "wall": "top"} for k in (0, 1)]
    assert digits_captions(digits, walls) == (
        "digits 3 and 7",
        "digit 3 moves up-left and digit 7 moves right, both bouncing off the walls",
    )
    assert digits_captions(digits, [])[1] == "digit 3 moves up-left and digit 7 moves right"
    assert digits_captions(digits[:1], walls[:1]) == (
        "digit 3",
        "digit 3 moves up-left and bounces off the top wall",
    )


@pytest.mark.parametrize(
    "velocity, word",
    [((1, 0), "right"), ((1, -1), "up-right"), ((0, -2), "up"), ((-1, -1), "up-left"), ((-3, 0.5), "left")]
    + [((-1, 1), "down-left"), ((0, 1), "down"), ((2, 1.5), "down-right"), ((0, 0), "still")],
)
def test_direction_word(velocity, word):
    assert direction_word(*velocity) == word
