"""A run's series reduced to a chart's width.

Plotting every point of a 60,000-step series costs a visible fraction of a second
a redraw; a chart only has so many columns, so each series is reduced to its
width, keeping the min and the max of every bucket so a single spike still shows.
"""

from __future__ import annotations

import numpy as np


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
    picks: list[np.ndarray] = []
    for start, end in zip(edges[:-1], edges[1:]):
        segment = y[start:end]
        lo, hi = start + int(np.argmin(segment)), start + int(np.argmax(segment))
        picks.extend((lo, hi) if lo <= hi else (hi, lo))
    index = np.asarray(picks)
    return x[index].tolist(), y[index].tolist()
