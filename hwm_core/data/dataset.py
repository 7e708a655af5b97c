"""Samples of consecutive windows, with robot states normalised by train statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..runtime.atomic import write_json_atomic
from .split import FRAMES_PER_WINDOW, HAND_CLOSURE_DIMS, STATE_DIM, Split


def state_moments(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of every state dimension over all frames, shard by shard."""
    total = np.zeros(STATE_DIM, dtype=np.float64)
    total_sq = np.zeros(STATE_DIM, dtype=np.float64)
    count = 0
    for shard in split.shards:
        states = np.asarray(shard.states, dtype=np.float64)
        total += states.sum(axis=0)
        total_sq += np.square(states).sum(axis=0)
        count += len(states)
    mean = total / max(count, 1)
    return mean, np.sqrt(np.maximum(total_sq / max(count, 1) - np.square(mean), 0.0))


@dataclass
class StateStats:
    """Per-dimension mean and std of the train split's states.

    Saved with the run so validation and a resumed run normalise with the very
    numbers training started with. Hand closure stays 0/1: it is a switch, and
    scaling it would blur that.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_split(cls, split: Split) -> StateStats:
        mean, std = state_moments(split)
        std[std < 1e-6] = 1.0  # a constant dimension stays at 0 instead of dividing by 0
        for dim in HAND_CLOSURE_DIMS:
            mean[dim], std[dim] = 0.0, 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def normalise(self, states: np.ndarray) -> np.ndarray:
        return ((states - self.mean) / self.std).astype(np.float32)

    def to_json(self) -> dict:
        return {"mean": [float(x) for x in self.mean], "std": [float(x) for x in self.std]}

    @classmethod
    def from_json(cls, value: dict) -> StateStats:
        return cls(np.asarray(value["mean"], dtype=np.float32), np.asarray(value["std"], dtype=np.float32))

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> StateStats:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(
                f"{path} cannot be read ({exc}): the run's state statistics are damaged; start a new run"
            ) from None


class WindowDataset:
    """Every valid sample of `windows` consecutive windows in one segment."""

    def __init__(self, split: Split, windows: int, stats: StateStats, *, role: str = "train"):
        self.split = split
        self.windows = windows
        self.stats = stats
        self.index = split.sample_index(windows)
        if len(self.index) == 0:
            raise DataError(
                f"{role} split {split.root} has no valid sample of {windows} window(s) "
                f"({windows * FRAMES_PER_WINDOW} frames in one segment): use longer "
                "segments or fewer data.windows"
            )

    def __len__(self) -> int:
        return len(self.index)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """tokens int64 [3*windows, 32, 32], states float32 [17*windows, 25]."""
        shard_index, start = (int(x) for x in self.index[i])
        shard = self.split.shards[shard_index]
        video = np.asarray(shard.video[start : start + self.windows], dtype=np.int64)
        tokens = video.reshape(-1, *video.shape[2:])
        first = start * FRAMES_PER_WINDOW
        states = np.asarray(shard.states[first : first + self.windows * FRAMES_PER_WINDOW])
        return tokens, self.stats.normalise(states)

    def raw_states(self, i: int) -> np.ndarray:
        """Sample i's states as recorded, float32 [17*windows, 25] (not normalised)."""
        shard_index, start = (int(x) for x in self.index[i])
        first = start * FRAMES_PER_WINDOW
        return np.asarray(self.split.shards[shard_index].states[first : first + self.windows * FRAMES_PER_WINDOW])
