"""Named evaluation protocols: what a generator is given, what it must produce, on which data.

A protocol fixes the task (reconstruction, text-to-video, continuation, long rollout), the
number of given (context) and total frames, the resolution, how many held-out clips and how
many samples per clip. The built-in ones run on the procedural ``shapes`` data; the paper
ones follow the setting their source reports, so a run on those files can sit beside
published numbers.

A causal tokenizer with temporal stride s can only be given 1 + j*s frames and produce
1 + k*s. When a protocol's counts do not fit, the harness gives the largest context that
fits (never more than the protocol allows), generates up to the next count that fits, and
scores exactly the protocol's predicted frames; ``fit_to_stride`` says what was used and the
report states it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Kind = Literal["reconstruction", "text_to_video", "continuation", "rollout"]
KINDS = ("reconstruction", "text_to_video", "continuation", "rollout")


@dataclass(frozen=True)
class Protocol:
    """One evaluation setting. Frames count from 0; frames [context_frames, total_frames) are scored."""

    name: str
    kind: Kind
    # Frames given to the generator (0 for text-to-video; all of them for reconstruction).
    context_frames: int
    # Given + predicted frames.
    total_frames: int
    resolution: int
    num_clips: int
    samples_per_clip: int = 1
    # "shapes" / "digits" (built-in, labels known), "moving_mnist" (the .npy file), "folder".
    dataset: str = "shapes"
    # Rollouts: frames in one generated clip when chaining (restart from its last frame).
    clip_frames: int = 17
    source: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not 0 <= self.context_frames <= self.total_frames or self.total_frames < 1:
            raise ValueError(
                f"{self.name}: need 0 <= context_frames <= total_frames and total_frames >= 1, "
                f"got {self.context_frames} and {self.total_frames}"
            )
        if self.kind == "text_to_video" and self.context_frames:
            raise ValueError(f"{self.name}: text_to_video takes no context frames")
        if self.kind in ("continuation", "rollout") and self.context_frames < 1:
            raise ValueError(f"{self.name}: {self.kind} needs context_frames >= 1")
        for name in ("num_clips", "samples_per_clip", "resolution", "clip_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.name}: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def predicted_frames(self) -> int:
        return self.total_frames - self.context_frames if self.kind != "reconstruction" else self.total_frames

    @property
    def first_scored(self) -> int:
        return 0 if self.kind == "reconstruction" else self.context_frames

    def replace(self, **changes) -> Protocol:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit_to_stride(protocol: Protocol, stride: int) -> dict:
    """The frame counts a generator with temporal ``stride`` is run with for ``protocol``.

    Returns ``{"context": k, "generate": n, "note": str}``: k <= context_frames and n >=
    total_frames, both 1 + j*stride (k is 0 for text-to-video). The note is empty when the
    protocol's own counts fit.
    """

    def down(n: int) -> int:
        return 1 + (n - 1) // stride * stride

    def up(n: int) -> int:
        return 1 + -(-(n - 1) // stride) * stride

    context = 0 if protocol.kind == "text_to_video" else down(protocol.context_frames)
    if protocol.kind == "reconstruction":
        context = up(protocol.total_frames)
    total = up(protocol.total_frames)
    notes = []
    if protocol.kind in ("continuation", "rollout") and context != protocol.context_frames:
        notes.append(
            f"given {context} of the protocol's {protocol.context_frames} context frames "
            f"(the tokenizer takes 1 + k*{stride})"
        )
    if total != protocol.total_frames:
        notes.append(
            f"generated {total} frames, scored frames {protocol.first_scored}..{protocol.total_frames - 1}"
        )
    return {"context": context, "generate": total, "note": "; ".join(notes)}


_SHAPES = "vtlm built-in shapes data (held-out test split)"
PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("shapes-recon", "reconstruction", 17, 17, 32, 64, source=_SHAPES),
        Protocol("shapes-t2v", "text_to_video", 0, 17, 32, 64, 2, source=_SHAPES),
        Protocol("shapes-cont1", "continuation", 1, 17, 32, 64, 2, source=_SHAPES),
        Protocol("shapes-cont5", "continuation", 5, 17, 32, 64, 4, source=_SHAPES),
        # 4x the 17-frame training clips: sliding window vs last-frame chaining.
        Protocol("shapes-rollout", "rollout", 5, 65, 32, 16, 1, clip_frames=17, source=_SHAPES),
        Protocol(
            "mmnist-10-10",
            "continuation",
            10,
            20,
            64,
            256,
            1,
            dataset="moving_mnist",
            source="Moving MNIST 10 -> 10 at 64x64 (Srivastava et al. 2015, mnist_test_seq.npy), "
            "the frame-prediction setting of e.g. PredRNN and SimVP",
        ),
        Protocol(
            "bair-1-15",
            "continuation",
            1,
            16,
            64,
            256,
            1,
            dataset="folder",
            source="BAIR robot pushing 1 -> 15 at 64x64 (Ebert et al. 2017), the FVD setting of "
            "Unterthiner et al. 2018 and of video-GPT papers",
        ),
        Protocol(
            "kinetics600-5-11",
            "continuation",
            5,
            16,
            64,
            256,
            1,
            dataset="folder",
            source="Kinetics-600 5 -> 11 at 64x64 (Carreira et al. 2018), the prediction setting "
            "of DVD-GAN-FP (Clark et al. 2019) and later FVD tables",
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"protocol: unknown {name!r}; known: {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]
