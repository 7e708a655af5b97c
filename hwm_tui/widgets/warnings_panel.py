"""Warnings: a scrolling list, colour-coded by kind, counts per kind in the title."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from hwm_core.events import WarningEvent

from ..style import WARNING_STYLES

KIND_LABELS = {"instability": "instability", "vanishing": "vanishing", "nonfinite": "non-finite"}


class WarningsPanel(RichLog):
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
        super().__init__(id=id, wrap=True, markup=False, max_lines=5000, auto_scroll=True)
        self.counts: dict[str, int] = {}
        self._shown = 0
        self._title()

    def show_warnings(self, warnings: list[WarningEvent]) -> None:
        """Append the warnings not shown yet."""
        for warning in warnings[self._shown:]:
            self.counts[warning.kind] = self.counts.get(warning.kind, 0) + 1
            style = WARNING_STYLES.get(warning.kind, "red")
            line = Text()
            line.append(f"{warning.step:>6} ", style="bold")
            line.append(f"{KIND_LABELS.get(warning.kind, warning.kind):<11} ", style=f"bold {style}")
            line.append(f"{warning.value:<9.3g} ", style=style)
            line.append(warning.message)
            self.write(line)
        if len(warnings) != self._shown:
            self._shown = len(warnings)
            self._title()

    def _title(self) -> None:
        parts = []
        for kind in ("instability", "vanishing", "nonfinite"):
            style = WARNING_STYLES[kind]
            parts.append(f"[{style}]{KIND_LABELS[kind]} {self.counts.get(kind, 0)}[/]")
        others = sum(n for kind, n in self.counts.items() if kind not in KIND_LABELS)
        if others:
            parts.append(f"[red]other {others}[/]")
        self.border_title = "Warnings · " + " · ".join(parts)
        if not self._shown:
            self.border_subtitle = "none yet"
        else:
            self.border_subtitle = ""
