"""`hwm-tui doctor`: before a long GPU run, what this machine and a preset will do.

The checks are the engine's (hwm_core/training/doctor.py); this module prints them, one
line each: ✓, a notice (!) or ✗ with what to do. Exit 0 when nothing failed, 1 when
something did; a bad preset name is one line and exit 2, as everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from .console import console
from .options import JSON_HELP, RUNS_DIR_HELP
from .user_errors import user_errors

MARKS = {"ok": "[green]✓[/]", "notice": "[yellow]![/]", "fail": "[bold red]✗[/]"}


@user_errors
def doctor(
    preset: str | None = typer.Option(
        None, "--preset", "-p", help="Also resolve this preset and run a few real steps of it, as it is configured."
    ),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check this machine before a long run: versions, GPUs, bf16/TF32, torch.compile, torchrun,
    the runs folder, /dev/shm; with --preset, a few real steps of that preset."""
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.training.doctor import diagnose

    report = diagnose(default_runs_dir(runs_dir), preset)
    if as_json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        for check in report.checks:
            line = f"{MARKS[check.status]} [bold]{escape(check.name)}[/]: {escape(check.detail)}"
            if check.fix and check.status != "ok":
                line += f" [dim]→ {escape(check.fix)}[/]"
            console.print(line, highlight=False)
        failed = sum(c.status == "fail" for c in report.checks)
        console.print("ready" if report.ok else f"[bold red]{failed} check(s) failed[/]", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
