"""History: every run in the runs dir, sortable; the selected run's curves and config.

Reads only the run folders (through hwm_core.run_history), so it works during
training, with no run at all, and with a broken run among good ones. A run's
metrics are read in a worker thread: a 60,000-step file must not freeze the keys.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.worker import get_current_worker
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from hwm_core.experiments.comparison import MAX_RUNS
from hwm_core.errors import UserError
from hwm_core.events.log import read_events
from hwm_core.figures import format_duration
from hwm_core.runs.folder import RunFolder, delete_run
from hwm_core.runs.history import RunSummary, list_runs
from hwm_core.events.run_state import RunState
from ..messages import CompareRuns, ShowSamples
from ..style import STATUS_STYLES
from ..widgets.chart_settings import CHART_BINDINGS, ChartControls, ChartSettings
from ..widgets.grad_chart import GradChart
from ..widgets.loss_chart import LossChart
from ..widgets.lr_chart import LrChart
from .confirm_screen import ConfirmScreen
from .from_worker import show_from_worker
from .help_screen import HelpScreen

REFRESH_S = 2.0
DETAILS_KEPT = 8  # runs whose parsed metrics stay in memory (a 60,000-step run is ~10 MB)

# (column label, key, sort value); status early, so it shows in 80 columns
COLUMNS = [
    ("id", "id", lambda s: s.id),
    ("status", "status", lambda s: s.status),
    ("preset", "preset", lambda s: s.preset),
    ("started", "started", lambda s: s.started or 0.0),
    ("duration", "duration", lambda s: s.duration_s or 0.0),
    ("steps", "steps", lambda s: s.step),
    ("last val", "last_val", lambda s: _sortable(s.last_val_loss)),
    ("best val", "best_val", lambda s: _sortable(s.best_val_loss)),
    ("warn", "warnings", lambda s: s.warning_count),
]
NEWEST_FIRST = {"started", "duration", "steps", "warnings"}  # columns whose natural order is descending
SORT_DEFAULT = 3


def _sortable(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.inf


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if value is not None and math.isfinite(value) else "-"


def _started(value: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(value)) if value else "-"


@dataclass(frozen=True)
class _Detail:
    """What was read of one run: a refresh reads only what metrics.jsonl gained.
    Its view is never changed once made; a newer one starts from a copy."""

    file: tuple[int, int]    # (st_dev, st_ino): a resume replaces the file
    stamp: tuple[int, int]   # (st_size, st_mtime_ns)
    offset: int
    view: RunState
    config: str


def _row_cells(s: RunSummary, current_run: str | None, marked: bool = False) -> tuple:
    name = Text(s.id, style="bold" if s.id == current_run else "")
    if s.id == current_run:
        name.append(" ◀", style="bold cyan")
    if marked:
        name.stylize("reverse")
        name.append(" ●", style="bold magenta")
    return (name, Text(s.status, style=STATUS_STYLES.get(s.status, "")), s.preset, _started(s.started),
            format_duration(s.duration_s), f"{s.step}/{s.max_steps}", _loss(s.last_val_loss),
            _loss(s.best_val_loss), Text(str(s.warning_count), style="yellow" if s.warning_count else ""))


class HistoryScreen(ChartControls, Screen):
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
    HistoryScreen #curves { layout: grid; grid-size: 3 1; height: 1fr; }
    HistoryScreen #empty { padding: 1 2; color: $text-muted; }
    HistoryScreen #detail-error { display: none; padding: 0 1; color: $error; }
    HistoryScreen #detail-error.-shown { display: block; }
    HistoryScreen #gpu-line { display: none; padding: 0 1; color: $text-muted; }
    HistoryScreen #gpu-line.-shown { display: block; }
    HistoryScreen #config-scroll { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "help", "Help"),
        Binding("o", "sort", "Order"),
        Binding("O", "reverse", "Reverse", show=False),
        Binding("s", "samples", "Samples"),
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
        self.detail_config = ""  # the config text shown for the selected run
        self.detail_error = ""   # why the selected run's detail could not be read
        self._shown_cells: dict[str, tuple] = {}
        self._details: OrderedDict[str, _Detail] = OrderedDict()
        self._details_lock = threading.Lock()  # a superseded detail worker may still be finishing
        self.chart_settings = ChartSettings()
        self.marked: list[str] = []  # runs selected for a comparison, in the order selected

    def compose(self) -> ComposeResult:
        table = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        table.border_title = f"Runs in {self.runs_dir}"
        yield table
        with Vertical(id="detail"):
            yield Static("", id="empty")
            yield Static("", id="detail-error")
            yield Static("", id="gpu-line")
            with TabbedContent(id="tabs"):
                with TabPane("Curves", id="tab-curves"):
                    with Container(id="curves"):
                        yield LossChart(id="h-loss", settings=self.chart_settings)
                        yield LrChart(id="h-lr", settings=self.chart_settings)
                        yield GradChart(id="h-grad", settings=self.chart_settings)
                with TabPane("Config", id="tab-config"):
                    with VerticalScroll(id="config-scroll"):
                        yield Static("", id="config")
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
        empty = self.query_one("#empty", Static)
        tabs = self.query_one(TabbedContent)
        if not summaries:
            empty.update(f"No runs in {self.runs_dir} yet. Start one with: hwm-tui train --preset cpu")
            empty.display, tabs.display = True, False
        else:
            empty.display, tabs.display = False, True
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
        cells = {s.id: _row_cells(s, self.current_run, s.id in self.marked) for s in rows}
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
        self.sort_reverse = (not self.sort_reverse if index == self.sort_column
                             else COLUMNS[index][1] in NEWEST_FIRST)
        self.sort_column = index
        self._fill_table()

    # ------------------------------------------------------------------ detail

    @work(thread=True, exclusive=True, group="detail")
    def load_detail(self, run_id: str) -> None:
        summary = self.summaries.get(run_id)
        if summary is None:
            return
        try:
            detail = self._read_detail(run_id, summary)
        except Exception as exc:  # noqa: BLE001 - a damaged run must not end the app (nor a run it trains)
            show_from_worker(self, self._show_detail_error, run_id, summary, f"{type(exc).__name__}: {exc}")
            return
        if not get_current_worker().is_cancelled:  # a newer read of this run may already be shown
            show_from_worker(self, self._show_detail, run_id, summary, detail)

    def _read_detail(self, run_id: str, summary: RunSummary) -> _Detail:
        """The run's curves and config, reading only the part of metrics.jsonl not read before."""
        folder = RunFolder(Path(summary.path))
        try:
            st = folder.metrics.stat()
            file, stamp = (st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns)
        except OSError:
            file, stamp = (0, 0), (0, 0)
        with self._details_lock:
            cached = self._details.get(run_id)
        if cached is not None and cached.stamp == stamp:
            return cached
        if cached is not None and cached.file == file and cached.offset <= stamp[0]:
            view, offset, config = cached.view.copy(), cached.offset, cached.config
        else:
            view, offset, config = RunState(), 0, _read_config(folder)
        events, offset = read_events(folder.metrics, offset)
        view.add_all(events)
        if _file_of(folder.metrics) not in (None, file):
            return self._read_detail(run_id, summary)  # replaced while we read it (a resume): again
        if view.start is None and summary.max_steps:
            view.progress.max_steps = summary.max_steps
        detail = _Detail(file, stamp, offset, view, config)
        with self._details_lock:
            self._details[run_id] = detail
            self._details.move_to_end(run_id)
            while len(self._details) > DETAILS_KEPT:
                self._details.popitem(last=False)
        return detail

    def _show_detail(self, run_id: str, summary: RunSummary, detail: _Detail) -> None:
        if run_id != self.selected:
            return
        view = detail.view
        for chart in (self.query_one("#h-loss", LossChart), self.query_one("#h-lr", LrChart),
                      self.query_one("#h-grad", GradChart)):
            chart.show(view)
        self._show_error("")
        self._show_gpu(view)
        self._show_config(summary, detail.config)

    def redraw_charts_now(self) -> None:
        for chart in (self.query_one("#h-loss", LossChart), self.query_one("#h-lr", LrChart),
                      self.query_one("#h-grad", GradChart)):
            if chart.view is not None:
                chart.show(chart.view, force=True)

    def _show_detail_error(self, run_id: str, summary: RunSummary, error: str) -> None:
        if run_id != self.selected:
            return
        empty = RunState()
        for chart in (self.query_one("#h-loss", LossChart), self.query_one("#h-lr", LrChart),
                      self.query_one("#h-grad", GradChart)):
            chart.show(empty)
        self._show_error(f"run {run_id} cannot be shown: {error}")
        self._show_gpu(empty)
        self._show_config(summary, f"# cannot be read: {error}")

    def _show_gpu(self, view: RunState) -> None:
        widget = self.query_one("#gpu-line", Static)
        widget.update(gpu_summary(view) or "")
        widget.set_class(view.gpu.samples > 0, "-shown")

    def _show_error(self, error: str) -> None:
        self.detail_error = error
        widget = self.query_one("#detail-error", Static)
        widget.update(error)
        widget.set_class(bool(error), "-shown")

    def _show_config(self, summary: RunSummary, config: str) -> None:
        header = f"# run {summary.id} · {summary.status}"
        if summary.error:
            header += f"\n# {summary.error}"
        if summary.latest_checkpoint:
            header += f"\n# latest good checkpoint: {summary.latest_checkpoint}"
        text = header + "\n" + config
        if text != self.detail_config:  # an unchanged config keeps its scroll position
            self.detail_config = text
            self.query_one("#config", Static).update(Syntax(text, "toml", theme="ansi_dark", word_wrap=True))

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

    def action_resume(self) -> None:
        summary = self.summaries.get(self.selected or "")
        if summary is None:
            return
        if not summary.resumable:
            why = ("it is still running" if summary.status == "running"
                   else "it has no readable checkpoint" if not summary.latest_checkpoint
                   else f"its status is {summary.status}")
            self.notify(f"run {summary.id} cannot be resumed: {why}", severity="warning")
            return
        self.post_message(self.ResumeRequested(summary.id))

    def action_delete(self) -> None:
        summary = self.summaries.get(self.selected or "")
        if summary is None:
            return
        if summary.status == "running" or summary.id == self.current_run:
            self.notify(f"run {summary.id} is training: stop it before deleting it", severity="warning")
            return
        question = (f"Delete run {summary.id}?\n{summary.step}/{summary.max_steps} steps, status {summary.status}."
                    f"\nIts folder {summary.path} is removed, checkpoints included.")
        self.app.push_screen(ConfirmScreen(question, [("delete", "Delete", "y"), ("cancel", "Cancel", "n")]),
                             lambda answer: self._delete(summary, answer))

    def _delete(self, summary: RunSummary, answer: str | None) -> None:
        if answer != "delete":
            return
        try:
            delete_run(RunFolder(Path(summary.path)))
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.notify(f"deleted run {summary.id}")
        with self._details_lock:
            self._details.pop(summary.id, None)
        self.selected = None
        self.refresh_runs()


def gpu_summary(view: RunState) -> str | None:
    """The run's GPUs over its whole length, in one line; None if NVML never read them."""
    g = view.gpu
    if not g.samples:
        return None
    return (f"{g.gpus} GPU{'s' if g.gpus > 1 else ''}: utilisation {g.mean_utilization:.0f}% on average · memory "
            f"up to {g.memory_used_max / 2**30:.1f} of {g.memory_total / 2**30:.0f} GiB · {g.mean_power_w:.0f} W "
            f"on average · up to {g.temperature_max_c:.0f}°C ({g.samples} readings)")


def _file_of(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _read_config(folder: RunFolder) -> str:
    try:
        return folder.config_toml.read_text()
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8 (a damaged or binary file)
        return f"# config.toml cannot be read: {getattr(exc, 'strerror', None) or exc}"
