"""An offline attribute classifier for the built-in ``shapes`` data: feature distance and adherence.

A small 3-D conv net is trained once, deterministically, on clips rendered on the fly from the
*train* split of the shapes generator (never val or test), and cached as a model directory named
by a hash of its config. For every palette color it predicts whether an object of that color is
in the clip and, if so, its shape, size and direction of motion. Two uses:

* ``features``: a pooled embedding per clip, for a Frechet distance that is reported under its
  own name (it is not FVD: the network has only seen this synthetic world).
* ``caption_adherence``: the share of clips whose predicted objects match the structured labels
  behind their caption, on colors, then colors + shapes, then colors + shapes + directions.

Judged videos are often a video tokenizer's reconstructions or a generator's decoded samples:
soft edges, moving objects smeared over a latent step, shifted colors. So that adherence measures
the generator and not the tokenizer's blur, a share of the training clips (``degrade_share``) get
such a degradation, drawn per clip (``augment.Degradation.draw``, strength ``degrade``), and each
color's presence is judged with the *purity* of its pixels (below), which tells an object of that
color from the pale spill that blurred edges of other colors leave in its palette channel.

Direction over a window. The labels' ``direction`` word is that of the initial velocity, but at
32 px objects bounce every few frames (a sixth of them before frame 1), so for only about a third
of moving objects is it the direction they travel most. Here every frame-to-frame step of an
object's labeled ``positions`` in the window votes, with its length, for the two compass words
(the captions' 8 sectors) whose centers flank its angle, split linearly by angle: the *votes* are
the share of travel per word. The *dominant direction* is the word with the most votes ("still"
if the mean step is under MIN_STEP px). A predicted direction counts as right when its votes are
within DIRECTION_TOLERANCE of the dominant word's, so motion close to a sector boundary or split
evenly between two directions accepts either word. The classifier learns the votes over whole
clips; adherence judges them over the window the judged videos show.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vtlm.data.clips import to_clip_tensor
from vtlm.data.splits import clip_seed
from vtlm.data.synthetic import ShapesConfig, render_shapes
from vtlm.data.synthetic.shapes import COLOR_NAMES, SHAPES, SIZES
from vtlm.train.checkpoint import config_from_dict, load_model_dir, save_model_dir

from .augment import augment_batch
from .captions import MOTIONS, caption_adherence, direction_votes
from .color_regions import color_centroids, color_crops, palette_affinity

VERSION = 2  # bump when training, targets or inputs change, so old caches are not reused
KIND = "shapes_classifier"
# Direction classes: "still", then DIRECTIONS (class k >= 1 is the word centered at 45 (k - 1) degrees).
HEADS = {"present": 1, "direction": len(MOTIONS), "shape": len(SHAPES), "size": len(SIZES)}  # logits each


def _demo_shapes() -> ShapesConfig:
    return ShapesConfig(resolution=32, num_frames=17, collisions=True, camera_pan=True)


@dataclass
class ClassifierConfig:
    """What the classifier is trained on and how; every field is part of the cache key."""

    data: ShapesConfig = field(default_factory=_demo_shapes)  # the shapes world it judges
    data_seed: int = 0  # dataset seed of the train split it renders (see vtlm.data.splits)
    width: int = 16  # channels of the first conv (4x in the last stage); features are 8 * width
    crop_width: int = 8  # channels of the first conv of the shape branch (2x after)
    code_dim: int = 64  # per-color code between a color's pooled vector and its logits
    train_clips: int = 1_000_000  # distinct train-split clips drawn from (indices 0..n-1)
    steps: int = 300  # optimizer steps (~5 minutes on one core of a 2-core machine, ~3 on both)
    batch_size: int = 32  # clips per step, rendered fresh
    lr: float = 3e-3  # AdamW peak learning rate (cosine decay after a short warmup)
    seed: int = 0  # weights, clip order and augmentation
    augment: float = 1.0  # strength of the decoded-video augmentation; 0 keeps only the flips
    degrade: float = 1.0  # strength of the tokenizer-like degradations (augment.Degradation.draw)
    degrade_share: float = 0.6  # share of training clips degraded (each with this chance); 0: none
    val_clips: int = 400  # held-out val-split clips whose accuracy is recorded in the cache

    def __post_init__(self):
        if isinstance(self.data, dict):
            self.data = ShapesConfig(**self.data)
        for name in ("width", "crop_width", "code_dim", "train_clips", "steps", "batch_size", "val_clips"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)!r}")
        for name in ("width", "crop_width"):
            if getattr(self, name) % 4:
                raise ValueError(f"{name}: expected a multiple of 4 (group norm), got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if not 0 <= self.augment <= 2:
            raise ValueError(f"augment: expected a strength in [0, 2], got {self.augment}")
        if not 0 <= self.degrade <= 2:
            raise ValueError(f"degrade: expected a strength in [0, 2], got {self.degrade}")
        if not 0 <= self.degrade_share <= 1:
            raise ValueError(f"degrade_share: expected a share in [0, 1], got {self.degrade_share}")

    def to_dict(self) -> dict:
        """Plain values (tuples as lists), as stored in config.yaml."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def key(self) -> str:
        """Hash of the config and VERSION: the name of its cache folder."""
        text = json.dumps({"version": VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _targets(labels: dict) -> np.ndarray:
    """float32 (NUM_COLORS, 3 + 9) per palette color: present, shape, size, direction votes."""
    out = np.zeros((len(COLOR_NAMES), 3 + len(MOTIONS)), dtype=np.float32)
    for obj in labels["objects"]:
        row = out[COLOR_NAMES.index(obj["color"])]
        row[:3] = (1, SHAPES.index(obj["shape"]), SIZES.index(obj["size"]))
        row[3:] = direction_votes(obj["positions"])
    return out


def _block(cin: int, cout: int, kernel: tuple, stride) -> list[nn.Module]:
    """Conv3d (padding 1 where the kernel is wider than 1), GroupNorm (4 groups), GELU."""
    pad = tuple(min(1, k // 2) for k in kernel)
    return [nn.Conv3d(cin, cout, kernel, stride=stride, padding=pad), nn.GroupNorm(4, cout), nn.GELU()]


class AttributeClassifier(nn.Module):
    """Videos (B, 3, T, R, R) float in [-1, 1] at the configured T and R -> attribute logits.

    Presence and direction: a 3-D conv trunk (group norm, GELU) in three stages, (B, w, T/2, R/2,
    R/2), (B, 2w, T/2, R/4, R/4) and (B, 4w, T/4, R/8, R/8), on RGB plus an objectness channel
    (1 - the background affinity). Each palette color pools every stage with weights equal to
    how much of that color each cell holds (:func:`palette_affinity`, pooled to the stage's
    grid), so its vector describes the object of that color, if any. Shape and size: a second
    small 3-D conv net reads each color's full-resolution window around its centroid
    (:func:`color_crops`), where the object stands still and its edges are sharp. Each branch
    maps a color's pooled vector, log color mass and purity (the affinity-weighted mean affinity
    of its pixels: near 1 for an object of that color, low for the spill of another color's
    blurred edges) to a code through one shared layer, then shared heads give the logits: the
    same weights judge every color, so each object in a batch is a training example for all of
    them. The clip's embedding (the Frechet features) is the mean and max of the trunk's last
    stage: (B, 8w).
    """

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.config = cfg
        self.heldout: dict | None = None  # val-split accuracies, once trained by load_or_train
        w, s = cfg.width, cfg.crop_width
        self.stages = nn.ModuleList(
            [
                nn.Sequential(*_block(4, w, (3, 4, 4), 2)),  # (B, w, T/2, R/2, R/2)
                nn.Sequential(*_block(w, 2 * w, (3, 3, 3), (1, 2, 2))),  # (B, 2w, T/2, R/4, R/4)
                nn.Sequential(*_block(2 * w, 4 * w, (3, 3, 3), 2), *_block(4 * w, 4 * w, (3, 3, 3), 1)),
            ]
        )
        self.crop_side = 2 * math.ceil(max(cfg.data.size_fractions) * cfg.data.resolution) + 2
        self.crop_net = nn.Sequential(
            *_block(4, s, (1, 3, 3), 1),  # (N, s, T, S, S)
            *_block(s, 2 * s, (1, 3, 3), (1, 2, 2)),  # (N, 2s, T, S/2, S/2)
            *_block(2 * s, 2 * s, (3, 3, 3), 2),  # (N, 2s, T/2, S/4, S/4)
        )
        self.motion_code = nn.Linear(7 * w + 2, cfg.code_dim)
        self.motion_head = nn.Linear(cfg.code_dim, HEADS["present"] + HEADS["direction"])
        self.shape_code = nn.Linear(4 * s + 2, cfg.code_dim)
        self.shape_head = nn.Linear(cfg.code_dim, HEADS["shape"] + HEADS["size"])

    def check(self, videos: torch.Tensor) -> None:
        """Raise a ValueError unless ``videos`` is a (B, 3, T, R, R) tensor of the configured size."""
        t, r = self.config.data.num_frames, self.config.data.resolution
        if not isinstance(videos, torch.Tensor) or tuple(videos.shape[1:]) != (3, t, r, r):
            shape = tuple(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
            raise ValueError(f"videos: expected a float tensor (B, 3, {t}, {r}, {r}) in [-1, 1], got {shape}")

    def _trunk(self, videos: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Input (B, 4, T, R, R) in [0, 1], stage outputs, palette affinity without background."""
        self.check(videos)
        affinity = palette_affinity(videos)
        h = x = torch.cat([(videos.float() + 1) / 2, 1 - affinity[:, -1:]], dim=1)  # RGB and objectness
        outputs = []
        for stage in self.stages:
            h = stage(h)
            outputs.append(h)
        return x, outputs, affinity[:, :-1]

    def embedding(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, 8 * width) float: mean and max of the last stage, the Frechet features."""
        last = self._trunk(videos)[1][-1]  # (B, 4w, T', R', R')
        return torch.cat([last.mean(dim=(2, 3, 4)), last.amax(dim=(2, 3, 4))], dim=1)

    def forward(self, videos: torch.Tensor, colors: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits per head, each (B, NUM_COLORS, k); "present" is (B, NUM_COLORS).

        colors: optional bool (B, NUM_COLORS); shape and size are computed for those only
        (zeros elsewhere), which training uses to skip the absent colors.
        """
        x, outputs, affinity = self._trunk(videos)
        b, k = affinity.shape[:2]
        total = affinity.sum(dim=(2, 3, 4))  # (B, colors): pixels' worth of each color
        purity = (affinity * affinity).sum(dim=(2, 3, 4)) / (total + 1e-4)  # in [0, 1]
        stats = torch.stack(
            [torch.log(total / affinity[0, 0].numel() + 1e-4), purity], dim=2
        )  # (B, colors, 2)
        pooled, mass = [], affinity
        for h in outputs:
            mass = F.adaptive_avg_pool3d(mass, h.shape[2:])  # (B, colors, T', R', R'), coarser each stage
            weights = mass.flatten(2) / (mass.flatten(2).sum(dim=2, keepdim=True) + 1e-6)  # (B, colors, N)
            pooled.append(weights @ h.flatten(2).transpose(1, 2))  # (B, colors, C)
        motion = self.motion_head(F.gelu(self.motion_code(torch.cat(pooled + [stats], dim=2))))
        colors = torch.ones(b, k, dtype=torch.bool) if colors is None else colors.bool()
        crops = color_crops(x, color_centroids(affinity, self.crop_side / 2), self.crop_side)[
            colors
        ]  # (N, 4, T, S, S)
        g = self.crop_net(crops)
        g = torch.cat([g.mean(dim=(2, 3, 4)), g.amax(dim=(2, 3, 4)), stats[colors]], dim=1)
        shape = motion.new_zeros(b, k, HEADS["shape"] + HEADS["size"])
        shape[colors] = self.shape_head(F.gelu(self.shape_code(g)))
        logits = torch.cat([motion, shape], dim=2)  # (B, colors, 16)
        out = dict(zip(HEADS, logits.split(list(HEADS.values()), dim=2)))
        out["present"] = out["present"].squeeze(2)
        return out


def _loss(logits: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Presence BCE over all colors; shape, size and (soft) direction cross-entropy where present."""
    present = targets[..., 0] == 1  # (B, NUM_COLORS)
    loss = F.binary_cross_entropy_with_logits(logits["present"], present.float())
    if present.any():
        loss = loss + F.cross_entropy(logits["shape"][present], targets[..., 1][present].long())
        loss = loss + F.cross_entropy(logits["size"][present], targets[..., 2][present].long())
        loss = loss + F.cross_entropy(logits["direction"][present], targets[..., 3:][present])
    return loss


@contextmanager
def one_thread():
    """Run torch on one intra-op thread, restoring the count after.

    Results then do not depend on the machine's thread count, and the many small ops of
    rendering and of inference on small batches run faster than on threads contended by other
    work.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _render_batch(cfg: ClassifierConfig, split: str, indices) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Clips of a split: videos (N, 3, T, R, R) in [-1, 1], targets (N, NUM_COLORS, 12), labels."""
    clips = [render_shapes(cfg.data, clip_seed(cfg.data_seed, split, int(i))) for i in indices]
    with one_thread():
        videos = torch.stack([to_clip_tensor(c.frames) for c in clips])
    targets = torch.from_numpy(np.stack([_targets(c.labels) for c in clips]))
    return videos, targets, [c.labels for c in clips]


def train_classifier(cfg: ClassifierConfig, progress: bool = False) -> AttributeClassifier:
    """Train a classifier from scratch on train-split clips; deterministic in ``cfg`` (up to
    floating-point noise across thread counts).

    Runs on the process's torch threads (0.99 s a step on one core of the 2-core development
    machine, 0.59 on both; clips are still rendered on one); the global torch RNG is left as it
    was. Returns the model in eval mode.
    """
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = AttributeClassifier(cfg).train()
        gen = torch.Generator().manual_seed(cfg.seed)
        order = np.random.default_rng([cfg.seed, cfg.data_seed])
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
        warmup = max(1, cfg.steps // 20)
        scale = lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * s / cfg.steps))  # noqa: E731
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, scale)
        for _ in tqdm(range(cfg.steps), disable=not progress, desc="shapes classifier"):
            indices = order.integers(0, cfg.train_clips, cfg.batch_size)
            videos, targets, _ = _render_batch(cfg, "train", indices)
            videos, targets = augment_batch(videos, targets, cfg.augment, gen, cfg.degrade, cfg.degrade_share)
            loss = _loss(model(videos, colors=targets[..., 0] == 1), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def _batched(fn, model: AttributeClassifier, videos: torch.Tensor, chunk: int = 64):
    """``fn`` over chunks of ``videos`` without gradients on one thread, concatenated on the CPU."""
    model.check(videos)
    device = next(model.parameters()).device
    with one_thread():
        parts = [fn(videos[i : i + chunk].to(device)) for i in range(0, len(videos), chunk)]
    if isinstance(parts[0], dict):
        return {name: torch.cat([p[name] for p in parts]).cpu() for name in parts[0]}
    return torch.cat(parts).cpu()


def predict(model: AttributeClassifier, videos: torch.Tensor) -> list[dict]:
    """Predicted objects of each clip of ``videos`` (B, 3, T, R, R) float in [-1, 1].

    Returns one dict per clip, {"objects": [{"color", "shape", "size", "direction"}]}, with an
    object for every palette color whose presence probability exceeds 0.5, in palette order.
    """
    logits = _batched(model, model, videos)
    best = {name: logits[name].argmax(-1) for name in ("shape", "size", "direction")}
    names = {"shape": SHAPES, "size": SIZES, "direction": MOTIONS}
    return [
        {
            "objects": [
                {"color": color, **{k: names[k][int(best[k][b, c])] for k in names}}
                for c, color in enumerate(COLOR_NAMES)
                if logits["present"][b, c] > 0
            ]
        }
        for b in range(len(videos))
    ]


def features(model: AttributeClassifier, videos: torch.Tensor) -> np.ndarray:
    """Embeddings, float64 (B, 8 * width), of ``videos`` (B, 3, T, R, R) float in [-1, 1]."""
    return _batched(model.embedding, model, videos).double().numpy()


def evaluate(model: AttributeClassifier, num_clips: int = 400, split: str = "val") -> dict:
    """Adherence rates of ``model`` on clips 0..num_clips-1 of ``split`` of its world (no per-clip lists)."""
    videos, _, labels = _render_batch(model.config, split, range(num_clips))
    report = caption_adherence(predict(model, videos), labels)
    report.pop("per_clip")
    return report


# Classifiers trained once and shipped with vtlm, as cache folders: the built-in world's (the
# demo's), so every run on that world judges with the same weights on every machine, and none
# spends minutes training it. `vtlm eval classifier --out <this folder>` rebuilds them.
SHIPPED_DIR = Path(__file__).parent / "weights"


def cache_path(cfg: ClassifierConfig, cache_dir: str | os.PathLike) -> Path:
    """The model directory of ``cfg`` inside ``cache_dir``."""
    return Path(cache_dir) / f"shapes-classifier-v{VERSION}-{cfg.key()}"


def load_classifier(path: str | os.PathLike) -> AttributeClassifier:
    """A cached classifier (config.yaml + weights.safetensors) in eval mode; ``.heldout`` holds
    the accuracies recorded when it was trained."""
    meta, state = load_model_dir(path, KIND)
    model = AttributeClassifier(config_from_dict(ClassifierConfig, meta["config"]))
    model.load_state_dict(state)
    model.heldout = meta.get("heldout")
    return model.eval()


def load_or_train(
    cfg: ClassifierConfig, cache_dir: str | os.PathLike, progress: bool = False
) -> AttributeClassifier:
    """The classifier of ``cfg`` from ``cache_dir`` or from the ones shipped with vtlm
    (SHIPPED_DIR), else trained and cached in ``cache_dir`` first.

    The cache folder (named by :meth:`ClassifierConfig.key`) is written atomically (a temporary
    folder renamed into place); its config.yaml records the held-out (val split) accuracies of
    :func:`evaluate` and the training time.
    """
    for folder in (Path(cache_dir), SHIPPED_DIR):
        if cache_path(cfg, folder).is_dir():
            return load_classifier(cache_path(cfg, folder))
    return train_and_cache(cfg, cache_dir, progress)


def train_and_cache(
    cfg: ClassifierConfig, cache_dir: str | os.PathLike, progress: bool = False
) -> AttributeClassifier:
    """Train the classifier of ``cfg`` and write it to its cache folder in ``cache_dir`` (an
    existing one is replaced atomically), with its held-out accuracies and training time."""
    began = time.perf_counter()
    model = train_classifier(cfg, progress)
    seconds = round(time.perf_counter() - began, 1)
    model.heldout = evaluate(model, cfg.val_clips, "val")
    extra = {"version": VERSION, "heldout": model.heldout, "train_seconds": seconds}
    save_model_dir(cache_path(cfg, cache_dir), KIND, cfg.to_dict(), model.state_dict(), extra)
    return model
