"""`hwm-tui data`: the real splits downloaded, synthetic splits written, splits inspected."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from rich.table import Table

from hwm_core.hub import REPO_ID

from .console import console
from .user_errors import user_errors

data_app = typer.Typer(no_args_is_help=True, help="Download, generate and inspect v2.0 data splits.")


@data_app.command(
    "download",
    help=f"The 1X World Model Challenge v2.0 splits from the Hugging Face Hub ({REPO_ID}), checked as "
    "`data inspect` checks them, and the `hwm-tui train` line that trains on them. Only the v2.0 folders "
    "asked for are fetched, into the Hub's cache (resumable: after any failure, rerun the same command), "
    "and linked into --to. A gated repository needs `hf auth login` or HF_TOKEN. "
    "Needs pip install 'hwm-tui[hub]'.",
)
@user_errors
def data_download(
    to: Path = typer.Option(Path("data"), "--to", help="Folder the splits appear in: DIR/train_v2.0, DIR/val_v2.0."),
    split: str = typer.Option("both", "--split", help="train, val or both."),
    revision: str = typer.Option("main", "--revision", help="Branch, tag or commit of the dataset repository."),
    repo: str = typer.Option(REPO_ID, "--repo", help="The dataset repository on the Hugging Face Hub."),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Where the bytes go: the Hub client's cache (default $HF_HUB_CACHE, else ~/.cache/huggingface/hub).",
    ),
    decoder: bool = typer.Option(
        False,
        "--decoder",
        help="Fetch the Cosmos DV8x8x8 decoder (decoder.jit of nvidia/Cosmos-Tokenizer-DV8x8x8, about 127 MB) "
        "instead of the splits; --revision is then the model repository's.",
    ),
) -> None:
    """Download the v2.0 splits (the help text is built from REPO_ID above)."""
    from hwm_core.data.inspect import describe_split
    from hwm_core.errors import DataError
    from hwm_core.hub import download

    if decoder:
        _download_decoder(revision, cache_dir)
        return

    which = "train and val splits" if split == "both" else f"{split} split"
    console.print(f"fetching the v2.0 {which} of {repo} ({revision}) from the Hugging Face Hub")
    done = download(to, split, repo=repo, revision=revision, cache_dir=cache_dir)
    table = Table("split", "shards", "frames", "valid samples", "segments", "tokens", title=f"{repo} @ {revision}")
    for name, path in done.splits.items():
        try:
            info = describe_split(path)
        except DataError as exc:
            raise DataError(f"the downloaded {name} split fails its checks ({exc}); rerun the download") from None
        table.add_row(
            str(path),
            str(info["num_shards"]),
            f"{info['num_frames']:,}",
            f"{info['num_valid_samples']:,}",
            str(info["num_segments"]),
            f"{info['token_min']}..{info['token_max']}",
        )
    console.print(table)
    console.print(f"files in the Hub cache: {done.snapshot}")
    train_split, val_split = done.splits.get("train"), done.splits.get("val")
    if train_split is None:
        console.print("to train, download the train split too: hwm-tui data download --split train")
        return
    line = f"hwm-tui train --data {shlex.quote(str(train_split.absolute()))}"
    if val_split is not None:
        line += f" --val-data {shlex.quote(str(val_split.absolute()))}"
    else:
        console.print("no val split: training will skip validation (fetch it with --split val)")
    console.print("train on it (add --preset 12gb, 24gb, 48gb or 80gb for your GPU):")
    console.print(line, highlight=False, soft_wrap=True)


def _download_decoder(revision: str, cache_dir: Path | None) -> None:
    from hwm_core.hub import DECODER_FILE, DECODER_REPO, download_decoder
    from hwm_core.pixels.decoder import DECODER_REVISION, load_decoder

    console.print(f"fetching {DECODER_FILE} of {DECODER_REPO} ({revision}) from the Hugging Face Hub")
    path = download_decoder(revision=revision, cache_dir=cache_dir)
    # Loading runs the file's code: it is the file just fetched from that repository, nothing else.
    decoder = load_decoder(path)  # checked on one window: a wrong file is one line, exit 2
    console.print(f"decoder: {path}", highlight=False, soft_wrap=True)
    found = (
        "every command finds it there from now on"
        if revision == DECODER_REVISION and cache_dir is None
        else "commands look for branch main in the default cache: name this file with --decoder PATH or $HWM_DECODER"
    )
    console.print(
        f"checked: a window of codes [1, 3, 32, 32] decodes to 17 RGB frames in {decoder.check_seconds:.1f} s on "
        f"{decoder.device}; {found}",
        highlight=False,
        soft_wrap=True,
    )


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
