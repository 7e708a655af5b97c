"""History: every run in the runs dir, sortable; the selected run's curves and config.

Reads only the run folders (through hwm_core.runs.history), so it works during
training, with no run at all, and with a broken run among good ones. A run's
metrics are read in a worker thread: a 60,000-step file must not freeze the keys.
The table's columns are in run_table.py, what was read of each run in
run_details.py, and the lower half is a RunDetailView.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer
from textual.worker import get_current_worker

from hwm_core.errors import UserError
from hwm_core.experiments.comparison import MAX_RUNS
from hwm_core.runs.folder import RunFolder
from hwm_core.runs.history import RunSummary, list_runs
from hwm_core.runs.lock import delete_run
from hwm_core.status import RUNNING

from ..messages import CompareRuns, ShowRollout, ShowSamples
from ..widgets.chart_settings import CHART_BINDINGS, ChartControls, ChartSettings
from ..widgets.run_detail_view import RunDetailView
from .confirm_screen import ConfirmScreen
from .from_worker import show_from_worker
from .help_screen import HelpScreen
from .run_details import RunDetail, RunDetails
from .run_table import COLUMNS, NEWEST_FIRST, SORT_DEFAULT, row_cells

REFRESH_S = 2.0


class HistoryScreen(ChartControls):
    class ResumeRequested(Message):
        """r on a resumable run: the app trains it in this window."""

        def __init__(self, run_id: str):
            super().__init__()
            self.run_id = run_id

    class QuitRequested(Message):
        """q: leave the app (asking first if a run trains in this window)."""

    DEFAULT_CSS = """
    HistoryScreen #runs { height: auto; max-height: 45%; border: round $panel-lighten-2; }
    HistoryScreen #detail { height: 1fr; min-height: 12; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "help", "Help"),
        Binding("o", "sort", "Order"),
        Binding("O", "reverse", "Reverse", show=False),
        Binding("s", "samples", "Samples"),
        Binding("i", "imagine", "Imagine"),
        Binding("space", "mark", "Select"),
        Binding("v", "compare", "Compare"),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("q", "quit", "Quit"),
        *CHART_BINDINGS,
    ]

    def __init__(self, runs_dir: Path, *, current_run: str | None = None):
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.current_run = current_run
        self.summaries: dict[str, RunSummary] = {}
        self.sort_column = SORT_DEFAULT  # newest first
        self.sort_reverse = True
        self.selected: str | None = None
        self._shown_cells: dict[str, tuple] = {}
        self._details = RunDetails()
        self.chart_settings = ChartSettings()
        self.marked: list[str] = []  # runs selected for a comparison, in the order selected

    def compose(self) -> ComposeResult:
        table: DataTable[object] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        table.border_title = f"Runs in {self.runs_dir}"
        yield table
        yield RunDetailView(id="detail", settings=self.chart_settings)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key, _ in COLUMNS:
            table.add_column(label, key=key)
        self.refresh_runs()
        self.set_interval(REFRESH_S, self._refresh_in_background)
        table.focus()

    # ------------------------------------------------------------------ list

    @work(thread=True, exclusive=True, group="runs")
    def _refresh_in_background(self) -> None:
        # Reading every run folder (on a network disk, say) must not hold up the keys.
        try:
            summaries = list_runs(self.runs_dir)
        except Exception:  # noqa: BLE001 - a runs dir gone for a moment: the next refresh tries again
            return
        show_from_worker(self, self._show_runs, summaries)

    def refresh_runs(self) -> None:
        self._show_runs(list_runs(self.runs_dir))

    def _show_runs(self, summaries: list[RunSummary]) -> None:
        previous, self.summaries = self.summaries, {s.id: s for s in summaries}
        self._fill_table()
        self.detail_view.show_no_runs(
            None if summaries else f"No runs in {self.runs_dir} yet. Start one with: hwm-tui train --preset cpu"
        )
        selected = self.summaries.get(self.selected or "")
        if selected is not None and selected.id in previous and selected != previous[selected.id]:
            self.load_detail(selected.id)  # a live run: read what its metrics gained

    def _fill_table(self) -> None:
        """Show the runs; rows are changed in place, and the whole table is rebuilt
        only when runs came, went or moved, so the cursor and scroll stay put."""
        table = self.query_one(DataTable)
        key = COLUMNS[self.sort_column][2]
        rows = sorted(self.summaries.values(), key=key, reverse=self.sort_reverse)
        order = [s.id for s in rows]
        cells = {s.id: row_cells(s, self.current_run, s.id in self.marked) for s in rows}
        # Filling the table moves its cursor; the selection is ours to restore, not a user's pick.
        with self.prevent(DataTable.RowHighlighted):
            if order == [row.key.value for row in table.ordered_rows]:
                for run_id, row in cells.items():
                    old = self._shown_cells.get(run_id, ())
                    for (_, column, _), value, was in zip(COLUMNS, row, old):
                        if value != was:
                            table.update_cell(run_id, column, value, update_width=True)
            else:
                table.clear()
                for run_id, row in cells.items():
                    table.add_row(*row, key=run_id)
                if self.selected in cells:
                    table.move_cursor(row=order.index(self.selected), animate=False)
        self._shown_cells = cells
        label = COLUMNS[self.sort_column][0]
        marked = f"{len(self.marked)} selected · v compare · " if self.marked else "space selects · "
        table.border_subtitle = f"{marked}sorted by {label} {'↓' if self.sort_reverse else '↑'} · o order · O reverse"
        if order and self.selected not in cells:  # first fill, or the selected run is gone
            self._select(order[min(table.cursor_row, len(order) - 1)])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key and event.row_key.value:
            self._select(event.row_key.value)

    def _select(self, run_id: str) -> None:
        if run_id != self.selected:
            self.selected = run_id
            self.load_detail(run_id)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        index = event.column_index
        self.sort_reverse = not self.sort_reverse if index == self.sort_column else COLUMNS[index][1] in NEWEST_FIRST
        self.sort_column = index
        self._fill_table()

    # ------------------------------------------------------------------ detail

    @work(thread=True, exclusive=True, group="detail")
    def load_detail(self, run_id: str) -> None:
        summary = self.summaries.get(run_id)
        if summary is None:
            return
        try:
            detail = self._details.read(run_id, summary)
        except Exception as exc:  # noqa: BLE001 - a damaged run must not end the app (nor a run it trains)
            show_from_worker(self, self._show_detail_error, run_id, summary, f"{type(exc).__name__}: {exc}")
            return
        if not get_current_worker().is_cancelled:  # a newer read of this run may already be shown
            show_from_worker(self, self._show_detail, run_id, summary, detail)

    @property
    def detail_view(self) -> RunDetailView:
        return self.query_one(RunDetailView)

    @property
    def detail_config(self) -> str:
        """The config text shown for the selected run."""
        return self.detail_view.config_text

    @property
    def detail_error(self) -> str:
        """Why the selected run's detail could not be read ("" when it was)."""
        return self.detail_view.error

    def _show_detail(self, run_id: str, summary: RunSummary, detail: RunDetail) -> None:
        if run_id == self.selected:
            self.detail_view.show(summary, detail.view, detail.config, detail.evaluation)

    def redraw_charts_now(self) -> None:
        self.detail_view.redraw_charts_now()

    def _show_detail_error(self, run_id: str, summary: RunSummary, error: str) -> None:
        if run_id == self.selected:
            self.detail_view.show_error(summary, run_id, error)

    # ------------------------------------------------------------------ keys

    def action_sort(self) -> None:
        self.sort_column = (self.sort_column + 1) % len(COLUMNS)
        self.sort_reverse = COLUMNS[self.sort_column][1] in NEWEST_FIRST
        self._fill_table()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._fill_table()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_quit(self) -> None:
        self.post_message(self.QuitRequested())

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_mark(self) -> None:
        """space: select the highlighted run for a comparison, or leave it out again."""
        run_id = self.selected
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        elif len(self.marked) >= MAX_RUNS:
            self.notify(f"a comparison shows at most {MAX_RUNS} runs", severity="warning")
            return
        else:
            self.marked.append(run_id)
        self._fill_table()

    def action_compare(self) -> None:
        marked = [run_id for run_id in self.marked if run_id in self.summaries]
        if len(marked) < 2:
            self.notify("select two runs or more with space, then v", severity="warning")
            return
        self.post_message(CompareRuns([Path(self.summaries[run_id].path) for run_id in marked]))

    def action_samples(self) -> None:
        summary = self.summaries.get(self.selected or "")
        if summary is not None:
            self.post_message(ShowSamples(Path(summary.path), summary.id))

    def action_imagine(self) -> None:
        summary = self.summaries.get(self.selected or "")
        if summary is not None:
            self.post_message(ShowRollout(Path(summary.path), summary.id))

    def action_resume(self) -> None:
        summary = self.summaries.get(self.selected or "")
        if summary is None:
            return
        if not summary.resumable:
            why = (
                "it is still running"
                if summary.status == RUNNING
                else "it has no readable checkpoint"
                if not summary.latest_checkpoint
                else f"its status is {summary.status}"
            )
            self.notify(f"run {summary.id} cannot be resumed: {why}", severity="warning")
            return
        self.post_message(self.ResumeRequested(summary.id))

    def action_delete(self) -> None:
        summary = self.summaries.get(self.selected or "")
        if summary is None:
            return
        if summary.status == RUNNING or summary.id == self.current_run:
            self.notify(f"run {summary.id} is training: stop it before deleting it", severity="warning")
            return
        question = (
            f"Delete run {summary.id}?\n{summary.step}/{summary.max_steps} steps, status {summary.status}."
            f"\nIts folder {summary.path} is removed, checkpoints included."
        )
        self.app.push_screen(
            ConfirmScreen(question, [("delete", "Delete", "y"), ("cancel", "Cancel", "n")]),
            lambda answer: self._delete(summary, answer),
        )

    def _delete(self, summary: RunSummary, answer: str | None) -> None:
        if answer != "delete":
            return
        try:
            delete_run(RunFolder(Path(summary.path)))
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.notify(f"deleted run {summary.id}")
        self._details.forget(summary.id)
        self.selected = None
        self.refresh_runs()
