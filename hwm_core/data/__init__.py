"""1X World Model Challenge v2.0 data: reader, samples, synthetic generator."""

from .cache import SYNTHETIC, synthetic_split
from .dataset import StateStats, WindowDataset
from .split import Split

__all__ = ["SYNTHETIC", "Split", "StateStats", "WindowDataset", "synthetic_split"]
