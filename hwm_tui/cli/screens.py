"""`hwm-tui history` and `hwm-tui watch`: the app on past runs, or on a run another process trains."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import RUNS_DIR_HELP, VIEW_DECODER_HELP, name_decoder
from .user_errors import user_errors


@user_errors
def history(
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    decoder: str | None = typer.Option(None, "--decoder", help=VIEW_DECODER_HELP),
) -> None:
    """Browse past runs: curves, config; resume or delete."""
    from ..app import run_history_app

    name_decoder(decoder)
    raise typer.Exit(run_history_app(runs_dir))


@user_errors
def watch(
    run: str | None = typer.Argument(None, help="Run id or path (default: the newest running run)."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    decoder: str | None = typer.Option(None, "--decoder", help=VIEW_DECODER_HELP),
) -> None:
    """Open the dashboard on a run another process is training; p, c, q reach it."""
    from ..app import run_watch

    name_decoder(decoder)
    raise typer.Exit(run_watch(run, runs_dir))
