"""The history screen's lower half: the selected run's curves, whether it was on track,
its latest evaluation,
its GPUs and its config, or why it cannot be shown."""

from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane

from hwm_core.events.run_state import RunState
from hwm_core.predictions.evaluation_store import EvaluationHeadline
from hwm_core.runs.history import RunSummary

from .chart_settings import ChartSettings
from .evaluation_line import evaluation_line
from .grad_chart import GradChart
from .loss_chart import LossChart
from .lr_chart import LrChart
from .on_track_text import on_track_text


class RunDetailView(Vertical):
    DEFAULT_CSS = """
    RunDetailView #curves { layout: grid; grid-size: 3 1; height: 1fr; }
    RunDetailView #empty { padding: 1 2; color: $text-muted; }
    RunDetailView #detail-error { display: none; padding: 0 1; color: $error; }
    RunDetailView #detail-error.-shown { display: block; }
    RunDetailView #gpu-line { display: none; padding: 0 1; color: $text-muted; }
    RunDetailView #gpu-line.-shown { display: block; }
    RunDetailView #track-line { display: none; padding: 0 1; }
    RunDetailView #track-line.-shown { display: block; }
    RunDetailView #eval-line { display: none; padding: 0 1; }
    RunDetailView #eval-line.-shown { display: block; }
    RunDetailView #config-scroll { height: 1fr; }
    """

    def __init__(self, *, settings: ChartSettings, id: str | None = None):
        super().__init__(id=id)
        self.settings = settings
        self.config_text = ""  # the config text shown for the selected run
        self.error = ""  # why the selected run's detail could not be read

    def compose(self) -> ComposeResult:
        yield Static("", id="empty")
        yield Static("", id="detail-error")
        yield Static("", id="track-line")
        yield Static("", id="eval-line")
        yield Static("", id="gpu-line")
        with TabbedContent(id="tabs"):
            with TabPane("Curves", id="tab-curves"), Container(id="curves"):
                yield LossChart(id="h-loss", settings=self.settings)
                yield LrChart(id="h-lr", settings=self.settings)
                yield GradChart(id="h-grad", settings=self.settings)
            with TabPane("Config", id="tab-config"), VerticalScroll(id="config-scroll"):
                yield Static("", id="config")

    def show_no_runs(self, message: str | None) -> None:
        """`message` in place of the tabs while there is no run to show; None: the tabs."""
        empty = self.query_one("#empty", Static)
        tabs = self.query_one(TabbedContent)
        if message is not None:
            empty.update(message)
        empty.display, tabs.display = message is not None, message is None

    def show(
        self, summary: RunSummary, view: RunState, config: str, evaluation: EvaluationHeadline | None = None
    ) -> None:
        for chart in self._charts():
            chart.show(view)
        self._show_error("")
        self._show_on_track(view)
        self._show_evaluation(evaluation)
        self._show_gpu(view)
        self._show_config(summary, config)

    def show_error(self, summary: RunSummary, run_id: str, error: str) -> None:
        empty = RunState()
        for chart in self._charts():
            chart.show(empty)
        self._show_error(f"run {run_id} cannot be shown: {error}")
        self._show_evaluation(None)
        self._show_on_track(empty)
        self._show_gpu(empty)
        self._show_config(summary, f"# cannot be read: {error}")

    def redraw_charts_now(self) -> None:
        for chart in self._charts():
            if chart.view is not None:
                chart.show(chart.view, force=True)

    def _charts(self) -> tuple[LossChart, LrChart, GradChart]:
        return (
            self.query_one("#h-loss", LossChart),
            self.query_one("#h-lr", LrChart),
            self.query_one("#h-grad", GradChart),
        )

    def _show_on_track(self, view: RunState) -> None:
        widget = self.query_one("#track-line", Static)
        widget.update(on_track_text(view))
        widget.set_class(view.on_track.band is not None, "-shown")

    def _show_evaluation(self, evaluation: EvaluationHeadline | None) -> None:
        widget = self.query_one("#eval-line", Static)
        widget.update(evaluation_line(evaluation) if evaluation is not None else "")
        widget.set_class(evaluation is not None, "-shown")

    def _show_gpu(self, view: RunState) -> None:
        widget = self.query_one("#gpu-line", Static)
        widget.update(gpu_summary(view) or "")
        widget.set_class(view.gpu.samples > 0, "-shown")

    def _show_error(self, error: str) -> None:
        self.error = error
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
        if text != self.config_text:  # an unchanged config keeps its scroll position
            self.config_text = text
            self.query_one("#config", Static).update(Syntax(text, "toml", theme="ansi_dark", word_wrap=True))


def gpu_summary(view: RunState) -> str | None:
    """The run's GPUs over its whole length, in one line; None if NVML never read them."""
    g = view.gpu
    if not g.samples:
        return None
    return (
        f"{g.gpus} GPU{'s' if g.gpus > 1 else ''}: utilisation {g.mean_utilization:.0f}% on average · memory "
        f"up to {g.memory_used_max / 2**30:.1f} of {g.memory_total / 2**30:.0f} GiB · {g.mean_power_w:.0f} W "
        f"on average · up to {g.temperature_max_c:.0f}°C ({g.samples} readings)"
    )
