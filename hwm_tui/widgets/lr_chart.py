"""Learning rate: the run's whole planned warmup-cosine curve drawn faintly, the
steps done drawn over it, the current step marked."""

from __future__ import annotations

from hwm_core.run_state import RunState
from hwm_core.schedule import planned_curve

from ..series import downsample_last
from .run_chart import RunChart, step_ticks


class LrChart(RunChart):
    title = "Learning rate"

    def titles(self, view: RunState) -> None:
        start = view.start
        if start is None:
            self.border_title = f"{self.title} · waiting for the run"
            return
        if len(view.curves.lr):
            self.border_title = f"{self.title} · {float(view.curves.lr.y[-1]):.2e}"
        else:
            self.border_title = f"{self.title} · peak {start.peak_lr:.1e}"
        self.border_subtitle = f"warmup {start.warmup_steps} · {start.schedule} to {start.max_steps}"

    def draw(self, plt, view: RunState) -> None:
        start = view.start
        if start is None:
            return
        steps, lrs = planned_curve(peak_lr=start.peak_lr, warmup_steps=start.warmup_steps,
                                   max_steps=start.max_steps, schedule=start.schedule,
                                   points=2 * self.buckets)
        plt.plot(steps, lrs, color="gray", marker="braille")
        done = view.curves.lr
        if len(done):
            x, y = downsample_last(done.x, done.y, 2 * self.buckets)  # a smooth curve: no spikes to keep
            plt.plot(x, y, color="yellow+", marker="braille")
            step, lr = float(done.x[-1]), float(done.y[-1])
            plt.vertical_line(step, color="white")
            plt.scatter([step], [lr], color="white", marker="●")
        step_ticks(plt, 0, max(start.max_steps, 1), self.size.width)
        plt.ylim(0, start.peak_lr * 1.1)
        ticks = [0.0, start.peak_lr / 2, start.peak_lr]
        plt.yticks(ticks, [f"{t:.0e}" if t else "0" for t in ticks])
