"""Real-vs-real floors of the set-level feature distances (classifier FD, FVD).

A Frechet distance between two finite sets is not 0 even when both come from one
distribution: sampling noise alone gives a floor that shrinks as the sets grow. A generator's
distance is read against that floor at the same set sizes. For each generation protocol on
built-in data this module renders a pool of further test-split clips, disjoint from every
held-out clip (indices from ``offset`` on, past the largest held-out set), and reports

- ``matched``: the protocol's held-out clips (N) against N * samples pool clips, the sizes
  the generated set is compared at;
- ``by_n``: two disjoint pool sets of n clips each, for every n of ``sizes``.

Clips are scored with the harness's own :class:`~vtlm.eval.features.FeatureSets` (same
classifier, same window of frames), so the floor and the generators' figures are comparable.
"""

from __future__ import annotations

import dataclasses

import torch

from vtlm.data.synthetic import SyntheticConfig, SyntheticDataset

from .features import FeatureSets
from .protocols.clips import HeldOut
from .protocols.registry import Protocol

BUILT_IN = ("shapes", "digits")


def render_pool(synthetic: SyntheticConfig, protocol: Protocol, start: int, count: int) -> torch.Tensor:
    """Test-split clips ``start .. start + count - 1`` of the protocol's data and length:
    float (count, 3, total_frames, R, R) in [-1, 1], rendered as ``load_held_out`` renders."""
    kind_cfg = getattr(synthetic, protocol.dataset)
    cfg = dataclasses.replace(
        synthetic,
        kind=protocol.dataset,
        split="test",
        num_clips=start + count,
        **{protocol.dataset: dataclasses.replace(kind_cfg, num_frames=protocol.total_frames)},
    )
    dataset = SyntheticDataset(cfg)
    return torch.stack([dataset[i]["video"] for i in range(start, start + count)])


class Floors:
    """Real-vs-real distances per protocol; pools are rendered once per data set and length.

    Args:
        features: the harness's feature sets (their classifier / I3D score the pools).
        synthetic: the built-in data settings (None: no floors, only real-data protocols).
        sizes: set sizes n of the ``by_n`` curve (each needs 2n pool clips).
        offset: first pool index; every held-out clip index must lie below it.
    """

    def __init__(
        self, features: FeatureSets, synthetic: SyntheticConfig | None, sizes: list[int], offset: int
    ):
        bad = [n for n in sizes if n < 2]
        if bad:
            raise ValueError(f"floor sizes: a Frechet distance needs >= 2 clips per set, got {bad}")
        self.features, self.synthetic = features, synthetic
        self.sizes, self.offset = sorted(set(sizes)), offset
        self._pools: dict[tuple, dict] = {}

    def _pool(self, protocol: Protocol, count: int) -> dict:
        key = (protocol.dataset, protocol.total_frames, protocol.kind == "rollout")
        have = self._pools.get(key)
        if have is None or have["count"] < count:
            video = render_pool(self.synthetic, protocol, self.offset, count)
            self._pools[key] = {"count": count, "features": self.features.features_of(video, protocol)}
        return self._pools[key]["features"]

    def protocol(self, protocol: Protocol, data: HeldOut, generated: int) -> dict | None:
        """The floor of ``protocol`` whose held-out clips are ``data`` and whose generated set
        holds ``generated`` clips per seed; None where no set-level distance applies."""
        if self.synthetic is None or protocol.dataset not in BUILT_IN:
            return None
        real = self.features.real(data, protocol)
        if not real:
            return None
        largest = max(self.sizes, default=0)
        pool = self._pool(protocol, max(2 * largest, generated))
        matched = {"n_held_out": len(data.video), "n_other": generated}
        for name in real:
            matched[name] = self._distance(name, real[name], pool[name][:generated], protocol)
        by_n = []
        for n in self.sizes:
            point = {"n": n}
            for name in real:
                point[name] = self._distance(
                    name, pool[name][:n], pool[name][largest : largest + n], protocol
                )
            by_n.append(point)
        return {
            "metrics": sorted(real),
            "pool": f"{protocol.dataset} test split clips from {self.offset} on (disjoint from every "
            f"held-out clip), {protocol.total_frames} frames",
            "matched": matched,
            "by_n": by_n,
        }

    def _distance(self, name: str, a, b, protocol: Protocol) -> float | None:
        """The distance, or None where the sets are too small for it (FVD's repeats)."""
        try:
            return self.features.distance(name, a, b, protocol)[name]
        except ValueError as err:
            print(
                f"[eval] floor of {protocol.name}: {name} not computed for {len(a)} vs {len(b)} clips ({err})"
            )
            return None
