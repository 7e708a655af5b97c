"""Running a sweep's points one after another: headless, or under one dashboard.

The order is the grid's; each point is prepared only when its turn comes (its data
checked, its run folder made), so a sweep killed at any moment leaves runs that
list and a sweep that resumes. A point that ends diverged or failed does not stop
the sweep: the next one starts at once. A signal (Ctrl-C, SSH gone) stops the run
being trained, with its checkpoint, and the sweep with it.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from hwm_core.errors import UserError
from hwm_core.experiments.sweep import Step, Sweep, clear_unstarted, plan
from hwm_core.runs.folder import RunFolder
from hwm_core.status import COMPLETED, DIVERGED, FAILED, INTERRUPTED
from hwm_core.training.request import TrainRequest
from hwm_core.training.session import TrainingSession, prepare


def grid_table(sweep: Sweep, steps: list[Step]) -> Table:
    table = Table(
        "#",
        "run",
        *sweep.keys,
        "next",
        title=f"sweep {sweep.id}: {len(steps)} runs of preset "
        f"{sweep.preset}, in this order" + (f" (every run: {' '.join(sweep.base)})" if sweep.base else ""),
    )
    table.columns[1].no_wrap = True
    for step in steps:
        action = {"new": "train", "resume": f"resume ({step.why})", "skip": f"done ({step.why})"}[step.action]
        table.add_row(str(step.point.index + 1), step.point.run_id, *(step.point.values[k] for k in sweep.keys), action)
    return table


def prepare_step(sweep: Sweep, step: Step) -> TrainingSession:
    """The session of a point's turn: a new run under its name, or its run resumed."""
    if step.action == "resume":
        return prepare(TrainRequest(resume=step.point.run_id, runs_dir=sweep.runs_dir))
    clear_unstarted(sweep, step.point)
    return prepare(sweep.request(step.point))


def sweep_exit_code(statuses: list[str], signalled: int | None) -> int:
    if signalled:
        return 128 + signalled
    return 1 if any(s == FAILED for s in statuses) else 0


def run_sweep_headless(sweep: Sweep, console: Console) -> int:
    from .headless import run_headless

    statuses: list[str] = []
    for step in plan(sweep):
        if step.action == "skip":
            statuses.append(step.why)
            continue
        console.rule(
            f"sweep {sweep.id}: run {step.point.index + 1} of {len(sweep.points)} · "
            + " ".join(f"{k}={v}" for k, v in step.point.values.items())
        )
        try:
            session = prepare_step(sweep, step)
        except UserError as exc:  # this point cannot train (say, its data): the others still can
            console.print(f"[red]run {step.point.run_id} cannot start: {exc}[/]")
            statuses.append(FAILED)
            continue
        code = run_headless(session, console)
        status = str(session.meta.get("status")) if session.folder is None else _status(session.folder)
        statuses.append(status)
        if code >= 128:  # a signal: this run stopped with its checkpoint; the sweep stops too
            console.print(f"[yellow]sweep {sweep.id} stopped; continue it with: hwm-tui sweep --resume {sweep.id}[/]")
            return sweep_exit_code(statuses, code - 128)
    console.print(summary_line(sweep, statuses))
    return sweep_exit_code(statuses, None)


def _status(folder: RunFolder) -> str:
    try:
        return str(folder.read_meta().get("status"))
    except UserError:
        return FAILED


def summary_line(sweep: Sweep, statuses: list[str]) -> str:
    counts = {s: statuses.count(s) for s in (COMPLETED, DIVERGED, FAILED, INTERRUPTED) if statuses.count(s)}
    return (
        f"sweep {sweep.id} done: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + "; compare them in hwm-tui history (space to select, v) or: hwm-tui runs compare "
        + " ".join(p.run_id for p in sweep.points)
    )


class SweepDriver:
    """The sweep a dashboard trains: which point is training, what the others ended as,
    and their curves, drawn under the current run's."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        steps = plan(sweep)
        self.todo = [s for s in steps if s.action != "skip"]
        self.statuses: list[str] = [s.why for s in steps if s.action == "skip"]
        self.current: Step | None = None
        self._recorded = True

    def next(self) -> Step | None:
        self.current = self.todo.pop(0) if self.todo else None
        self._recorded = self.current is None
        return self.current

    def finished(self, state: str) -> None:
        if not self._recorded:
            self.statuses.append(state)
            self._recorded = True

    def record_last(self, status: str) -> None:
        self.finished(status)

    @property
    def stopped_early(self) -> bool:
        return bool(self.todo) or (self.current is not None and not self._recorded)

    def values(self, step: Step) -> str:
        return " ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in step.point.values.items())

    @property
    def label(self) -> str:
        if self.current is None:
            return f"sweep {self.sweep.id}"
        return (
            f"sweep {self.sweep.id}: {self.current.point.index + 1}/{len(self.sweep.points)} "
            f"{self.values(self.current)}"
        )

    def overlays(self) -> list:
        """The sweep's other runs that have trained (some or all of their steps)."""
        from hwm_core.events.log import read_events
        from hwm_core.events.run_state import RunState
        from hwm_core.runs.folder import RunFolder

        from .widgets.loss_chart import Overlay

        out = []
        for point in self.sweep.points:
            if self.current is not None and point.run_id == self.current.point.run_id:
                continue
            folder = RunFolder(Path(self.sweep.runs_dir) / point.run_id)
            events, _ = read_events(folder.metrics)
            if events:
                state = RunState()
                state.add_all(events)
                out.append(Overlay(" ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in point.values.items()), state))
        return out

    def summary(self) -> str:
        return summary_line(self.sweep, self.statuses)
