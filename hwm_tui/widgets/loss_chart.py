"""Loss: train loss per step, raw and smoothed, val loss points, and the
random-guess loss ln(codebook size) as a dashed reference line. Where the preset
names what a healthy run shows, its loss band at each of those steps is a yellow
bar. Runs of the same sweep can be drawn under it, each a faint smoothed line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwm_core.events.run_state import RunState

from .downsample import downsample_last, downsample_minmax
from .run_chart import RunChart, in_window, step_axis, step_ticks

OVERLAY_COLORS = ("magenta", "blue", "yellow", "green", "red", "white", "orange")


@dataclass
class Overlay:
    """Another run drawn under this one (the sweep's earlier runs)."""

    label: str
    view: RunState


class LossChart(RunChart[RunState]):
    title = "Loss"

    def __init__(self, *args, overlays: list[Overlay] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.overlays = list(overlays or [])

    def titles(self, view: RunState) -> None:
        st = self.settings
        legend = "".join(
            f" [{OVERLAY_COLORS[i % len(OVERLAY_COLORS)]}]{o.label}[/]" for i, o in enumerate(self.overlays)
        )
        band = " [yellow]┃ expected[/]" if view.on_track.band is not None else ""
        self.border_subtitle = (
            f"[grey]raw[/] [cyan]smoothed[/] [green]● val[/] "
            f"[red]╌ ln({view.codebook_size:,}) = {view.random_guess_loss:.2f}[/]" + band + legend
        )
        shown = (
            f" · smoothing {st.smoothing:g}"
            + (" · log" if st.log_y else "")
            + ("" if st.window is None else f" · {st.window_label}")
        )
        if len(view.chart_curves.loss):
            step, loss = int(view.chart_curves.loss.x[-1]), float(view.chart_curves.loss.y[-1])
            self.border_title = f"{self.title} · step {step} · {loss:.4f}{shown}"
        else:
            self.border_title = f"{self.title} · waiting for the first step{shown}"

    def draw(self, plt, view: RunState) -> None:
        st = self.settings
        reference = view.random_guess_loss
        if st.log_y:
            plt.yscale("log")
        if not len(view.chart_curves.loss):
            if not st.log_y:
                plt.ylim(0, reference * 1.05)
            step_ticks(plt, 0, max(view.max_steps, 1), self.size.width)
            plt.horizontal_line(reference, color="red")
            return
        loss, val_loss = view.chart_curves.loss, view.chart_curves.val_loss
        step = float(loss.x[-1])
        first = self.first_shown(view, step)
        for i, overlay in enumerate(self.overlays):
            other = overlay.view.chart_curves.loss
            in_x, in_y = in_window(other.x, other.smoothed(st.smoothing), first)
            ox, oy = downsample_last(in_x, in_y, self.buckets)
            if ox:
                plt.plot(ox, oy, color=OVERLAY_COLORS[i % len(OVERLAY_COLORS)], marker="braille")
        # Raw as dots (each bucket's min and max, so spikes show): joining them with lines
        # paints vertical strokes that cost plotext several times the time.
        x, y = downsample_minmax(*in_window(loss.x, loss.y, first), self.buckets)
        plt.scatter(x, y, color="gray", marker="braille")
        if st.smoothing > 0:
            sx, sy = downsample_last(*in_window(loss.x, loss.smoothed(st.smoothing), first), 2 * self.buckets)
            plt.plot(sx, sy, color="cyan+", marker="braille")
        vx, vy = in_window(val_loss.x, val_loss.y, first)
        if len(vx):
            plt.scatter(vx.tolist(), vy.tolist(), color="green+", marker="●")
        band = view.on_track.band
        if band is not None:
            for band_step, low, high in zip(band.steps, band.low, band.high):
                at = max(band_step, view.first_step + 1)  # step 0: the run's first step
                if first <= at <= max(step, first + 1):
                    plt.plot([at, at], [low, high], color="yellow", marker="braille")
        dashes = np.linspace(first, max(step, first + 1), max(2, self.buckets // 2))
        plt.scatter(dashes.tolist(), [reference] * len(dashes), color="red", marker="-")
        step_axis(plt, first, step, self.size.width)
