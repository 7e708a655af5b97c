"""Base of the dashboard's charts: a plotext plot that redraws only when its run
has new data or its size changed, from series reduced to its width."""

from __future__ import annotations

import time

from textual_plotext import PlotextPlot

from ..run_view import RunView

# plotext needs room for the y tick labels; the rest of the width is data columns.
Y_LABEL_COLUMNS = 10


class RunChart(PlotextPlot):
    DEFAULT_CSS = """
    RunChart {
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
        height: 1fr;
        width: 1fr;
        padding: 0;
    }
    """

    title = "chart"

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.border_title = self.title
        self._drawn: tuple[int, int, int] | None = None
        self.last_draw_ms = 0.0

    @property
    def buckets(self) -> int:
        return max(8, self.size.width - Y_LABEL_COLUMNS)

    def show(self, view: RunView, *, force: bool = False) -> bool:
        """Redraw from `view` if anything changed; returns whether it did."""
        key = (view.version, self.size.width, self.size.height)
        if not force and key == self._drawn:
            return False
        started = time.perf_counter()
        plt = self.plt
        plt.clear_figure()
        plt.frame(True)
        self.draw(plt, view)
        self._drawn = key
        self.refresh()
        self.last_draw_ms = (time.perf_counter() - started) * 1000
        return True

    def draw(self, plt, view: RunView) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def on_resize(self) -> None:
        self._drawn = None


def step_axis(plt, view: RunView, last_step: float) -> None:
    """x in optimizer steps, from the first step shown to the newest one."""
    first = view.start.start_step if view.start else 0
    plt.xlim(first, max(last_step, first + 1))
