"""What a split holds, for `hwm-tui data inspect`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .dataset import StateStats, state_moments
from .split import FRAMES_PER_WINDOW, Split

STATE_NAMES = [f"joint_{i}" for i in range(21)] + [
    "left_hand_closure",
    "right_hand_closure",
    "linear_velocity",
    "angular_velocity",
]


def describe_split(path: str | Path, windows: int = 1) -> dict[str, Any]:
    split = Split.open(path)
    split.check_contents()
    token_min, token_max = split.token_range()
    stats = StateStats.from_split(split)
    raw_mean, raw_std = state_moments(split)
    num_valid = int(sum(len(s.valid_starts(windows)) for s in split.shards))
    return {
        "path": str(split.root),
        "layout": split.layout,
        "hz": split.metadata.get("hz"),
        "num_shards": len(split.shards),
        "num_frames": split.num_frames,
        "num_windows": split.num_windows,
        "windows_per_sample": windows,
        "frames_per_sample": windows * FRAMES_PER_WINDOW,
        "num_valid_samples": num_valid,
        "num_segments": int(sum(s.num_segments() for s in split.shards)),
        "token_min": token_min,
        "token_max": token_max,
        "synthetic": bool(split.metadata.get("synthetic", False)),
        "state_stats": [
            {
                "dim": i,
                "name": STATE_NAMES[i],
                "mean": float(raw_mean[i]),
                "std": float(raw_std[i]),
                "norm_mean": float(stats.mean[i]),
                "norm_std": float(stats.std[i]),
            }
            for i in range(len(STATE_NAMES))
        ],
    }
