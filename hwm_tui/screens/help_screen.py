"""`?`: every key of the dashboard and the history screen, with what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Dashboard", [
        ("p", "pause / resume training, at the next step boundary (status shows pausing… until then)"),
        ("c", "checkpoint now, at the next step boundary; the status shows the path"),
        ("q", "quit: asks first, then checkpoints, marks the run interrupted and exits"),
        ("h", "history of runs"),
        ("f", "freeze the display (nothing redraws until f again; training goes on)"),
        ("?", "this help"),
    ]),
    ("History", [
        ("↑ ↓ / enter", "select a run: its loss, learning-rate and grad-norm curves and its config"),
        ("s / S", "sort by the next column / reverse the order"),
        ("r", "resume the selected run from its latest good checkpoint"),
        ("d", "delete the selected run (asks first)"),
        ("?", "this help"),
        ("escape", "back"),
    ]),
    ("Health colours", [
        ("yellow", "vanishing gradients: pre-clip norm below the vanishing threshold"),
        ("orange", "instability: pre-clip norm above the instability threshold"),
        ("red", "non-finite loss or gradients (the step was skipped), failed checkpoints"),
    ]),
]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 98%; height: auto; max-height: 98%;
        border: thick $accent; background: $surface; padding: 0 1; scrollbar-gutter: stable;
    }
    """
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss", "Close", show=False),
                Binding("q", "dismiss", "Close", show=False)]

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

    def action_dismiss(self) -> None:
        self.dismiss(None)
