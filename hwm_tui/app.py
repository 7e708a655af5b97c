"""The Textual app: wires a run link to the dashboard, the history screen, signals.

Screens tell the app what they need with messages (leave, show the history,
resume a run); the app answers by pushing screens, or by calling the dashboard's
public methods: attributes and calls go down, messages come up.

Whatever ends the app (q, a signal, a crash), `run_dashboard` makes sure the
trainer thread is told to stop and has checkpointed before the process exits.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

# textual-image asks the terminal what it can draw (pixels, or half blocks) when it is
# imported, which must happen before the app takes the terminal over.
import textual_image.widget  # noqa: F401 - imported for that side effect
from textual import work
from textual.app import App
from textual.binding import Binding

from hwm_core.errors import UserError
from hwm_core.experiments.sweep import Step
from hwm_core.runs.folder import default_runs_dir
from hwm_core.runs.inbox import STOP
from hwm_core.status import DIVERGED, FAILED, INTERRUPTED, exit_code
from hwm_core.training.runner import TrainingRunner
from hwm_core.training.session import TrainingSession, TrainRequest, prepare

from .link import LocalLink, RunLink
from .messages import CompareRuns, ShowRollout, ShowSamples
from .screens.compare_screen import CompareScreen
from .screens.history_screen import HistoryScreen
from .screens.rollout_screen import RolloutScreen
from .screens.samples_screen import SamplesScreen
from .screens.train_screen import TrainScreen
from .signals import STOP_SIGNALS, StopSignals
from .sweep_runs import SweepDriver, prepare_step


class HwmApp(App):
    TITLE = "hwm-tui"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        *,
        link: RunLink | None = None,
        runs_dir: Path,
        watching: bool = False,
        clock: Callable[[], float] = time.time,
        notices: list[str] | None = None,
        sweep: SweepDriver | None = None,
    ):
        super().__init__()
        self.sweep = sweep
        self.notices = list(notices or [])
        self.link = link
        self.runs_dir = Path(runs_dir)
        self.watching = watching
        self.clock = clock
        self.runner: TrainingRunner | None = None
        self.signals = StopSignals(self._stop_on_signal)
        self.dashboard: TrainScreen | None = None  # the run shown live, if any

    def on_mount(self) -> None:
        if self.link is not None:
            self._show_dashboard(self.link)
        else:
            self.push_screen(HistoryScreen(self.runs_dir))
        for notice in self.notices:
            self.notify(notice, timeout=10)
        self._install_signal_handlers()
        # torch, textual and numpy leave ~10^6 long-lived objects that every full GC
        # pass would walk (~100 ms, a visible stall); move them out of the collector's way.
        gc.freeze()

    def _install_signal_handlers(self) -> None:
        # While the app runs, each signal only asks for the stop again: the app leaves and
        # gives the terminal back before another one may exit at once (_finish_training).
        try:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self.signals.stop_now, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass

    def _stop_on_signal(self, signum: int) -> None:
        # The SSH session may be gone: leave the screen at once; run_dashboard then
        # has the trainer checkpoint and mark the run interrupted.
        if self.link is not None and not self.watching:
            self.link.send(STOP)
        self.exit("signal")

    def action_request_quit(self) -> None:
        """Ctrl-C, or q on the history screen: a run shown live is asked about first."""
        dashboard = self.dashboard
        if dashboard is None or dashboard not in self.screen_stack:
            self.exit("quit")
            return
        while self.screen is not dashboard:
            self.pop_screen()
        dashboard.action_quit_run()

    def _show_dashboard(self, link: RunLink) -> None:
        sweep = self.sweep
        self.dashboard = TrainScreen(
            link,
            clock=self.clock,
            watching=self.watching,
            sweep_label=sweep.label if sweep else "",
            overlays=sweep.overlays() if sweep else None,
        )
        self.push_screen(self.dashboard)

    # ------------------------------------------------------------------ what screens ask for

    def on_train_screen_leave(self, message: TrainScreen.Leave) -> None:
        self.exit(message.result)

    def on_train_screen_run_ended(self, message: TrainScreen.RunEnded) -> None:
        """A sweep goes on with its next run at once, unless the sweep was stopped."""
        sweep = self.sweep
        if sweep is None or message.dashboard is not self.dashboard or self.signals.received:
            return
        sweep.finished(message.state)
        if message.dashboard.quitting:
            return  # "stop the sweep": the app leaves once the run has stopped
        step = sweep.next()
        if step is None:
            self.notify(sweep.summary(), title="Sweep done", timeout=30)
            return
        self.notify(
            f"next: run {step.point.index + 1} of {len(sweep.sweep.points)} ({sweep.values(step)})…",
            title=f"sweep {sweep.sweep.id}",
            timeout=5,
        )
        self._prepare_sweep_step(step)

    @work(thread=True, exclusive=True, group="resume")
    def _prepare_sweep_step(self, step: Step) -> None:
        sweep = self.sweep
        assert sweep is not None, "only a sweep's dashboard prepares its next step"
        try:
            session = prepare_step(sweep.sweep, step)
        except (UserError, OSError) as exc:
            sweep.finished(FAILED)
            message = str(exc) if isinstance(exc, UserError) else f"{exc.strerror or exc}"
            self.call_from_thread(
                self.notify, f"run {step.point.run_id} cannot start: {message}", severity="error", timeout=15
            )
            nxt = sweep.next()
            if nxt is not None:
                self._prepare_sweep_step(nxt)
            return
        self.call_from_thread(self._show_training, LocalLink.start(session))

    def on_train_screen_history_requested(self, message: TrainScreen.HistoryRequested) -> None:
        self.push_screen(HistoryScreen(self.runs_dir, current_run=message.current_run))

    def on_history_screen_quit_requested(self, message: HistoryScreen.QuitRequested) -> None:
        self.action_request_quit()

    def on_history_screen_resume_requested(self, message: HistoryScreen.ResumeRequested) -> None:
        self.resume_run(message.run_id)

    def on_compare_runs(self, message: CompareRuns) -> None:
        self.push_screen(CompareScreen(message.run_dirs))

    def on_show_samples(self, message: ShowSamples) -> None:
        self.push_screen(SamplesScreen(message.run_dir, run_id=message.run_id))

    def on_show_rollout(self, message: ShowRollout) -> None:
        self.push_screen(RolloutScreen(message.run_dir, run_id=message.run_id))

    # ------------------------------------------------------------------ resume from history

    def resume_run(self, run_id: str) -> None:
        if self.link is not None and self.link.alive:
            self.notify(
                "a run is training in this window: quit it first, or resume from another terminal "
                f"with hwm-tui train --resume {run_id}",
                severity="warning",
                timeout=8,
            )
            return
        self.notify(f"resuming run {run_id}…", timeout=3)
        self._prepare_resume(run_id)

    @work(thread=True, exclusive=True, group="resume")
    def _prepare_resume(self, run_id: str) -> None:
        try:
            session = prepare(TrainRequest(resume=run_id, runs_dir=str(self.runs_dir)))
        except (UserError, OSError) as exc:  # OSError: the run lock or folder (permissions, disk)
            message = str(exc) if isinstance(exc, UserError) else f"run {run_id}: {exc.strerror or exc}"
            self.call_from_thread(self.notify, message, title="Cannot resume", severity="error", timeout=10)
            return
        self.call_from_thread(self._show_training, LocalLink.start(session))

    def _show_training(self, link: LocalLink) -> None:
        self.runner = link.runner
        self.link = link
        self.watching = False
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self._show_dashboard(link)


def _say(text: str, *, error: bool = False) -> None:
    """Print after the app is gone; the terminal may be gone too (SSH dropped)."""
    try:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
    except OSError:
        pass


def _finish_training(app: HwmApp) -> int:
    """After the app is gone: the trainer must stop cleanly and checkpoint. Nothing
    here may fail before the trainer has finished: not a print to a dead terminal,
    not one more signal (a second one exits at once, from the last checkpoint)."""
    runner, signalled = app.runner, app.signals.received
    if runner is None:
        return 128 + signalled if signalled else 0
    if runner.is_alive():
        runner.send(STOP)
        app.signals.stopping = True  # by q or a signal: from now on a signal leaves at once
        with app.signals.installed(hangup=False):
            runner.join()
    if runner.error is not None and not isinstance(runner.error, KeyboardInterrupt):
        raise runner.error
    status = runner.status or FAILED
    run_id = runner.run_id
    if status == INTERRUPTED:
        _say(_interrupted_message(run_id, runner.session.state.step, runner.trainer.last_checkpoint_step))
    elif status in (FAILED, DIVERGED):
        _say(f"run {run_id} {status}: {runner.trainer.error or 'see its metrics.jsonl'}", error=True)
    else:
        _say(f"run {run_id} {status}: {runner.session.state.step} steps")
    return exit_code(status, signalled)


def _interrupted_message(run_id: str, step: int, checkpoint_step: int | None) -> str:
    """Where a resume starts: the last checkpoint that was written, which is not the
    step reached when the final save failed (disk full)."""
    if checkpoint_step is None:
        return f"run {run_id} interrupted at step {step} with no checkpoint saved: it cannot be resumed"
    if checkpoint_step != step:
        return (
            f"run {run_id} interrupted at step {step}, but its last checkpoint is step {checkpoint_step} "
            f"(the final save failed); continue from step {checkpoint_step} with: hwm-tui train --resume {run_id}"
        )
    return f"run {run_id} interrupted at step {step}; continue with: hwm-tui train --resume {run_id}"


def _run_app(app: HwmApp) -> int:
    # The UI thread keeps its normal priority: lowered, a chart drawing on a CPU busy with
    # training holds keys back, and a thread preempted while it holds the GIL stalls the
    # trainer's thread as well.
    try:
        app.run()
    finally:
        code = _finish_training(app)
    return code


def run_dashboard(session: TrainingSession) -> int:
    link = LocalLink.start(session)
    runs_dir = session.folder.path.parent if session.folder else Path(".")
    app = HwmApp(link=link, runs_dir=runs_dir, notices=session.notices)
    app.runner = link.runner
    return _run_app(app)


def run_sweep_dashboard(sweep) -> int:
    """One dashboard for the whole sweep: each run live in turn, the earlier ones drawn under it."""
    from .sweep_runs import sweep_exit_code

    driver = SweepDriver(sweep)
    step = driver.next()
    if step is None:
        _say(driver.summary())
        return 0
    session = prepare_step(sweep, step)  # a first run that cannot start is one line, before the screen opens
    link = LocalLink.start(session)
    app = HwmApp(link=link, runs_dir=Path(sweep.runs_dir), notices=session.notices, sweep=driver)
    app.runner = link.runner
    code = _run_app(app)
    if app.runner is not None and app.runner.status:
        driver.record_last(app.runner.status)
    if code >= 128:
        _say(f"sweep {sweep.id} stopped; continue it with: hwm-tui sweep --resume {sweep.id}")
        return code
    if driver.stopped_early:
        _say(f"sweep {sweep.id} stopped; continue it with: hwm-tui sweep --resume {sweep.id}")
    else:
        _say(driver.summary())
    return sweep_exit_code(driver.statuses, None)


def run_history_app(runs_dir: Path | None) -> int:
    return _run_app(HwmApp(runs_dir=default_runs_dir(runs_dir)))


def run_watch(run: str | None, runs_dir: Path | None) -> int:
    from .watch_link import open_watch_link

    link = open_watch_link(run, default_runs_dir(runs_dir))
    try:
        # a run resumed from this window's history (r) trains here and is stopped like one
        return _run_app(HwmApp(link=link, runs_dir=default_runs_dir(runs_dir), watching=True))
    finally:
        link.close()
