"""`hwm-tui train --headless`: one Rich progress line, warnings in colour.

The trainer runs in a background thread, as under the dashboard; this thread only
reads events and handles signals (signals.py, as the dashboard does). SIGINT, SIGTERM
and SIGHUP (the SSH session gone) all checkpoint at the next step boundary, mark the
run interrupted and exit; a second signal leaves at once, the last checkpoint being
the resume point.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import time
from functools import partial

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from hwm_core.events.run_state import RunProgress, RunState, compile_message
from hwm_core.events.types import (
    CheckpointEvent,
    CheckpointFailedEvent,
    CompileEvent,
    EvalEvent,
    StartEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)
from hwm_core.figures import format_bytes, format_duration, format_rate
from hwm_core.runs.inbox import STOP
from hwm_core.status import COMPILING, COMPLETED, DIVERGED, INTERRUPTED, PAUSED, RUNNING, exit_code
from hwm_core.training.runner import TrainingRunner
from hwm_core.training.session import TrainingSession

from .signals import StopSignals
from .style import ON_TRACK_STYLES, WARNING_STYLES

PLAIN_LOG_INTERVAL_S = 10.0  # without a terminal (a log file), one line this often


def progress_line(p: RunProgress) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        Text(f"step {p.step}/{p.max_steps}", style="bold"),
        ProgressBar(total=max(p.max_steps, 1), completed=p.step, width=20),
        Text(f"loss {p.loss:.4f}" if math.isfinite(p.loss) else "loss --"),
        Text(f"lr {p.lr:.2e}" if math.isfinite(p.lr) else "lr --"),
        Text(f"grad {_norm(p.grad_norm_pre_clip)}→{_norm(p.grad_norm_post_clip)}"),
        Text(f"{format_rate(p.tokens_per_s)} tok/s"),
        Text(_gpu(p)),
        Text(f"ETA {format_duration(p.eta_s)}"),
        Text(
            p.on_track.word if p.on_track is not None else "",
            style=ON_TRACK_STYLES[p.on_track.word] if p.on_track is not None else "",
        ),
        Text("" if p.state == RUNNING else p.state, style="yellow"),
    )
    return grid


def plain_line(p: RunProgress) -> str:
    return (
        f"step {p.step}/{p.max_steps} loss {p.loss:.4f} lr {p.lr:.2e} "
        f"grad {_norm(p.grad_norm_pre_clip)}->{_norm(p.grad_norm_post_clip)} "
        f"{format_rate(p.tokens_per_s)} tok/s mem {format_bytes(p.memory_bytes)} "
        + (f"{_gpu(p)} " if p.gpu is not None else "")
        + f"ETA {format_duration(p.eta_s)}"
        + (f" {p.on_track.word}" if p.on_track is not None else "")
    )


def _gpu(p: RunProgress) -> str:
    """The GPUs' mean utilisation and the fullest one's memory, when NVML reads them."""
    if p.gpu is None or not p.gpu.utilization:
        return ""
    util = sum(p.gpu.utilization) / len(p.gpu.utilization)
    return f"gpu {util:.0f}% {max(p.gpu.memory_used) / 2**30:.1f}GiB"


def _norm(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "nan"


def _stop(runner: TrainingRunner, console: Console, signum: int) -> None:
    """A first signal: the run checkpoints at the end of this step and ends interrupted."""
    runner.send(STOP)
    if signum == signal.SIGHUP:
        # The terminal is gone: writing to it would fail and stop us before the checkpoint.
        silence(console)
        return
    name = signal.Signals(signum).name
    console.print(
        f"[yellow]{name}: checkpointing at the end of this step, then exiting "
        "(again to exit at once, from the last checkpoint)[/]"
    )


def silence(console: Console) -> None:
    console.file = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def run_headless(session: TrainingSession, console: Console | None = None) -> int:
    """Train to the end; returns the process exit code."""
    console = console or Console(stderr=False)
    quiet = not session.dist.is_main
    runner = TrainingRunner(session)
    if not quiet:
        for notice in session.notices:
            console.print(f"[cyan]{escape(notice)}[/]")
        if session.folder is not None:
            console.print(
                f"run [bold]{escape(session.folder.id)}[/] → {escape(str(session.folder.path))}  "
                f"(follow it with: hwm-tui watch {session.folder.id})"
            )
    signals = StopSignals(partial(_stop, runner, console))
    run = RunState(curves=False)
    printed_step = 0
    with signals.installed():
        runner.start()
        try:
            printed_step = _follow(runner, run, console, quiet)
        except OSError:
            # stdout went away (closed pipe, hung-up terminal): keep training, silently.
            silence(console)
            _follow(runner, run, console, quiet=True)
    if runner.error is not None and not isinstance(runner.error, KeyboardInterrupt):
        raise runner.error
    status = runner.status
    if not quiet:
        try:
            if not console.is_terminal and run.progress.step != printed_step:
                console.print(plain_line(run.progress))
            _print_outcome(console, status, run, session)
        except OSError:
            pass
    return exit_code(status, signals.received)


def _follow(runner: TrainingRunner, run: RunState, console: Console, quiet: bool) -> int:
    """Show events until the trainer thread has ended and every event is read;
    returns the step of the last progress line printed without a terminal."""
    printed = 0
    if quiet:
        while not runner.join(0.5):
            _drain(runner, run)
        _drain(runner, run)
    elif console.is_terminal:
        with Live(progress_line(run.progress), console=console, refresh_per_second=4) as live:
            while True:
                alive = not runner.join(0.0)
                _consume(runner, run, console, timeout=0.25)
                live.update(progress_line(run.progress))
                if not alive and runner.events.empty():
                    break
    else:
        next_line = 0.0
        while True:
            alive = not runner.join(0.0)
            _consume(runner, run, console, timeout=0.5)
            if run.progress.step and time.monotonic() >= next_line:
                console.print(plain_line(run.progress))
                printed = run.progress.step
                next_line = time.monotonic() + PLAIN_LOG_INTERVAL_S
            if not alive and runner.events.empty():
                break
    return printed


def _drain(runner: TrainingRunner, run: RunState) -> None:
    while True:
        try:
            run.add(runner.events.get_nowait())
        except queue.Empty:
            return


def _consume(runner: TrainingRunner, run: RunState, console: Console, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            event = runner.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return
        before = run.progress.on_track
        run.add(event)
        verdict = run.progress.on_track
        if isinstance(event, StepEvent) and verdict is not None and verdict is not before:
            console.print(Text(verdict.describe(), style=ON_TRACK_STYLES[verdict.word]))
        if isinstance(event, StartEvent) and run.on_track.band is not None:
            console.print(f"[dim]a healthy {escape(event.preset)} run: {escape(run.on_track.band.describe())}[/]")
        if isinstance(event, WarningEvent):
            style = WARNING_STYLES.get(event.kind, "red")
            console.print(
                Text(f"warning step {event.step} [{event.kind}] {event.message} (value {event.value:.3g})", style=style)
            )
        elif isinstance(event, EvalEvent):
            console.print(
                f"[green]eval step {event.step}: val loss {event.val_loss:.4f}, token acc {event.val_token_acc:.2%}[/]"
            )
        elif isinstance(event, CheckpointEvent):
            console.print(
                f"[blue]checkpoint step {event.step} → {escape(event.path)} "
                f"({format_bytes(event.bytes)}, {event.seconds:.1f}s)[/]"
            )
        elif isinstance(event, CheckpointFailedEvent):
            console.print(f"[red]checkpoint at step {event.step} failed: {escape(event.error)}[/]")
        elif isinstance(event, CompileEvent):
            console.print(f"[{'cyan' if event.ok else 'yellow'}]{escape(compile_message(event))}[/]")
        elif isinstance(event, StateEvent) and event.state == COMPILING:
            console.print(
                f"[cyan]compiling the step (train.compile = {escape(run.progress.compile)}): "
                "the first step takes a while[/]"
            )
        elif isinstance(event, StateEvent) and event.state == PAUSED:
            console.print("[yellow]paused (resume from `hwm-tui watch` with p)[/]")
        if isinstance(event, StepEvent) and time.monotonic() >= deadline:
            return


def _print_outcome(console: Console, status: str | None, state: RunState, session: TrainingSession) -> None:
    run = session.folder.id if session.folder else ""
    p, val_loss = state.progress, state.totals.last_val_loss
    if status == COMPLETED:
        console.print(
            f"[green]run {run} completed: {p.step} steps, loss {p.loss:.4f}"
            + (f", val loss {val_loss:.4f}" if val_loss is not None else "")
            + "[/]"
        )
    elif status == INTERRUPTED:
        where = f"checkpoint at step {p.last_checkpoint_step}" if p.last_checkpoint_step else "its last checkpoint"
        console.print(
            f"[yellow]run {run} interrupted at step {p.step}; resume from {where} with: hwm-tui train --resume {run}[/]"
        )
    elif status == DIVERGED:
        console.print(f"[bold red]run {run} diverged: {escape(p.message)}[/]")
    else:
        console.print(f"[red]run {run} failed at step {p.step}: {escape(p.message or 'see metrics.jsonl')}[/]")
