"""Series of a run's figures over its steps, cheap to append at 60,000 points."""

from __future__ import annotations

import copy
import math
from typing import TypeVar

import numpy as np

S = TypeVar("S", bound="Series")


class Series:
    """Append-only (x, y) kept in numpy arrays that double when full."""

    def __init__(self, capacity: int = 1024):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def copy(self: S) -> S:
        other = copy.copy(self)
        other._x, other._y = self._x.copy(), self._y.copy()
        return other

    def append(self, x: float, y: float) -> None:
        if self._n == len(self._x):
            self._x = np.resize(self._x, 2 * len(self._x))
            self._y = np.resize(self._y, 2 * len(self._y))
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]


class _Ema:
    """An EMA of one weight over a growing series, extended only by what is new."""

    def __init__(self, weight: float):
        self.weight = weight
        self.y = np.empty(1024, dtype=np.float64)
        self.n = 0
        self.acc = self.norm = 0.0

    def extend(self, values: np.ndarray) -> np.ndarray:
        if len(values) > len(self.y):
            self.y = np.resize(self.y, max(len(values), 2 * len(self.y)))
        w, acc, norm = self.weight, self.acc, self.norm
        for i in range(self.n, len(values)):
            v = float(values[i])
            if math.isfinite(v):
                acc, norm = w * acc + (1 - w) * v, w * norm + (1 - w)
            self.y[i] = acc / norm if norm else math.nan
        self.acc, self.norm, self.n = acc, norm, len(values)
        return self.y[: self.n]


class SmoothedSeries(Series):
    """A series with its exponential moving averages (TensorBoard's, bias-corrected),
    one per weight asked for, each extended only by the points added since it was last
    read: a redraw never walks the whole history, a new weight walks it once."""

    def __init__(self, weight: float = 0.95, capacity: int = 1024):
        super().__init__(capacity)
        self.weight = weight
        self._emas: dict[float, _Ema] = {}

    def copy(self) -> SmoothedSeries:
        other = super().copy()
        other._emas = {}  # recomputed on demand: a copy is for a reader that draws it later
        return other

    def smoothed(self, weight: float | None = None) -> np.ndarray:
        """y smoothed with `weight` (the series' own by default; 0 is the raw series)."""
        weight = self.weight if weight is None else weight
        if weight <= 0:
            return self.y
        ema = self._emas.get(weight)
        if ema is None:
            ema = self._emas[weight] = _Ema(weight)
        return ema.extend(self.y)

    @property
    def smooth(self) -> Series:
        """The series smoothed with its own weight."""
        out = Series(max(1, len(self)))
        out._x[: len(self)], out._y[: len(self)], out._n = self.x, self.smoothed(), len(self)
        return out
