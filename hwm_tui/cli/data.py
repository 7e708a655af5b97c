"""`hwm-tui data`: synthetic splits written, splits inspected."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from .console import console
from .user_errors import user_errors

data_app = typer.Typer(no_args_is_help=True, help="Generate and inspect v2.0 data splits.")


@data_app.command("synth")
@user_errors
def data_synth(
    out: Path = typer.Argument(..., help="Folder to write the split into."),
    shards: int = typer.Option(2, "--shards", min=1, help="Number of shards."),
    frames: int = typer.Option(4080, "--frames", min=17, help="Frames per shard (30 Hz)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same bytes."),
    flat: bool = typer.Option(False, "--flat", help="Flat layout (like val_v2.0) instead of sub-folders."),
) -> None:
    """Write a synthetic split in the exact 1X v2.0 format, with action-driven dynamics."""
    from hwm_core.data.synth import write_split
    from hwm_core.errors import DataError

    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file: give a new folder to write the split into")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} exists and is not empty: choose a new folder, so no data is overwritten")
    try:
        write_split(out, shards=shards, frames=frames, seed=seed, flat=flat)
    except OSError as exc:
        raise DataError(f"cannot write {out} ({exc.strerror}): choose a writable folder with free space") from None
    console.print(f"wrote {shards} shard(s) x {frames} frames to {out} ({'flat' if flat else 'sub-folder'} layout)")


@data_app.command("inspect")
@user_errors
def data_inspect(
    path: Path = typer.Argument(..., help="A split folder (holds metadata.json)."),
    windows: int = typer.Option(1, "--windows", min=1, help="Windows per sample, for num_valid_samples."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Shards, frames, windows, valid samples, segments, token range, state statistics."""
    from hwm_core.data.inspect import describe_split

    info = describe_split(path, windows)
    if as_json:
        print(json.dumps(info, indent=1))
        return
    table = Table(title=f"{info['path']} ({info['layout']} layout)", show_header=False)
    for key in (
        "num_shards",
        "num_frames",
        "num_windows",
        "windows_per_sample",
        "num_valid_samples",
        "num_segments",
        "token_min",
        "token_max",
        "hz",
        "synthetic",
    ):
        table.add_row(key, str(info[key]))
    console.print(table)
    states = Table("dim", "state", "mean", "std", title="robot states")
    for row in info["state_stats"]:
        states.add_row(str(row["dim"]), row["name"], f"{row['mean']:.4g}", f"{row['std']:.4g}")
    console.print(states)
