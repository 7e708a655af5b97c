"""Loss: train loss per step, raw and smoothed, val loss points, and the
random-guess loss ln(codebook size) as a dashed reference line."""

from __future__ import annotations

import numpy as np

from ..run_view import RunView
from ..series import downsample_minmax
from .run_chart import RunChart, step_axis


class LossChart(RunChart):
    title = "Loss"

    def draw(self, plt, view: RunView) -> None:
        reference = view.random_guess_loss
        self.border_subtitle = (f"[grey62]raw[/] [cyan]smoothed[/] [green]● val[/] "
                                f"[red]╌ ln({view.codebook_size:,}) = {reference:.2f}[/]")
        if not len(view.loss):
            self.border_title = f"{self.title} · waiting for the first step"
            plt.ylim(0, reference * 1.05)
            plt.xlim(0, max(view.max_steps, 1))
            plt.horizontal_line(reference, color="red")
            return
        step, loss = float(view.loss.x[-1]), float(view.loss.y[-1])
        self.border_title = f"{self.title} · step {int(step)} · {loss:.4f}"
        x, y = downsample_minmax(view.loss.x, view.loss.y, self.buckets)
        plt.plot(x, y, color="gray", marker="braille")
        sx, sy = downsample_minmax(view.loss.smooth.x, view.loss.smooth.y, self.buckets)
        plt.plot(sx, sy, color="cyan+", marker="braille")
        if len(view.val_loss):
            plt.scatter(view.val_loss.x.tolist(), view.val_loss.y.tolist(), color="green+", marker="●")
        first = view.start.start_step if view.start else 0
        dashes = np.linspace(first, max(step, first + 1), max(2, self.buckets // 2))
        plt.scatter(dashes.tolist(), [reference] * len(dashes), color="red", marker="-")
        step_axis(plt, view, step)
