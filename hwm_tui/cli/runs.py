"""`hwm-tui runs`: the runs in a runs dir, for scripts: list, show, compare, export."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .console import console
from .options import RUNS_DIR_HELP
from .predictions import evaluation_table
from .user_errors import user_errors

if TYPE_CHECKING:
    from hwm_core.predictions.evaluation_store import EvaluationHeadline

runs_app = typer.Typer(no_args_is_help=True, help="Runs in the runs dir, for scripts.")


@runs_app.command("list")
@user_errors
def runs_list(
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every run: id, preset, status, steps, val loss, latest good checkpoint."""
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import list_runs

    summaries = list_runs(default_runs_dir(runs_dir))
    if as_json:
        print(json.dumps([s.to_json() for s in summaries], indent=1))
        return
    if not summaries:
        console.print(f"no runs in {default_runs_dir(runs_dir)}")
        return
    columns = [
        ("id", lambda s: s.id),
        ("status", lambda s: s.status),
        ("steps", lambda s: f"{s.step}/{s.max_steps}"),
        ("best val", lambda s: _loss(s.best_val_loss)),
        ("preset", lambda s: s.preset),
        ("last val", lambda s: _loss(s.last_val_loss)),
        ("warnings", lambda s: str(s.warning_count)),
        ("checkpoint", lambda s: f"step {s.latest_checkpoint_step}" if s.latest_checkpoint else "-"),
        ("sweep", lambda s: s.sweep or "-"),
    ]
    if not any(s.sweep for s in summaries):
        columns.pop()
    rows = [[cell(s) for _, cell in columns] for s in summaries]
    # Ids are never cut (they are pasted into --resume): other columns go first, the last first.
    while len(columns) > 2 and _table_width(columns, rows) > console.width:
        columns.pop()
        rows = [row[:-1] for row in rows]
    table = Table(*(name for name, _ in columns))
    table.columns[0].no_wrap = True
    table.columns[0].min_width = max(len(row[0]) for row in rows)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _table_width(columns: list, rows: list[list[str]]) -> int:
    """Width of a Rich table with these cells: the widest cell of each column, its padding and rules."""
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, (name, _) in enumerate(columns)]
    return sum(widths) + 3 * len(widths) + 1


@runs_app.command("show")
@user_errors
def runs_show(
    run: str = typer.Argument(..., help="Run id, unique prefix, or path."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One run's facts, as on the history screen."""
    from hwm_core.predictions.evaluation_store import latest_evaluation
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import resolve_run, safe_summarize

    folder = resolve_run(default_runs_dir(runs_dir), run)
    summary = safe_summarize(folder, time.time())
    info = summary.to_json()
    evaluation = latest_evaluation(folder)
    if as_json:
        print(json.dumps({**info, "latest_evaluation": evaluation}, indent=1))
        return
    table = Table(show_header=False, title=f"run {summary.id}")
    for key, value in info.items():
        if key in ("started", "ended") and value:
            value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)
    if evaluation is not None:
        console.print(evaluation_table(evaluation))


@runs_app.command("compare")
@user_errors
def runs_compare(
    runs: list[str] = typer.Argument(..., help="2 to 8 runs (ids, unique prefixes or paths)."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The comparison table: the config values in which the runs differ, and each run's steps, best and last
    val loss, warnings and status."""
    from hwm_core.errors import ConfigError
    from hwm_core.experiments.comparison import compare, format_value, short_key
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import resolve_run

    if len(runs) < 2:
        raise ConfigError("runs compare needs two runs or more: hwm-tui runs compare RUN RUN ...")
    folder = default_runs_dir(runs_dir)
    comparison = compare([resolve_run(folder, ref) for ref in runs], time.time())
    if as_json:
        print(json.dumps(comparison.to_json(), indent=1))
        return
    table = Table(
        "run",
        *(short_key(k) for k in comparison.keys),
        "status",
        "steps",
        "best val",
        "last val",
        "warnings",
        "eval acc",
        "other states",
        title=f"{len(runs)} runs: they differ in {', '.join(comparison.keys) or 'nothing in their configs'}",
        box=box.SIMPLE_HEAD,
    )
    for column in table.columns:
        column.no_wrap = True
    table.columns[0].min_width = max(len(run.summary.id) for run in comparison.runs)  # ids are never cut
    for run in comparison.runs:
        s = run.summary
        table.add_row(
            s.id,
            *(format_value(run.values[k]) for k in comparison.keys),
            s.status,
            f"{s.step}/{s.max_steps}",
            _loss(s.best_val_loss),
            _loss(s.last_val_loss),
            str(s.warning_count),
            *_evaluation_cells(run.evaluation),
        )
    # A pipe (a script) takes the whole table, however wide; a terminal, what fits.
    (console if console.is_terminal else Console(width=10_000, soft_wrap=True)).print(table)


def _evaluation_cells(h: EvaluationHeadline | None) -> tuple[str, str]:
    """The latest evaluation's accuracy, and under other states with the points lost; '-' where none."""
    if h is None:
        return "-", "-"
    other = "-"
    if h.other_states_accuracy is not None and h.delta_accuracy is not None:
        other = f"{h.other_states_accuracy:.1%} ({-h.delta_accuracy * 100:+.1f})"
    return f"{h.accuracy:.1%} @{h.step}", other


EXPORT_COLUMNS = (
    "type",
    "step",
    "time",
    "loss",
    "lr",
    "grad_norm_pre_clip",
    "grad_norm_post_clip",
    "grad_max_abs",
    "grad_min_abs",
    "clipped",
    "skipped",
    "samples_per_s",
    "tokens_per_s",
    "step_time_s",
    "data_wait_s",
    "memory_bytes",
    "val_loss",
    "val_token_acc",
)


@runs_app.command("export")
@user_errors
def runs_export(
    run: str = typer.Argument(..., help="Run id, unique prefix or path."),
    csv_: bool = typer.Option(False, "--csv", help="As CSV: one row per step and eval."),
    tensorboard: bool = typer.Option(
        False,
        "--tensorboard",
        help="As TensorBoard event files, in the run's tensorboard/ (or --out), so `tensorboard --logdir runs` "
        "shows it; needs pip install 'hwm-tui[tensorboard]'.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="CSV: write to this file instead of standard output. TensorBoard: this folder."
    ),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """A run's metrics.jsonl for other tools: every step and eval row as CSV, or every event as TensorBoard
    event files (for runs trained without `train --log tensorboard`)."""
    from hwm_core.errors import ConfigError
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import resolve_run

    if csv_ == tensorboard:
        raise ConfigError("runs export needs one format: --csv or --tensorboard")
    folder = resolve_run(default_runs_dir(runs_dir), run)
    if tensorboard:
        from hwm_core.mirrors.export import export_tensorboard

        target, count = export_tensorboard(folder, out)
        console.print(f"wrote {count} events of run {folder.id} to {target} (tensorboard --logdir {target.parent})")
        return
    _export_csv(folder, out)


def _export_csv(folder, out: Path | None) -> None:
    import csv
    import dataclasses

    from hwm_core.events.log import iter_events
    from hwm_core.events.types import EvalEvent, StepEvent

    handle = open(out, "w", newline="") if out is not None else sys.stdout  # noqa: SIM115 - or stdout; closed below
    try:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for event in iter_events(folder.metrics):
            if isinstance(event, (StepEvent, EvalEvent)):
                writer.writerow(dataclasses.asdict(event))
    finally:
        if out is not None:
            handle.close()


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if value is not None and math.isfinite(value) else "-"
