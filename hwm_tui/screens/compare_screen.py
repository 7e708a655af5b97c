"""`v` in history: 2 to 8 runs compared: loss (smoothed, with val points), learning
rate and pre-clip grad norm, each run its own colour; with them a table of the
config values in which the runs differ and each run's steps, best and last val
loss, warnings and status. A run still training updates live: its metrics are read
from where the last look stopped, in a worker thread.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static

from hwm_core.events.follow import MetricsFollower
from hwm_core.events.run_state import RunState
from hwm_core.experiments.comparison import Comparison, compare, format_value, short_key
from hwm_core.figures import format_duration
from hwm_core.runs.folder import RunFolder

from ..style import STATUS_STYLES
from ..widgets.chart_settings import CHART_BINDINGS, ChartControls, ChartSettings
from ..widgets.compare_charts import RUN_MARKUP, ComparedView, CompareGradChart, CompareLossChart, CompareLrChart
from .from_worker import show_from_worker

REFRESH_S = 2.0


class _Followed:
    """One run's state, extended by what its metrics.jsonl gained since the last look."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.state = RunState()
        self.metrics = MetricsFollower(folder.metrics)

    def read(self) -> bool:
        read = self.metrics.poll()
        if not read.events and not read.rewound:
            return False
        state = RunState() if read.rewound else self.state.copy()  # the screen may be drawing the old one
        state.add_all(read.events)
        self.state = state
        return True


class CompareScreen(ChartControls):
    DEFAULT_CSS = """
    CompareScreen #compare-body { height: 1fr; }
    CompareScreen #c-loss { width: 3fr; }
    CompareScreen #compare-side { width: 2fr; }
    CompareScreen #compare-table { height: auto; max-height: 12; border: round $panel-lighten-2; }
    CompareScreen #compare-keys { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "x_axis", "X axis"),
        *CHART_BINDINGS,
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, run_dirs: list[Path]):
        super().__init__()
        self.followed = [_Followed(RunFolder(p)) for p in run_dirs]
        self.comparison: Comparison | None = None
        self.chart_settings = ChartSettings()
        self.compared = ComparedView()
        self._rows: list[tuple] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-body"):
            yield CompareLossChart(id="c-loss", settings=self.chart_settings)
            with Vertical(id="compare-side"):
                yield CompareLrChart(id="c-lr", settings=self.chart_settings)
                yield CompareGradChart(id="c-grad", settings=self.chart_settings)
        # under the charts, the whole width: every column of a run's row fits at 120 columns
        yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="compare-keys")
        yield Footer()

    def on_mount(self) -> None:
        self._refresh_now()
        self.set_interval(REFRESH_S, self._refresh)

    # ------------------------------------------------------------------ reading

    def _refresh_now(self) -> None:
        self._show(*self._read())

    @work(thread=True, exclusive=True, group="compare")
    def _refresh(self) -> None:
        comparison, changed = self._read()
        if changed or comparison is not None:
            show_from_worker(self, self._show, comparison, changed)

    def _read(self) -> tuple[Comparison, bool]:
        changed = False
        for run in self.followed:
            changed |= run.read()
        return compare([run.folder for run in self.followed], time.time()), changed

    def _show(self, comparison: Comparison, changed: bool) -> None:
        first = self.comparison is None
        self.comparison = comparison
        self.compared = ComparedView([run.label for run in comparison.runs], [run.state for run in self.followed])
        self._fill_table(rebuild=first)
        if changed or first:
            self.redraw_charts_now()

    def _fill_table(self, rebuild: bool) -> None:
        assert self.comparison is not None
        table = self.query_one(DataTable)
        keys = self.comparison.keys
        rows = [
            (
                run.summary.id,
                *(format_value(run.values[k]) for k in keys),
                run.summary.status,
                f"{run.summary.step}/{run.summary.max_steps}",
                _loss(run.summary.best_val_loss),
                _loss(run.summary.last_val_loss),
                str(run.summary.warning_count),
                format_duration(run.summary.duration_s),
            )
            for run in self.comparison.runs
        ]
        if not rebuild and rows == self._rows:
            return  # nothing new: the cursor stays where it is
        self._rows = rows
        if rebuild:
            table.clear(columns=True)
            for column in (
                "",
                "run",
                *(short_key(k) for k in keys),
                "status",
                "steps",
                "best val",
                "last val",
                "warn",
                "time",
            ):
                table.add_column(column, key=column)
        else:
            table.clear()
        for i, (run_id, *values) in enumerate(rows):
            status = values[len(keys)]
            table.add_row(
                Text("■", style=RUN_MARKUP[i % len(RUN_MARKUP)]),
                Text(run_id, style="bold"),
                *values[: len(keys)],
                Text(status, style=STATUS_STYLES.get(status, "")),
                *values[len(keys) + 1 :],
                key=run_id,
            )
        table.border_title = f"{len(self.comparison.runs)} runs"
        differ = ", ".join(keys) if keys else "nothing: the same configs"
        self.query_one("#compare-keys", Static).update(
            f"They differ in: {differ}\nLegend: "
            + " · ".join(
                f"[{RUN_MARKUP[i % len(RUN_MARKUP)]}]{label}[/]" for i, label in enumerate(self.compared.labels)
            )
        )

    # ------------------------------------------------------------------ keys

    def redraw_charts_now(self) -> None:
        for chart in (
            self.query_one("#c-loss", CompareLossChart),
            self.query_one("#c-lr", CompareLrChart),
            self.query_one("#c-grad", CompareGradChart),
        ):
            chart.show(self.compared, force=True)

    def action_x_axis(self) -> None:
        self.chart_settings.next_x_axis()
        self._settings_changed()

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        self.app.push_screen(HelpScreen())


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"
