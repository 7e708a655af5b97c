"""Charts of several runs at once: each run its own colour, x in steps, samples seen
or wall-clock hours (the comparison's x key), the same smoothing, log and window
controls as the dashboard's charts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwm_core.events.run_state import RunState
from hwm_core.events.step_series import Series

from .downsample import downsample_last, downsample_minmax
from .grad_chart import HEALTHY_BAND, _decade_label
from .run_chart import RunChart, step_ticks

RUN_COLORS = ("cyan+", "orange", "magenta+", "green+", "yellow+", "blue+", "red+", "white")
RUN_MARKUP = ("cyan", "darkorange", "magenta", "green", "yellow", "dodgerblue", "red", "white")


@dataclass
class ComparedView:
    """The runs a comparison draws: labels, colours by position, and their states."""

    labels: list[str] = field(default_factory=list)
    views: list[RunState] = field(default_factory=list)

    @property
    def version(self) -> int:
        return sum(v.version for v in self.views) + 1000 * len(self.views)


def x_of(view: RunState, steps: np.ndarray, axis: str) -> np.ndarray:
    """Steps as the x axis counts them: steps, samples seen, or hours since the run's first step."""
    curves = view.chart_curves
    if axis == "steps" or not len(curves.samples):
        return steps
    if axis == "samples":
        return np.interp(steps, curves.samples.x, curves.samples.y)
    start = float(curves.wall.y[0])
    return (np.interp(steps, curves.wall.x, curves.wall.y) - start) / 3600.0


class CompareChart(RunChart[ComparedView]):
    """Draws `series_of(view)` of every run of a ComparedView."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_x = 0.0

    def series_of(self, view: RunState) -> Series:  # which series of a run this chart draws
        return view.chart_curves.loss

    def values_of(self, view: RunState, series: Series) -> np.ndarray:
        return series.y

    def titles(self, compared: ComparedView) -> None:
        self.border_subtitle = f"x: {self.settings.x_axis}" + (
            "" if self.settings.window is None else f" · {self.settings.window_label}"
        )

    def draw(self, plt, compared: ComparedView) -> None:
        st = self.settings
        lo_x, hi_x = math.inf, -math.inf
        for i, view in enumerate(compared.views):
            series = self.series_of(view)
            if not len(series):
                continue
            steps, values = series.x, self.values_of(view, series)
            if st.window is not None:
                keep = steps >= steps[-1] - st.window
                steps, values = steps[keep], values[keep]
            keep = np.isfinite(values) & ((values > 0) if self.log_scale else True)
            steps, values = steps[keep], values[keep]
            if not len(steps):
                continue
            x = x_of(view, steps, st.x_axis)
            lo_x, hi_x = min(lo_x, float(x[0])), max(hi_x, float(x[-1]))
            self.plot_run(plt, x, values, RUN_COLORS[i % len(RUN_COLORS)], view)
        if self.log_scale:
            plt.yscale("log")
        if lo_x < hi_x:
            if st.x_axis == "steps":
                step_ticks(plt, lo_x, hi_x, self.size.width)
            else:
                plt.xlim(lo_x, hi_x)

    @property
    def log_scale(self) -> bool:
        return self.settings.log_y

    def plot_run(self, plt, x: np.ndarray, y: np.ndarray, color: str, view: RunState) -> None:
        px, py = downsample_last(x, y, 2 * self.buckets)
        plt.plot(px, py, color=color, marker="braille")


class CompareLossChart(CompareChart):
    title = "Loss (smoothed) · ● val"

    def titles(self, compared: ComparedView) -> None:
        super().titles(compared)
        self.border_title = f"{self.title} · smoothing {self.settings.smoothing:g}" + (
            " · log" if self.settings.log_y else ""
        )

    def values_of(self, view: RunState, series: Series) -> np.ndarray:
        return view.chart_curves.loss.smoothed(self.settings.smoothing)

    def plot_run(self, plt, x, y, color, view) -> None:
        super().plot_run(plt, x, y, color, view)
        val = view.chart_curves.val_loss
        if len(val):
            steps, values = val.x, val.y
            if self.settings.window is not None and len(view.chart_curves.loss):
                keep = steps >= view.chart_curves.loss.x[-1] - self.settings.window
                steps, values = steps[keep], values[keep]
            if len(steps):
                plt.scatter(x_of(view, steps, self.settings.x_axis).tolist(), values.tolist(), color=color, marker="●")


class CompareLrChart(CompareChart):
    title = "Learning rate"

    def series_of(self, view: RunState) -> Series:
        return view.chart_curves.lr


class CompareGradChart(CompareChart):
    title = "Pre-clip grad norm"

    @property
    def log_scale(self) -> bool:
        return True  # norms span decades: always log, as on the dashboard

    def series_of(self, view: RunState) -> Series:
        return view.chart_curves.grad_pre

    def plot_run(self, plt, x, y, color, view) -> None:
        px, py = downsample_minmax(x, y, self.buckets)
        plt.scatter(px, py, color=color, marker="braille")

    def draw(self, plt, compared: ComparedView) -> None:
        super().draw(plt, compared)
        for level in HEALTHY_BAND:
            plt.horizontal_line(level, color="green")
        lo, hi = HEALTHY_BAND[0] / 2, HEALTHY_BAND[1] * 2
        for view in compared.views:
            y = view.chart_curves.grad_pre.y
            y = y[np.isfinite(y) & (y > 0)]
            if len(y):
                lo, hi = min(lo, float(y.min()) / 2), max(hi, float(y.max()) * 2)
        plt.ylim(math.log10(lo), math.log10(hi))
        decades = [10.0**e for e in range(math.floor(math.log10(lo)) + 1, math.ceil(math.log10(hi)))]
        plt.yticks(decades, [_decade_label(d) for d in decades])
