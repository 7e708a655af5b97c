"""The `hwm-tui` command: one module a command group, each importing the engine only
when it runs, so `presets`, `runs` and `data` start without torch.

Every command turns a user mistake (hwm_core.errors.UserError) into one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os

import typer

from . import doctor, imagine, predictions, screens, sweep, train
from .bench import bench_app
from .data import data_app
from .presets import presets_app
from .runs import runs_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="Train Masked Humanoid World Models on 1X World Model Challenge data.",
)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(presets_app, name="presets")
app.add_typer(runs_app, name="runs")
for command in (
    train.train,
    sweep.sweep,
    predictions.evaluate,
    predictions.samples,
    imagine.imagine,
    screens.history,
    screens.watch,
    doctor.doctor,
):
    app.command()(command)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
