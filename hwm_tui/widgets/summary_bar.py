"""The summary a finished run leaves on screen, instead of vanishing."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hwm_core.events.run_state import RunState
from hwm_core.figures import format_duration

from .on_track_text import on_track_text

OUTCOME_STYLES = {"finished": "bold green", "stopped": "bold yellow", "failed": "bold red", "diverged": "bold red"}


class SummaryBar(Static):
    DEFAULT_CSS = """
    SummaryBar {
        display: none;
        height: auto;
        padding: 0 1;
        border-top: heavy $accent;
        background: $boost;
    }
    SummaryBar.-shown { display: block; }
    """

    def show(self, view: RunState, outcome: str, elapsed_s: float | None) -> None:
        p = view.progress
        text = Text()
        text.append(f"{'✔' if outcome == 'finished' else '■'} run {outcome}", style=OUTCOME_STYLES.get(outcome, "bold"))
        text.append(f" · {p.step}/{p.max_steps} steps")
        if elapsed_s is not None:
            text.append(f" in {format_duration(elapsed_s)}")
        if len(view.chart_curves.loss):
            text.append(f" · loss {float(view.chart_curves.loss.smooth.y[-1]):.4f} (smoothed)")
        best = view.best_val()
        if best is not None:
            text.append(f" · best val {best[1]:.4f} at step {best[0]}")
        text.append(f" · {view.totals.warning_count} warnings")
        if view.on_track.band is not None:
            text.append("\n")
            text.append(on_track_text(view))
        if p.message and outcome in ("failed", "diverged"):
            text.append(f"\n{p.message}", style="red")
        if view.chart_curves.checkpoints:
            text.append(f"\nlast checkpoint: {view.chart_curves.checkpoints[-1].path}", style="dim")
        text.append("\nq exit · h history · ? help", style="dim")
        self.update(text)
        self.add_class("-shown")
