"""Warnings: a scrolling list, colour-coded by kind, counts per kind in the title."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from hwm_core.events.run_state import RunState
from hwm_core.events.types import WarningEvent

from ..style import WARNING_MARKUP, WARNING_STYLES

KIND_LABELS = {"instability": "instability", "vanishing": "vanishing", "nonfinite": "non-finite"}
TITLE_LABELS = {"instability": "instab", "vanishing": "vanish", "nonfinite": "nan"}  # fits 80 columns
SHOWN_AT_MOST = 500  # older warnings stay in metrics.jsonl; the panel keeps the newest


class WarningsPanel(VerticalScroll):
    DEFAULT_CSS = """
    WarningsPanel {
        border: round $panel-lighten-2;
        border-title-style: bold;
        height: 1fr;
        width: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.counts: dict[str, int] = {}  # the run's warnings by kind, as its state counts them
        self._shown = 0
        self._lines: list[Text] = []
        self._title()

    def compose(self) -> ComposeResult:
        yield Static("", id="warning-lines")

    def show(self, view: RunState) -> None:
        """Add the run's warnings not shown yet (the list only ever grows)."""
        warnings = view.chart_curves.warnings
        if len(warnings) == self._shown:
            return
        self.counts = dict(view.totals.warnings)
        for warning in warnings[self._shown :]:
            self._lines.append(self._line(warning))
        del self._lines[:-SHOWN_AT_MOST]
        self._shown = len(warnings)
        # Text wraps at the panel's width when drawn, so resizing re-flows it.
        self.query_one("#warning-lines", Static).update(Text("\n").join(self._lines))
        self.scroll_end(animate=False)
        self._title()

    def reset(self) -> None:
        self.counts, self._shown, self._lines = {}, 0, []
        self.query_one("#warning-lines", Static).update("")
        self._title()

    @staticmethod
    def _line(warning: WarningEvent) -> Text:
        style = WARNING_STYLES.get(warning.kind, "red")
        line = Text()
        line.append(f"step {warning.step:<7}", style="bold")
        line.append(f"{KIND_LABELS.get(warning.kind, warning.kind):<12}", style=f"bold {style}")
        line.append(f"{warning.value:.4g}", style=style)
        line.append(f"\n  ↳ {warning.message}", style="dim")
        return line

    @property
    def text(self) -> str:
        return "\n".join(line.plain for line in self._lines)

    def _title(self) -> None:
        parts = []
        for kind in ("instability", "vanishing", "nonfinite"):
            parts.append(f"[{WARNING_MARKUP[kind]}]{TITLE_LABELS[kind]} {self.counts.get(kind, 0)}[/]")
        others = sum(n for kind, n in self.counts.items() if kind not in KIND_LABELS)
        if others:
            parts.append(f"[red]other {others}[/]")
        self.border_title = "Warn · " + " · ".join(parts)
        self.border_subtitle = "" if self._shown else "none yet"
