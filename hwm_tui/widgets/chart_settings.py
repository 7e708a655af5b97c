"""How the charts draw a run: the loss curve's smoothing, a linear or log y axis, a
window of the last steps, and (comparing runs) what the x axis counts.

The dashboard, the history screen and the comparison share these keys, shown in
their footers and the help: [ and ] smoothing, l log y, z window, x the x axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.binding import Binding
from textual.screen import Screen

SMOOTHING_STEPS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)  # EMA weight of the past
WINDOWS = (None, 10_000, 1_000)  # all steps, or the last N
X_AXES = ("steps", "samples", "time")


@dataclass
class ChartSettings:
    smoothing: float = 0.95
    log_y: bool = False
    window: int | None = None
    x_axis: str = "steps"

    def smoother(self, more: bool) -> None:
        steps = SMOOTHING_STEPS
        i = min(range(len(steps)), key=lambda k: abs(steps[k] - self.smoothing))
        self.smoothing = steps[max(0, min(len(steps) - 1, i + (1 if more else -1)))]

    def next_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)] if self.window in WINDOWS else None

    def next_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]

    @property
    def window_label(self) -> str:
        return "all steps" if self.window is None else f"last {self.window:,} steps"

    def describe(self) -> str:
        return f"smoothing {self.smoothing:g} · {'log' if self.log_y else 'linear'} y · {self.window_label}" + (
            f" · x: {self.x_axis}" if self.x_axis != "steps" else ""
        )


CHART_BINDINGS = [
    Binding("left_square_bracket", "chart_smoothing(False)", "Smooth", key_display="[ ]"),
    Binding("right_square_bracket", "chart_smoothing(True)", "Smooth+", show=False),
    Binding("l", "chart_log", "Log"),
    Binding("z", "chart_window", "Window"),
]

CHART_KEYS_HELP = [
    ("[ / ]", "less / more smoothing of the loss curve (EMA weight 0 to 0.99; shown in the chart's title)"),
    ("l", "linear / log y axis (loss and learning rate; grad norms are always log)"),
    ("z", "window: all steps / the last 10,000 / the last 1,000"),
]


class ChartControls(Screen):
    """Mixed into a screen with charts: the keys change `chart_settings` and redraw."""

    chart_settings: ChartSettings
    redraw_charts_now: Callable[[], None]  # each screen draws its own charts

    def _settings_changed(self) -> None:
        self.notify(self.chart_settings.describe(), timeout=2)
        self.redraw_charts_now()

    def action_chart_smoothing(self, more: bool) -> None:
        self.chart_settings.smoother(more)
        self._settings_changed()

    def action_chart_log(self) -> None:
        self.chart_settings.log_y = not self.chart_settings.log_y
        self._settings_changed()

    def action_chart_window(self) -> None:
        self.chart_settings.next_window()
        self._settings_changed()
