"""The live training dashboard: status, loss, learning rate, gradient norms, warnings.

Events are pulled from the link four times a second, but charts redraw at most
every two seconds, only when they have something new, and only once the UI thread
has averaged under 1.2 % of a core since they last drew (on big terminals, where
drawing costs more, that is less often; at least every 30 s): drawing is what
costs, and on a CPU box every millisecond the UI spends is taken from training.
Keys send commands; the trainer applies them at its next step boundary, and the
status says so ("pausing…") until it has.

Where the run stands (running, paused, finished) is the screen's `RunState`, the one
reducer of events; the screen itself keeps only what it adds to the status line (a
command awaiting its answer, a message, frozen): reactives, each of which redraws the
status line when it changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from functools import partial
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.message import Message
from textual.reactive import var
from textual.widgets import Footer

from hwm_core.events.run_state import RunState, compile_message
from hwm_core.events.types import CheckpointEvent, CheckpointFailedEvent, CompileEvent, StartEvent, StateEvent
from hwm_core.runs.inbox import CHECKPOINT, PAUSE, RESUME, STOP
from hwm_core.status import FAILED, PAUSED, RUNNING, is_final

from ..link import RunLink
from ..messages import ShowSamples
from ..style import FINAL_STATE_LABELS, STATE_LABELS
from ..widgets.chart_settings import CHART_BINDINGS, ChartControls, ChartSettings
from ..widgets.grad_chart import GradChart
from ..widgets.loss_chart import LossChart, Overlay
from ..widgets.lr_chart import LrChart
from ..widgets.status_bar import StatusBar
from ..widgets.summary_bar import SummaryBar
from ..widgets.warnings_panel import WarningsPanel
from .confirm_screen import ConfirmScreen
from .help_screen import HelpScreen

EVENT_POLL_S = 0.25  # keys answer at once; this is only how soon trainer news shows
CHART_REDRAW_S = 2.0  # at the most often
CHART_REDRAW_MAX_S = 30.0  # at the least often, whatever the drawing costs
CHART_STAGGER_S = 0.1  # between one chart's drawing and the next's
# The UI thread's share of one core, on average: on a CPU box every bit of it is taken
# from training (whose threads use every core), so big terminals redraw charts less often.
UI_CPU_SHARE = 0.012
_monotonic = time.monotonic  # names of their own, so a test can move these clocks alone
_thread_cpu = time.thread_time
STATUS_REDRAW_S = 1.0
MESSAGE_SHOWN_S = 30.0
NARROW_BELOW = 120  # columns; narrower terminals split the panels evenly


class Pending(Enum):
    """A command sent that the trainer has not answered yet (it does at a step boundary)."""

    PAUSE = "pausing…"
    RESUME = "resuming…"
    STOP = "stopping…"


class TrainScreen(ChartControls):
    DEFAULT_CSS = """
    TrainScreen { layout: vertical; }
    TrainScreen #panels {
        layout: grid;
        grid-size: 2 2;
        grid-columns: 3fr 2fr;
        grid-rows: 1fr 1fr;
        height: 1fr;
    }
    TrainScreen.-narrow #panels { grid-columns: 1fr 1fr; }
    """

    # The footer keeps this order; at 80 columns the chart keys at the end are cut (? lists them).
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("q", "quit_run", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("h", "history", "History"),
        Binding("s", "samples", "Samples"),
        Binding("f", "toggle_freeze", "Freeze"),
        *CHART_BINDINGS,
    ]

    # What the screen adds to the status line; setting one redraws it (init=False: nothing
    # is drawn before the screen is mounted).
    pending: var[Pending | None] = var(None, init=False)  # a command sent, until the trainer answers
    message: var[str] = var("", init=False, always_update=True)  # said again, it is news again
    frozen: var[bool] = var(False, init=False)  # f: nothing redraws by itself (keys still answer)

    class HistoryRequested(Message):
        """h: show the runs, this one marked."""

        def __init__(self, current_run: str | None):
            super().__init__()
            self.current_run = current_run

    class Leave(Message):
        """The app should exit; `result` says why (the run's final state, or "watching")."""

        def __init__(self, result: str):
            super().__init__()
            self.result = result

    class RunEnded(Message):
        """The run reached a final state (the app may start a sweep's next run)."""

        def __init__(self, state: str, dashboard: TrainScreen):
            super().__init__()
            self.state = state
            self.dashboard = dashboard

    def __init__(
        self,
        link: RunLink,
        *,
        clock: Callable[[], float] = time.time,
        watching: bool = False,
        sweep_label: str = "",
        overlays: list[Overlay] | None = None,
    ):
        super().__init__()
        self.link = link
        self.sweep_label = sweep_label  # "sweep X, run 2 of 3 (lr=5e-05)" when the run is a sweep's
        self.overlays = list(overlays or [])  # the sweep's other runs, drawn under this one's loss
        self.clock = clock
        self.watching = watching
        self.view = RunState()
        self.message_time = 0.0  # when `message` was said
        self.checkpoint_requested = False
        self.quitting = False
        self._charts_drawn_at = 0.0
        self._cpu_at_charts_drawn = 0.0
        self._charts_had_steps = False
        self.chart_settings = ChartSettings()
        self._generation = link.generation

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Container(id="panels"):
            yield LossChart(id="loss", settings=self.chart_settings, overlays=self.overlays)
            yield LrChart(id="lr", settings=self.chart_settings)
            yield GradChart(id="grad", settings=self.chart_settings)
            yield WarningsPanel(id="warnings")
        yield SummaryBar(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusBar).sweep_label = self.sweep_label
        self._pull()
        self._redraw_status()
        self._redraw_charts()
        self.set_interval(EVENT_POLL_S, self._pull)
        self.set_interval(CHART_REDRAW_S / 4, self._redraw_charts_when_due)
        self.set_interval(STATUS_REDRAW_S, self._tick_status)

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < NARROW_BELOW, "-narrow")

    # ------------------------------------------------------------------ events

    def _pull(self) -> None:
        generation = self.link.generation
        if generation != self._generation:  # the followed metrics were rewound (a resume): start over
            self._generation = generation
            self.view = RunState()
            self._charts_had_steps = False
            self.query_one(WarningsPanel).reset()
        was_alive = self.link.alive  # asked first: a trainer gone before the poll has said all it will
        events = self.link.poll()
        if events:
            self._fold(events)
        if not was_alive and not events and not self.watching and not self.view.progress.finished:
            self._died_silently()
        if self.quitting and not self.link.alive and not events:
            self.post_message(self.Leave(self.view.progress.state))

    def _fold(self, events: list) -> None:
        """Fold events into the run's state, then answer those that need more than a chart update."""
        self.view.add_all(events)
        news = False
        for event in events:
            news |= self._react(event)
        if not self.frozen:
            self.query_one(WarningsPanel).show(self.view)
        # Figures alone wait for the next status tick; news (a state, a start: often the
        # answer to a key) shows at once, frozen or not.
        if news:
            self._redraw_status()

    def _died_silently(self) -> None:
        """The trainer thread ended without a final state (it raised before it could say):
        show it failed, with its error when the link knows it, rather than "starting" forever."""
        error = self.link.error or "the trainer stopped without reporting why"
        self._fold([StateEvent(FAILED, self.view.progress.step, message=error, time=self.clock())])

    def _react(self, event) -> bool:
        """Handle what needs more than a chart update; True if the run's state that the
        status line shows changed (what the screen says redraws the line by itself)."""
        if isinstance(event, StateEvent):
            if (self.pending is Pending.PAUSE and event.state == PAUSED) or (
                self.pending is Pending.RESUME and event.state == RUNNING
            ):
                self.pending = None
            if is_final(event.state):
                self._finish(event)
            return True
        if isinstance(event, StartEvent):
            return True
        if isinstance(event, CheckpointEvent):
            self._say(f"✓ checkpoint step {event.step} saved: {event.path}")
            if self.checkpoint_requested:  # periodic checkpoints only update the status line
                self.checkpoint_requested = False
                self.notify(event.path, title=f"Checkpoint at step {event.step} saved", timeout=4)
        elif isinstance(event, CompileEvent):
            self._say(compile_message(event))
        elif isinstance(event, CheckpointFailedEvent):
            self._say(f"✗ checkpoint at step {event.step} failed: {event.error}")
            self.notify(event.error, title="Checkpoint failed", severity="error", timeout=8)
        return False

    def _finish(self, event: StateEvent) -> None:
        if self.frozen:
            self.action_toggle_freeze()  # the end of a run is always shown
        self.pending = None
        started = self.view.start.time if self.view.start else None
        elapsed = event.time - started if started else None
        self.query_one(SummaryBar).show(self.view, FINAL_STATE_LABELS[event.state], elapsed)
        self._redraw_charts(force=True)
        self.post_message(self.RunEnded(event.state, self))

    @property
    def state_label(self) -> str:
        """The state as the status bar words it."""
        if self.pending is not None:
            return self.pending.value
        state = self.view.progress.state
        if self.watching and not is_final(state) and not self.link.alive:
            return "not running"  # its trainer died without a word (kill -9, power cut)
        return STATE_LABELS.get(state, state)

    @property
    def finished(self) -> bool:
        return self.view.progress.finished or (not self.link.alive and not self.watching)

    # ------------------------------------------------------------------ drawing

    def _say(self, message: str) -> None:
        self.message_time = self.clock()
        self.message = message

    def _tick_status(self) -> None:
        if not self.frozen:
            self._redraw_status()

    def _redraw_status(self) -> None:
        now = self.clock()
        if self.message and not self.quitting and now - self.message_time > MESSAGE_SHOWN_S:
            self.set_reactive(TrainScreen.message, "")  # give the line back to the charts (being redrawn)
        self.query_one(StatusBar).show(self.view.progress, state=self.state_label, message=self.message, now=now)

    # The status line shows each of these: a change redraws it at once, frozen or not.
    watch_pending = watch_message = watch_frozen = _redraw_status

    def _redraw_charts_when_due(self) -> None:
        if self.frozen:
            return
        if not self._charts_had_steps and len(self.view.chart_curves.loss):
            self._redraw_charts()  # the first steps show at once, whatever starting up cost
            return
        elapsed = _monotonic() - self._charts_drawn_at
        if elapsed < CHART_REDRAW_S:
            return
        # All this thread did since the charts were last drawn (them, the status line,
        # keys, Textual's frames) must average under its share before they draw again.
        used = _thread_cpu() - self._cpu_at_charts_drawn
        if used <= UI_CPU_SHARE * elapsed or elapsed >= CHART_REDRAW_MAX_S:
            self._redraw_charts()

    def _redraw_charts(self, force: bool = False) -> None:
        self._charts_drawn_at, self._cpu_at_charts_drawn = _monotonic(), _thread_cpu()
        self._charts_had_steps = len(self.view.chart_curves.loss) > 0
        charts = (self.query_one(LossChart), self.query_one(LrChart), self.query_one(GradChart))
        charts[0].show(self.view, force=force)
        # One chart a frame: a key pressed meanwhile waits for one chart's drawing, not three.
        for n, chart in enumerate(charts[1:], start=1):
            self.set_timer(n * CHART_STAGGER_S, partial(chart.show, self.view, force=force))

    # ------------------------------------------------------------------ keys

    def action_toggle_pause(self) -> None:
        if self.finished:
            self.notify("the run has ended", severity="warning")
            return
        if self.view.progress.paused and self.pending is not Pending.RESUME or self.pending is Pending.PAUSE:
            self.link.send(RESUME)
            self.pending = Pending.RESUME
        else:
            self.link.send(PAUSE)
            self.pending = Pending.PAUSE

    def action_checkpoint(self) -> None:
        if self.finished:
            self.notify("the run has ended; its last checkpoint is kept", severity="warning")
            return
        self.link.send(CHECKPOINT)
        self.checkpoint_requested = True
        self._say("checkpoint requested: saved at the end of this step…")

    def action_quit_run(self) -> None:
        if self.finished:
            self.post_message(self.Leave(self.view.progress.state))
            return
        if self.quitting:
            return
        run = self.view.progress.run_id
        if self.watching:
            question = (
                f"Run {run} is trained by another process.\n"
                "Stop it (checkpoint, mark interrupted), or only close this window?"
            )
            answers = [("stop", "Stop the run", "y"), ("close", "Only close", "x"), ("cancel", "Cancel", "n")]
        elif self.sweep_label:
            question = (
                f"Stop run {run} of {self.sweep_label}?\nThe run is checkpointed at the end of this step "
                "and marked interrupted; stop only it (the next run of the sweep starts), or the whole "
                "sweep (hwm-tui sweep --resume continues it)."
            )
            answers = [("run", "Stop this run", "r"), ("stop", "Stop the sweep", "y"), ("cancel", "Cancel", "n")]
        else:
            question = (
                f"Quit training run {run}?\nIt is checkpointed at the end of this step and marked "
                f"interrupted; continue later with:\n  hwm-tui train --resume {run}"
            )
            answers = [("stop", "Quit", "y"), ("cancel", "Cancel", "n")]
        self.app.push_screen(ConfirmScreen(question, answers), self._quit_answer)

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "close":
            self.post_message(self.Leave("watching"))
        elif answer == "run":  # a sweep's run: it ends, and the app starts the next one
            self.pending = Pending.STOP
            self._say("stopping this run at the end of this step; the sweep goes on…")
            self.link.send(STOP)
        elif answer == "stop":
            self.quitting = True
            self.pending = Pending.STOP
            self._say("stopping: checkpoint at the end of this step, then exit…")
            self.link.send(STOP)

    def redraw_charts_now(self) -> None:
        self._redraw_charts(force=True)  # an answer to a key: now, frozen or not

    def action_toggle_freeze(self) -> None:
        """Stop (or restart) all drawing that is not an answer to a key: to read the
        screen at leisure, or to give the UI's CPU time to training. Training goes on."""
        self.frozen = not self.frozen
        if self.frozen:
            self._say(f"display frozen at step {self.view.progress.step}: f draws again (training goes on)")
        else:
            self.message = ""
            self.query_one(WarningsPanel).show(self.view)
            self._redraw_charts()  # an answer to a key: now, whatever the budget

    def action_history(self) -> None:
        self.post_message(self.HistoryRequested(self.view.progress.run_id or None))

    def action_samples(self) -> None:
        run_dir = self.link.run_dir or (Path(self.view.progress.run_dir) if self.view.progress.run_dir else None)
        self.post_message(ShowSamples(run_dir, self.view.progress.run_id))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())
