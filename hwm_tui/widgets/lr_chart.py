"""Learning rate: the run's whole planned warmup-cosine curve drawn faintly, the
steps done drawn over it, the current step marked."""

from __future__ import annotations

from hwm_core.events.run_state import RunState
from hwm_core.training.schedule import planned_curve

from .downsample import downsample_last
from .run_chart import RunChart, in_window, step_ticks


class LrChart(RunChart[RunState]):
    title = "Learning rate"

    def titles(self, view: RunState) -> None:
        start = view.start
        if start is None:
            self.border_title = f"{self.title} · waiting for the run"
            return
        if len(view.chart_curves.lr):
            self.border_title = f"{self.title} · {float(view.chart_curves.lr.y[-1]):.2e}"
        else:
            self.border_title = f"{self.title} · peak {start.peak_lr:.1e}"
        self.border_subtitle = f"warmup {start.warmup_steps} · {start.schedule} to {start.max_steps}"

    def draw(self, plt, view: RunState) -> None:
        start = view.start
        if start is None:
            return
        st = self.settings
        done = view.chart_curves.lr
        # The whole plan, unless a window asks for the last steps done.
        first = 0 if st.window is None else self.first_shown(view, float(done.x[-1]) if len(done) else 0)
        last = start.max_steps if st.window is None else (float(done.x[-1]) if len(done) else first + 1)
        steps, lrs = planned_curve(
            peak_lr=start.peak_lr,
            warmup_steps=start.warmup_steps,
            max_steps=start.max_steps,
            schedule=start.schedule,
            points=2 * self.buckets,
        )
        planned = [(s, lr) for s, lr in zip(steps, lrs) if first <= s <= last and (lr > 0 or not st.log_y)]
        if st.log_y:
            plt.yscale("log")  # zero (the ends of the schedule) has no place on it
        if planned:
            plt.plot([s for s, _ in planned], [lr for _, lr in planned], color="gray", marker="braille")
        if len(done):
            x, y = in_window(done.x, done.y, first)
            if st.log_y:
                x, y = x[y > 0], y[y > 0]
            xs, ys = downsample_last(x, y, 2 * self.buckets)  # a smooth curve: no spikes to keep
            if xs:
                plt.plot(xs, ys, color="yellow+", marker="braille")
            step, lr = float(done.x[-1]), float(done.y[-1])
            plt.vertical_line(step, color="white")
            if lr > 0 or not st.log_y:
                plt.scatter([step], [lr], color="white", marker="●")
        step_ticks(plt, first, max(last, first + 1), self.size.width)
        if not st.log_y:
            plt.ylim(0, start.peak_lr * 1.1)
            ticks = [0.0, start.peak_lr / 2, start.peak_lr]
            plt.yticks(ticks, [f"{t:.0e}" if t else "0" for t in ticks])
