"""Chart series that stay cheap at 60,000 points.

Plotting every point costs ~0.4 s a redraw; a chart only has so many columns,
so each series is reduced to its width, keeping the min and the max of every
bucket so a single spike still shows.
"""

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


def downsample_last(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[list[float], list[float]]:
    """One point a bucket, its last finite one: enough for a curve that is already
    smooth, and half the points of min/max for plotext to join with lines."""
    keep = np.isfinite(y)
    if not keep.all():
        x, y = x[keep], y[keep]
    n = len(y)
    if n <= max(1, buckets):
        return x.tolist(), y.tolist()
    index = np.linspace(0, n, max(1, buckets) + 1).astype(np.int64)[1:] - 1
    return x[index].tolist(), y[index].tolist()


def downsample_minmax(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[list[float], list[float]]:
    """At most 2*buckets points: each bucket's min and max, in x order. Non-finite
    values are dropped (a NaN loss shows as a warning, not as a line)."""
    keep = np.isfinite(y)
    if not keep.all():
        x, y = x[keep], y[keep]
    n = len(y)
    buckets = max(1, buckets)
    if n <= 2 * buckets:
        return x.tolist(), y.tolist()
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    picks = []
    for start, end in zip(edges[:-1], edges[1:]):
        segment = y[start:end]
        lo, hi = start + int(np.argmin(segment)), start + int(np.argmax(segment))
        picks.extend((lo, hi) if lo <= hi else (hi, lo))
    index = np.asarray(picks)
    return x[index].tolist(), y[index].tolist()
