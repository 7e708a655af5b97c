"""Base of the dashboard's charts: a plotext plot drawn from a RunState, only when
the run has new data or the chart changed size, from series reduced to its width.

plotext applies a log scale to its stored data in place while building, so a
figure cannot be built twice; every render therefore plots afresh from the view.
"""

from __future__ import annotations

import math
from typing import Generic, Protocol, TypeVar

import numpy as np
from rich.segment import Segment
from textual.strip import Strip
from textual_plotext import PlotextPlot

from hwm_core.events.run_state import RunState

from .chart_settings import ChartSettings
from .plot_text import figure_rows

# plotext needs room for the y tick labels; the rest of the width is data columns.
Y_LABEL_COLUMNS = 10


class ChartView(Protocol):
    """What a chart draws from: anything with a version that bumps when it has news."""

    @property
    def version(self) -> int: ...


ViewT = TypeVar("ViewT", bound=ChartView)


class RunChart(PlotextPlot, Generic[ViewT]):
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

    def __init__(self, *, id: str | None = None, classes: str | None = None, settings: ChartSettings | None = None):
        super().__init__(id=id, classes=classes)
        self.border_title = self.title
        self.settings = settings or ChartSettings()  # the screen's: shared by its charts
        self.view: ViewT | None = None
        self._shown_version = -1
        self._strips: list[Strip] | None = None
        self._strips_key: tuple | None = None

    @property
    def buckets(self) -> int:
        return max(8, self.size.width - Y_LABEL_COLUMNS)

    def show(self, view: ViewT, *, force: bool = False) -> bool:
        """Schedule a redraw from `view` if it has anything new; returns whether it did."""
        if not force and view is self.view and view.version == self._shown_version:
            return False
        self.view, self._shown_version = view, view.version
        self._strips = None
        self.titles(view)
        self.refresh()
        return True

    def render_line(self, y: int) -> Strip:
        # Textual's line API: the plot's rows become strips once per drawing, with no
        # Rich Text or Content in between (those took more time than plotext itself).
        key = (self.size, self.app.theme)
        if self._strips is None or self._strips_key != key:
            self._strips, self._strips_key = self._draw_strips(), key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _draw_strips(self) -> list[Strip]:
        plt = self.plt
        plt.clear_figure()
        plt.frame(True)
        if self.view is not None:
            self.draw(plt, self.view)
        # What PlotextPlot.render does, less its ANSI round trip (see plot_text).
        width, height = self.size
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        base = self.visual_style.rich_style
        return [
            Strip([Segment(chars, base + style) for chars, style in row]).adjust_cell_length(width, base)
            for row in figure_rows(plt)
        ]

    def titles(self, view: ViewT) -> None:
        """The border's title and subtitle (each chart says what it shows)."""

    def draw(self, plt, view: ViewT) -> None:
        """Plot `view` on plotext's figure `plt` (each chart draws its own)."""

    def first_shown(self, view: RunState, last_step: float) -> float:
        """The first step the window shows: the run's first, or the last N steps'."""
        window = self.settings.window
        return view.first_step if window is None else max(view.first_step, last_step - window)


def in_window(x: np.ndarray, y: np.ndarray, first: float) -> tuple[np.ndarray, np.ndarray]:
    if not len(x) or x[0] >= first:
        return x, y
    keep = x >= first
    return x[keep], y[keep]


def step_axis(plt, first: float, last_step: float, width: int) -> None:
    """x in optimizer steps, from the first step shown to the newest one."""
    step_ticks(plt, first, max(last_step, first + 1), width)


def step_ticks(plt, first: float, last: float, width: int) -> None:
    """Whole-step ticks at round numbers (1, 2 or 5 times a power of ten)."""
    plt.xlim(first, last)
    wanted = max(2, width // 16)
    rough = max((last - first) / (wanted - 1), 1)
    magnitude = 10 ** math.floor(math.log10(rough))
    # the largest round spacing that still gives `wanted` ticks or more
    spacing = max(m * magnitude for m in (1, 2, 5) if m * magnitude <= rough)
    start = math.ceil(first / spacing) * spacing
    ticks = [start + i * spacing for i in range(int((last - start) // spacing) + 1)]
    plt.xticks(ticks, [_step_label(t) for t in ticks])


def _step_label(step: float) -> str:
    return f"{step / 1000:g}k" if step >= 10_000 else str(int(step))
