"""`hwm-tui runs export RUN --tensorboard`: a run already trained, written as
TensorBoard event files from its metrics.jsonl.

metrics.jsonl holds each step once (a resume rewinds it), so one writer going
through it from the first line holds each step once too. Events keep the times
they happened at.
"""

from __future__ import annotations

from pathlib import Path

from ..config.loading import config_from_toml_file
from ..errors import ConfigError, RunError
from ..events.follow import MetricsFollower
from ..runs.folder import RunFolder
from .base import check_installed
from .tensorboard_files import FOLDER, TensorBoardMirror, config_text

READ_BYTES = 8 << 20  # metrics.jsonl read in parts: a long run's file is hundreds of MB


def export_tensorboard(folder: RunFolder, out: Path | None = None) -> tuple[Path, int]:
    """Writes the run's events to `out` (default: the run's tensorboard/); returns the
    folder and how many events went in."""
    check_installed(["tensorboard"])
    if not folder.metrics.is_file():
        raise RunError(f"run {folder.id} has no metrics.jsonl: nothing to export")
    target = out if out is not None else folder.path / FOLDER
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {target} is a file: give a folder for the event files")
    if target.is_dir() and any(target.glob("events.out.tfevents.*")):
        raise ConfigError(
            f"{target} already holds TensorBoard event files (the run was mirrored, or exported before): "
            "pass --out with a new folder, or remove them first, so no step is written twice"
        )
    config: dict = {}
    if folder.config_toml.is_file():
        config = config_from_toml_file(folder.config_toml).to_dict()
    mirror = TensorBoardMirror(target, config_toml=config_text(config))
    count = 0
    follower = MetricsFollower(folder.metrics)
    try:
        while True:
            read = follower.poll(max_bytes=READ_BYTES)
            if not read.events:
                break
            for event in read.events:
                mirror.write(event)
            count += len(read.events)
    finally:
        mirror.close()
    return target, count
