"""Loss: train loss per step, raw and smoothed, val loss points, and the
random-guess loss ln(codebook size) as a dashed reference line."""

from __future__ import annotations

import numpy as np

from hwm_core.run_state import RunState

from ..series import downsample_last, downsample_minmax
from .run_chart import RunChart, step_axis, step_ticks


class LossChart(RunChart):
    title = "Loss"

    def titles(self, view: RunState) -> None:
        self.border_subtitle = (f"[grey]raw[/] [cyan]smoothed[/] [green]● val[/] "
                                f"[red]╌ ln({view.codebook_size:,}) = {view.random_guess_loss:.2f}[/]")
        if len(view.curves.loss):
            step, loss = int(view.curves.loss.x[-1]), float(view.curves.loss.y[-1])
            self.border_title = f"{self.title} · step {step} · {loss:.4f}"
        else:
            self.border_title = f"{self.title} · waiting for the first step"

    def draw(self, plt, view: RunState) -> None:
        reference = view.random_guess_loss
        if not len(view.curves.loss):
            plt.ylim(0, reference * 1.05)
            step_ticks(plt, 0, max(view.max_steps, 1), self.size.width)
            plt.horizontal_line(reference, color="red")
            return
        loss, val_loss = view.curves.loss, view.curves.val_loss
        step = float(loss.x[-1])
        # Raw as dots (each bucket's min and max, so spikes show): joining them with lines
        # paints vertical strokes that cost plotext several times the time.
        x, y = downsample_minmax(loss.x, loss.y, self.buckets)
        plt.scatter(x, y, color="gray", marker="braille")
        sx, sy = downsample_last(loss.smooth.x, loss.smooth.y, 2 * self.buckets)
        plt.plot(sx, sy, color="cyan+", marker="braille")
        if len(val_loss):
            plt.scatter(val_loss.x.tolist(), val_loss.y.tolist(), color="green+", marker="●")
        first = view.first_step
        dashes = np.linspace(first, max(step, first + 1), max(2, self.buckets // 2))
        plt.scatter(dashes.tolist(), [reference] * len(dashes), color="red", marker="-")
        step_axis(plt, view, step, self.size.width)
