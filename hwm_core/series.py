"""Series of a run's figures over its steps, cheap to append at 60,000 points."""

from __future__ import annotations

import copy
import math

import numpy as np


class Series:
    """Append-only (x, y) kept in numpy arrays that double when full."""

    def __init__(self, capacity: int = 1024):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def copy(self) -> "Series":
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


class SmoothedSeries(Series):
    """A series with its exponential moving average (TensorBoard's, bias-corrected),
    updated on append so a redraw never walks the whole history."""

    def __init__(self, weight: float = 0.95, capacity: int = 1024):
        super().__init__(capacity)
        self.weight = weight
        self.smooth = Series(capacity)
        self._acc = self._norm = 0.0

    def copy(self) -> "SmoothedSeries":
        other = super().copy()
        other.smooth = self.smooth.copy()
        return other

    def append(self, x: float, y: float) -> None:
        super().append(x, y)
        if math.isfinite(y):
            self._acc = self.weight * self._acc + (1 - self.weight) * y
            self._norm = self.weight * self._norm + (1 - self.weight)
        self.smooth.append(x, self._acc / self._norm if self._norm else math.nan)
