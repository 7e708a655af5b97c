"""Gradient norms: pre-clip and post-clip on one log-scale chart, the clip
threshold as a line and the healthy band 0.1-10 marked."""

from __future__ import annotations

import math

import numpy as np

from hwm_core.events.run_state import RunState

from .downsample import downsample_minmax
from .run_chart import RunChart, in_window, step_axis

HEALTHY_BAND = (0.1, 10.0)


def _positive(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(y) & (y > 0)  # a log axis has no place for 0 or NaN
    return x[keep], y[keep]


def _decade_label(value: float) -> str:
    return f"{value:g}" if 1e-2 <= value <= 1e3 else f"1e{round(math.log10(value))}"


class GradChart(RunChart[RunState]):
    title = "Gradient norms"

    def titles(self, view: RunState) -> None:
        clip = view.start.max_grad_norm if view.start else 1.0
        self.border_subtitle = (
            f"[darkorange]pre-clip[/] [cyan]post-clip[/] [red]─ clip {clip:g}[/] "
            f"[green]─ healthy {HEALTHY_BAND[0]:g}–{HEALTHY_BAND[1]:g}[/]"
        )
        window = "" if self.settings.window is None else f" · {self.settings.window_label}"
        if len(view.chart_curves.grad_pre):
            pre = float(view.chart_curves.grad_pre.y[-1])
            value = f"{pre:.3g}" if math.isfinite(pre) else "non-finite"
            self.border_title = f"{self.title} · {value}{window}"
        else:
            self.border_title = f"{self.title} · waiting for the first step"

    def draw(self, plt, view: RunState) -> None:
        clip = view.start.max_grad_norm if view.start else 1.0
        plt.yscale("log")
        lo, hi = HEALTHY_BAND[0] / 2, HEALTHY_BAND[1] * 2
        last_step: float = view.first_step + 1
        pre, post = view.chart_curves.grad_pre, view.chart_curves.grad_post
        first = self.first_shown(view, float(pre.x[-1]) if len(pre) else last_step)
        if len(pre):
            px, py = _positive(*in_window(pre.x, pre.y, first))
            qx, qy = _positive(*in_window(post.x, post.y, first))
            if len(py):
                lowest = min(float(py.min()), float(qy.min()) if len(qy) else lo)
                lo, hi = min(lo, lowest / 2), max(hi, float(py.max()) * 2)
                # Dots, not lines: min and max of a noisy bucket joined by lines paint long
                # vertical strokes that cost plotext ~10x the time and hide the band.
                x, y = downsample_minmax(px, py, self.buckets)
                plt.scatter(x, y, color="orange", marker="braille")
            if len(qy):
                x, y = downsample_minmax(qx, qy, self.buckets)
                plt.scatter(x, y, color="cyan+", marker="braille")
            last_step = float(pre.x[-1])
        for level in HEALTHY_BAND:
            plt.horizontal_line(level, color="green")
        plt.horizontal_line(clip, color="red")
        # plotext takes a log axis' limits as exponents, its ticks as values
        plt.ylim(math.log10(lo), math.log10(hi))
        decades = [10.0**e for e in range(math.floor(math.log10(lo)) + 1, math.ceil(math.log10(hi)))]
        plt.yticks(decades, [_decade_label(d) for d in decades])
        step_axis(plt, first, last_step, self.size.width)
