"""`hwm-tui sweep`: a grid of runs, one after another."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .console import console
from .options import RUNS_DIR_HELP
from .user_errors import user_errors


@user_errors
def sweep(
    preset: str | None = typer.Option(None, "--preset", "-p", help="Preset name or TOML path. Default: cpu."),
    data: str | None = typer.Option(None, "--data", help="Train split folder (1X v2.0), or 'synthetic'."),
    val_data: str | None = typer.Option(None, "--val-data", help="Val split folder, or 'synthetic'."),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="section.key=a,b,c: a grid axis (values split at commas "
        "outside brackets); section.key=value: for every run. Repeatable.",
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps of every run."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    headless: bool = typer.Option(False, "--headless", help="No dashboard: one progress line per run."),
    resume: str | None = typer.Option(
        None,
        "--resume",
        help="Continue a sweep (its id): finish its interrupted "
        "run from its checkpoint, skip the completed ones, train the rest.",
    ),
) -> None:
    """Train a grid of runs one after another (e.g. --set train.lr=3e-5,5e-5,1e-4), each a normal run carrying
    the sweep's id; the grid and its order are printed first."""
    from hwm_core.errors import ConfigError
    from hwm_core.experiments.sweep import load_sweep, new_sweep, plan
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.training.request import TrainRequest, request_overrides

    from ..sweep_runs import grid_table, run_sweep_headless

    folder = default_runs_dir(runs_dir)
    if resume is not None:
        if set_ or preset or data or val_data or max_steps is not None:
            raise ConfigError(
                "--resume continues a sweep with its own grid and settings: drop --set, --preset, "
                "--data, --val-data and --max-steps"
            )
        the_sweep = load_sweep(folder, resume)
    else:
        sets = request_overrides(TrainRequest(data=data, val_data=val_data, max_steps=max_steps, overrides=list(set_)))
        the_sweep = new_sweep(preset or "cpu", sets, folder)
        folder.mkdir(parents=True, exist_ok=True)
        the_sweep.save()
    steps = plan(the_sweep)
    console.print(grid_table(the_sweep, steps))
    console.print(
        f"sweep record: {the_sweep.path}  (continue it after a stop with: hwm-tui sweep --resume {the_sweep.id})",
        style="dim",
    )
    if headless or not sys.stdout.isatty():
        raise typer.Exit(run_sweep_headless(the_sweep, console))
    from ..app import run_sweep_dashboard

    raise typer.Exit(run_sweep_dashboard(the_sweep))
