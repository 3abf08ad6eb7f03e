"""Built-in procedural datasets, deterministic from a seed: ``shapes`` and ``digits``."""

from .clip import SyntheticClip
from .dataset import SyntheticConfig, SyntheticDataset, render_clip, write_synthetic
from .digits import DigitsConfig, render_digits
from .shapes import ShapesConfig, render_shapes

__all__ = [
    "DigitsConfig",
    "ShapesConfig",
    "SyntheticClip",
    "SyntheticConfig",
    "SyntheticDataset",
    "render_clip",
    "render_digits",
    "render_shapes",
    "write_synthetic",
]
