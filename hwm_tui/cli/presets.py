"""`hwm-tui presets`: the hardware presets, listed and shown."""

from __future__ import annotations

import typer
from rich.table import Table

from .console import console
from .user_errors import user_errors

presets_app = typer.Typer(no_args_is_help=True, help="Hardware presets (TOML files in presets/).")


@presets_app.command("list")
@user_errors
def presets_list() -> None:
    """Every preset with its model size and batch."""
    from hwm_core.config.loading import load_config
    from hwm_core.config.presets import preset_names

    table = Table("preset", "model", "batch x accum", "lr", "data", "description")
    for name in preset_names():
        c = load_config(name)
        table.add_row(name, f"{c.model.n_layers}L d{c.model.d_model} h{c.model.n_heads}",
                      f"{c.train.batch_size} x {c.train.grad_accum_steps}", f"{c.train.lr:g}",
                      c.data.train or "--data required", c.description)
    console.print(table)


@presets_app.command("show")
@user_errors
def presets_show(name: str = typer.Argument(..., help="Preset name or TOML path.")) -> None:
    """The fully resolved preset, as TOML."""
    from hwm_core.config.loading import load_config

    print(load_config(name).to_toml(), end="")
