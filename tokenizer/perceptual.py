"""LPIPS-style perceptual loss (VGG16 variant) from weight files the user supplies.

vtlm never downloads weights. :meth:`PerceptualLoss.from_files` needs two local files:

* ``vgg_path``: torchvision's ImageNet VGG16 weights, ``vgg16-397923af.pth`` (a state dict
  with ``features.N.weight`` / ``features.N.bias`` keys; ``classifier.*`` keys are ignored).
* ``lpips_path``: the LPIPS project's linear-head weights for VGG, ``vgg.pth`` (keys
  ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, shapes (1, C, 1, 1)).

Either may also be a ``.safetensors`` file with the same keys. ``.pth`` files are read with
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors.

The distance, for images x, y in [-1, 1]: scale both with the LPIPS input layer
``(x - shift) / scale``; run VGG16 and take features after relu1_2, relu2_2, relu3_3, relu4_3
and relu5_3; unit-normalize each feature vector over channels; square the difference, weight
the channels with a 1x1 conv (the linear head), average over space and sum over the 5 taps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's vgg16().features: numbers are 3x3 conv widths (each followed by ReLU), "M" a 2x2
# max pool. Only the layers up to relu5_3 are built (index 29); the last pool is not needed.
_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
TAP_INDICES = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in `features`
TAP_CHANNELS = (64, 128, 256, 512, 512)
MIN_SIZE = 32  # smaller frames are upsampled to this many pixels on their shorter side

VGG_FILE_HINT = "torchvision's VGG16 ImageNet weights, vgg16-397923af.pth"
LPIPS_FILE_HINT = "the LPIPS project's VGG linear weights, vgg.pth (keys lin0.model.1.weight ...)"


class VGG16Features(nn.Module):
    """VGG16 conv trunk with torchvision's layer indices (``features.N.weight`` keys).

    forward: float (N, 3, H, W), already scaled for VGG -> list of the 5 tapped activations,
    (N, 64, H, W), (N, 128, H/2, W/2), (N, 256, H/4, W/4), (N, 512, H/8, W/8), (N, 512, H/16, W/16).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in _VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c_in, item, kernel_size=3, padding=1), nn.ReLU()]
                c_in = item
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAP_INDICES:
                taps.append(x)
        return taps


def _load_state(path: str | Path, hint: str) -> dict[str, torch.Tensor]:
    """Read a flat {name: tensor} dict from a .pth/.pt (weights_only) or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weight file not found: {path}. vtlm downloads nothing; place {hint} there and pass its path."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat state dict of tensors; expected {hint}")
    return dict(state)


def _check_keys(path: str | Path, given: set[str], expected: set[str], hint: str) -> None:
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match {hint}: missing keys {missing}, unexpected keys {unexpected}"
        )


class PerceptualLoss(nn.Module):
    """Frozen LPIPS (VGG16) distance between clips or images, always in eval mode.

    Build it with :meth:`from_files`; the bare constructor leaves random weights (tests use it
    to write files in the two layouts). Parameters never require grad, and ``train()`` keeps
    the module in eval mode; gradients still flow to the inputs.

    max_frames: if set, each clip is scored on that many evenly spaced frames (first and last
        included) to bound the cost; ``None`` scores every frame.
    """

    def __init__(self, max_frames: int | None = None) -> None:
        super().__init__()
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        self.max_frames = max_frames
        self.vgg = VGG16Features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in TAP_CHANNELS)
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(
        cls, vgg_path: str | Path, lpips_path: str | Path, max_frames: int | None = None
    ) -> PerceptualLoss:
        """Load VGG16 and LPIPS head weights from local files (see the module docstring).

        Raises FileNotFoundError naming a missing file and the file expected there, and
        ValueError naming missing/unexpected keys or wrong shapes.
        """
        model = cls(max_frames=max_frames)
        vgg_state = _load_state(vgg_path, VGG_FILE_HINT)
        vgg_state = {k: v for k, v in vgg_state.items() if not k.startswith("classifier.")}
        model._copy_in(vgg_path, vgg_state, model.vgg.state_dict(), VGG_FILE_HINT)

        lpips_state = _load_state(lpips_path, LPIPS_FILE_HINT)
        ours = {f"lin{k}.model.1.weight": lin.weight for k, lin in enumerate(model.lins)}
        model._copy_in(lpips_path, lpips_state, ours, LPIPS_FILE_HINT)
        return model

    @staticmethod
    def _copy_in(
        path: str | Path, state: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], hint: str
    ) -> None:
        _check_keys(path, set(state), set(targets), hint)
        for key, target in targets.items():
            if state[key].shape != target.shape:
                raise ValueError(
                    f"{path}: {key} has shape {tuple(state[key].shape)}, expected {tuple(target.shape)} ({hint})"
                )
        with torch.no_grad():
            for key, target in targets.items():
                target.copy_(state[key])

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stay in eval mode whatever ``mode`` is (the loss is a fixed function)."""
        return super().train(False)

    def _frames(self, video: torch.Tensor, max_frames: int | None) -> torch.Tensor:
        """(B, 3, T, H, W) or (B, 3, H, W) -> (N, 3, H', W') frames, N = B * frames kept."""
        if video.ndim == 4:
            video = video.unsqueeze(2)
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected (B, 3, T, H, W) or (B, 3, H, W), got {tuple(video.shape)}")
        t = video.shape[2]
        if max_frames is not None and max_frames < t:
            idx = torch.linspace(0, t - 1, max_frames, device=video.device).round().long()
            video = video.index_select(2, idx)
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, 3, H, W)
        if min(h, w) < MIN_SIZE:
            s = MIN_SIZE / min(h, w)
            size = (max(MIN_SIZE, round(h * s)), max(MIN_SIZE, round(w * s)))
            frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
        return frames

    def forward(self, x: torch.Tensor, y: torch.Tensor, max_frames: int | None = None) -> torch.Tensor:
        """Mean LPIPS distance between x and y.

        x, y: float (B, 3, T, H, W) or (B, 3, H, W), in [-1, 1], same shape. Frames are folded
            into the batch. Frames under 32 px on a side are first upsampled bilinearly so the
            shorter side is 32 px (relu5_3 then still has a 2x2 grid after 4 poolings).
        max_frames: overrides ``self.max_frames`` for this call.
        Returns a float32 scalar >= 0 (0 when x == y), the mean over all frames compared.
        The feature normalization and distances are computed in float32.
        """
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        max_frames = self.max_frames if max_frames is None else max_frames
        fx, fy = self._frames(x, max_frames), self._frames(y, max_frames)
        n = fx.shape[0]
        both = (torch.cat([fx, fy]) - self.shift) / self.scale  # (2N, 3, H', W')
        total = torch.zeros(n, device=x.device, dtype=torch.float32)
        for feat, lin in zip(self.vgg(both), self.lins):
            feat = F.normalize(feat.float(), dim=1, eps=1e-10)  # unit vectors over channels
            diff = (feat[:n] - feat[n:]).pow(2)  # (N, C, h, w)
            total = total + F.conv2d(diff, lin.weight.float()).mean(dim=(1, 2, 3))
        return total.mean()
