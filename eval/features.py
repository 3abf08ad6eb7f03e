"""Feature-based metrics: caption adherence and a Frechet distance in the features of the
built-in data's attribute classifier (vtlm's own metric, named as such), and FVD / KVD in
I3D features when the user supplies the I3D file.

Per-clip adherence is scored batch by batch; set-level distances collect the generated
clips' features per seed and compare them with the held-out clips' features.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from vtlm.data.synthetic import SyntheticConfig
from vtlm.data.writers import to_uint8

from .adherence.captions import caption_adherence
from .adherence.classifier import ClassifierConfig, features, load_or_train, predict
from .metrics.frechet import frechet_from_features
from .metrics.fvd import FVD_MISSING, MIN_FRAMES, FVDConfig, fvd_from_features, i3d_features, load_i3d
from .protocols.clips import HeldOut
from .protocols.registry import Protocol
from .stats.aggregate import Aggregator

CLASSIFIER_FD = "classifier_fd"  # not FVD: a Frechet distance in vtlm's own classifier's features


class FeatureSets:
    """Classifier and I3D features for one harness run (each model loaded once)."""

    def __init__(
        self,
        i3d: str | None,
        cache: str,
        synthetic: SyntheticConfig | None,
        device: str,
        classifier_steps: int | None = None,
        classifier_frames: int = 17,
    ):
        self.fvd_cfg = FVDConfig(i3d=i3d, device=device) if i3d else None
        self.i3d = load_i3d(i3d, device) if i3d else None
        self.classifier, self.classifier_cfg = None, None
        if synthetic is not None and synthetic.kind == "shapes":
            steps = {"steps": classifier_steps} if classifier_steps else {}
            world = dataclasses.replace(synthetic.shapes, num_frames=classifier_frames)
            self.classifier_cfg = ClassifierConfig(data=world, **steps)
            print(f"[eval] attribute classifier for the built-in data (cached under {cache})", flush=True)
            self.classifier = load_or_train(self.classifier_cfg, Path(cache))
        self._real: dict[tuple, dict] = {}
        self.fake: list[tuple[int, dict]] = []

    # -- settings and notes -------------------------------------------------------------
    def fvd_settings(self) -> dict | None:
        return dataclasses.asdict(self.fvd_cfg) if self.fvd_cfg else None

    def classifier_settings(self) -> dict | None:
        if self.classifier is None:
            return None
        return {"config": self.classifier_cfg.to_dict(), "heldout": self.classifier.heldout}

    def not_computed(self) -> list[str]:
        notes = [] if self.i3d is not None else [FVD_MISSING]
        if self.classifier is None:
            notes.append(
                "caption adherence and classifier FD: not computed (they need the built-in shapes data's labels)"
            )
        return notes

    # -- per clip -----------------------------------------------------------------------
    def _judged(self, protocol: Protocol) -> bool:
        return self.classifier is not None and protocol.dataset == "shapes"

    def _windows(self, video: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """(start, clip) windows of the classifier's length cut from a longer video, sharing
        one frame (where a chained clip restarts)."""
        length = self.classifier_cfg.data.num_frames
        return [(s, video[:, :, s : s + length]) for s in range(0, video.shape[2] - length + 1, length - 1)]

    def window_starts(self, count: int) -> list[int]:
        return [k * (self.classifier_cfg.data.num_frames - 1) for k in range(count)]

    def per_clip(self, video: torch.Tensor, data: HeldOut, protocol: Protocol) -> dict[str, np.ndarray]:
        """Caption adherence of each generated clip: (N,) 0/1 (every true object found with its
        color, shape and, when it moves, its dominant direction), or (N, W) per window of the
        classifier's length along a rollout; also colors-only and colors+shapes rates."""
        if not self._judged(protocol) or data.labels is None:
            return {}
        windows = self._windows(video)
        if not windows:
            return {}
        length, judged = self.classifier_cfg.data.num_frames, []
        for start, clips in windows:
            judged.append(
                caption_adherence(predict(self.classifier, clips), data.labels, (start, start + length))
            )
        per_window = np.stack(
            [np.asarray(j["per_clip"]["colors_shapes_directions"], dtype=np.float64) for j in judged], axis=1
        )  # (N, W)
        if protocol.kind == "rollout":
            return {"caption_adherence": per_window}
        out = {"caption_adherence": per_window[:, 0]}
        for key in ("colors", "colors_shapes"):
            out[f"adherence_{key}"] = np.asarray(judged[0]["per_clip"][key], dtype=np.float64)
        return out

    # -- set level ----------------------------------------------------------------------
    def _features(self, video: torch.Tensor, protocol: Protocol) -> dict:
        out = {}
        if self._judged(protocol) and video.shape[2] >= self.classifier_cfg.data.num_frames:
            length = self.classifier_cfg.data.num_frames  # rollouts: the last window, the farthest out
            clip = video[:, :, -length:] if protocol.kind == "rollout" else video[:, :, :length]
            out[CLASSIFIER_FD] = features(self.classifier, clip)
        if self.i3d is not None and video.shape[2] >= MIN_FRAMES:
            frames = min(video.shape[2], self.fvd_cfg.num_frames)
            cfg = dataclasses.replace(self.fvd_cfg, num_frames=frames)
            out["fvd"] = i3d_features(self.i3d, torch.from_numpy(to_uint8(video)), cfg)
        return out

    def features_of(self, video: torch.Tensor, protocol: Protocol) -> dict[str, np.ndarray]:
        """Set-level features of clips (N, 3, T, R, R): name (classifier_fd, fvd) -> (N, D)."""
        return self._features(video, protocol)

    def add(self, seed: int, video: torch.Tensor, protocol: Protocol) -> None:
        self.fake.append((seed, self._features(video, protocol)))

    def real(self, data: HeldOut, protocol: Protocol) -> dict[str, np.ndarray]:
        """Features of the held-out clips of ``protocol`` (computed once per protocol and length)."""
        key = (protocol.name, protocol.total_frames)
        if key not in self._real:
            self._real[key] = self._features(data.video[:, :, : protocol.total_frames], protocol)
        return self._real[key]

    def distance(self, name: str, real: np.ndarray, fake: np.ndarray, protocol: Protocol) -> dict:
        """``{name: value}`` between two feature sets (N, D), (M, D); FVD adds its settings."""
        if name == "fvd":
            cfg = dataclasses.replace(
                self.fvd_cfg, num_frames=min(protocol.total_frames, self.fvd_cfg.num_frames)
            )
            return fvd_from_features(real, fake, cfg)
        return {name: frechet_from_features(real, fake, ddof=1)}

    def set_level(self, data: HeldOut, protocol: Protocol, agg: Aggregator) -> dict:
        """Per seed, the generated set against the held-out set; mean and interval over seeds."""
        real = self.real(data, protocol)
        by_seed: dict[int, dict[str, list]] = {}
        for seed, feats in self.fake:
            for name, value in feats.items():
                by_seed.setdefault(seed, {}).setdefault(name, []).append(value)
        out = {}
        for name in real:
            per_seed, extra = [], None
            for feats in by_seed.values():
                result = self.distance(name, real[name], np.concatenate(feats[name]), protocol)
                per_seed.append(result[name])
                extra = result if name == "fvd" else None
            figure = agg.set_level(per_seed, "", higher_is_better=False)
            if extra is not None:
                figure["settings"] = {k: v for k, v in extra.items() if not k.startswith("fvd")}
            out[name] = figure
        return out
