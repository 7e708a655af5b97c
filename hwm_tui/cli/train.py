"""`hwm-tui train`: one run, on the dashboard or headless, on one process or under torchrun."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .console import console, err_console
from .options import LOG_HELP, RUNS_DIR_HELP, VIEW_DECODER_HELP, mirror_names, name_decoder
from .user_errors import user_errors


@user_errors
def train(
    preset: str | None = typer.Option(
        None, "--preset", "-p", help="Preset name (cpu, 12gb, 24gb, 48gb, 80gb) or path to a TOML file. Default: cpu."
    ),
    data: str | None = typer.Option(None, "--data", help="Train split folder (1X v2.0), or 'synthetic'."),
    val_data: str | None = typer.Option(None, "--val-data", help="Val split folder, or 'synthetic'."),
    set_: list[str] = typer.Option([], "--set", help="Override a preset key: section.key=value (repeatable)."),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps in the whole run."),
    resume: str | None = typer.Option(
        None, "--resume", help="Continue a run (id or path) from its latest good checkpoint."
    ),
    headless: bool = typer.Option(False, "--headless", help="No dashboard: one progress line (servers, scripts)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes (GPUs) to train on, launched with torchrun."),
    memory_limit: float | None = typer.Option(
        None, "--memory-limit", min=0, help="Cap this process's CUDA memory at this many GiB (emulate a smaller card)."
    ),
    log: list[str] = typer.Option([], "--log", help=LOG_HELP),
    run_id: str | None = typer.Option(None, "--run-id", hidden=True, help="Name the new run (launchers)."),
    decoder: str | None = typer.Option(None, "--decoder", help=VIEW_DECODER_HELP),
) -> None:
    """Train a Masked-HWM: the dashboard by default, or --headless."""
    from hwm_core.errors import ConfigError
    from hwm_core.training.session import TrainRequest

    name_decoder(decoder)
    if resume is not None and not resume.strip():
        raise ConfigError("--resume needs a run id or path: see `hwm-tui runs list`")
    request = TrainRequest(
        preset=preset,
        data=data,
        val_data=val_data,
        overrides=list(set_),
        runs_dir=str(runs_dir) if runs_dir else None,
        max_steps=max_steps,
        resume=resume,
        run_id=run_id,
        memory_limit_gib=memory_limit,
        mirrors=mirror_names(log),
    )
    if nproc > 1:
        from ..launch import launch_distributed

        raise typer.Exit(launch_distributed(request, nproc=nproc, headless=headless))
    from hwm_core.runtime import distributed
    from hwm_core.training.session import prepare

    dist = distributed.from_env()
    if dist.enabled:
        raise typer.Exit(_train_distributed(request, dist, headless))
    try:
        session = prepare(request, dist)
    except KeyboardInterrupt:
        err_console.print("interrupted before training started; nothing to resume")
        raise typer.Exit(130) from None
    if headless or not sys.stdout.isatty():
        from ..headless import run_headless

        raise typer.Exit(run_headless(session, console))
    from ..app import run_dashboard

    raise typer.Exit(run_dashboard(session))


def _train_distributed(request, dist, headless: bool) -> int:
    """One rank under torchrun: always headless; only rank 0 prints and writes."""
    from hwm_core.runtime.distributed import shutdown
    from hwm_core.training.session import prepare_distributed

    from ..headless import run_headless

    try:
        session = prepare_distributed(request, dist)
        return run_headless(session, console)
    finally:
        shutdown(dist)
