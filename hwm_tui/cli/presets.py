"""`hwm-tui presets`: the hardware presets, listed and shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from .console import console
from .user_errors import user_errors

if TYPE_CHECKING:
    from hwm_core.config.schema import Config

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
        table.add_row(
            name,
            f"{c.model.n_layers}L d{c.model.d_model} h{c.model.n_heads}",
            f"{c.train.batch_size} x {c.train.grad_accum_steps}",
            f"{c.train.lr:g}",
            c.data.train or "--data required",
            c.description,
        )
    console.print(table)


@presets_app.command("show")
@user_errors
def presets_show(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Preset name or TOML path."),
    schema: bool = typer.Option(
        False,
        "--schema",
        help="Every key a preset may hold: type, default, allowed "
        "values, what it does (with NAME: that preset's value too).",
    ),
) -> None:
    """The fully resolved preset, as TOML; or, with --schema, the keys a preset may hold."""
    from hwm_core.config.loading import load_config

    if schema:
        table = _schema_table(load_config(name) if name else None)
        # a pipe (a script, grep) takes whole rows, however wide; a terminal, what fits
        (console if console.is_terminal else Console(width=10_000, soft_wrap=True)).print(table)
        return
    if name is None:
        ctx.fail("Missing argument 'name'.")  # as Typer says it of a required argument
    print(load_config(name).to_toml(), end="")


def _schema_table(preset: Config | None) -> Table:
    from hwm_core.config.schema import describe_schema, toml_value

    table = Table(
        "key",
        "type",
        "default",
        "allowed",
        *([preset.preset] if preset else []),
        "what it does",
        title="the preset schema: every key a preset may hold",
    )
    table.columns[0].no_wrap = True
    for row in describe_schema():
        value = [toml_value(preset.get(row.key))] if preset else []
        table.add_row(row.key, row.type, toml_value(row.default), row.allowed, *value, row.doc)
    return table
