"""`?`: every key of the dashboard and the history screen, with what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.chart_settings import CHART_KEYS_HELP

KEYS = [
    (
        "Dashboard",
        [
            ("p", "pause / resume training, at the next step boundary (status shows pausing… until then)"),
            ("c", "checkpoint now, at the next step boundary; the status shows the path"),
            ("q", "quit: asks first, then checkpoints, marks the run interrupted and exits"),
            ("h", "history of runs"),
            ("s", "samples: what the model predicts for a few val samples (context, truth, argmax, MaskGIT, errors)"),
            ("f", "freeze the display (nothing redraws until f again; training goes on)"),
            *CHART_KEYS_HELP,
            ("?", "this help"),
        ],
    ),
    (
        "History",
        [
            ("↑ ↓ / enter", "select a run: its loss, learning-rate and grad-norm curves and its config"),
            ("o / O", "order by the next column / reverse the order"),
            ("s", "samples of the selected run: its newest predictions of a few val samples"),
            ("i", "imagine: the selected run rolled forward window by window (a run whose target is a window)"),
            ("space", "select the run for a comparison (again: leave it out); up to 8"),
            ("v", "compare the selected runs: curves in one chart each, and how their configs differ"),
            ("r", "resume the selected run from its latest good checkpoint"),
            ("d", "delete the selected run (asks first)"),
            *CHART_KEYS_HELP,
            ("?", "this help"),
            ("escape", "back"),
        ],
    ),
    (
        "Comparison",
        [
            ("x", "x axis: steps / samples seen / wall-clock hours"),
            *CHART_KEYS_HELP,
            ("escape", "back"),
        ],
    ),
    (
        "Samples",
        [
            ("← →", "previous / next val sample"),
            ("g", "predict now from the run's latest checkpoint"),
            ("i", "imagine: the run rolled forward window by window (a run whose target is a window)"),
            ("escape", "back"),
        ],
    ),
    (
        "Rollout",
        [
            ("← →", "the previous / next imagined latent grid (4 windows, 12 grids)"),
            ("n / p", "the next / previous val span"),
            ("t", "steer (synthetic split): you set the next window's velocity, the model imagines it"),
            ("w s / a d", "steering: the camera's velocity in rows / columns, a step of 0.125 tokens a frame"),
            ("space", "steering: imagine the next window under that velocity"),
            ("backspace", "steering: take the last imagined window back"),
            ("escape", "back"),
        ],
    ),
    (
        "Health colours",
        [
            ("yellow", "vanishing gradients: pre-clip norm below the vanishing threshold"),
            ("orange", "instability: pre-clip norm above the instability threshold"),
            ("red", "non-finite loss or gradients (the step was skipped), failed checkpoints"),
        ],
    ),
]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 98%; height: auto; max-height: 98%;
        border: thick $accent; background: $surface; padding: 0 1; scrollbar-gutter: stable;
    }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for n, (section, rows) in enumerate(KEYS):
            if n:
                table.add_row("", "")
            table.add_row(f"[bold]{section}[/]", "")
            for key, what in rows:
                table.add_row(key, what)
        # at 80x24 the keys do not all fit: they scroll, and the way out stays in the border
        with VerticalScroll() as box:
            box.border_subtitle = "escape closes · ↑↓ scroll"
            yield Static(table)
