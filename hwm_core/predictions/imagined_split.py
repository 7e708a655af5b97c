"""`hwm-tui imagine --out DIR`: the imagined sequences as a v2.0 split (the flat val
layout, one shard), so `data inspect` checks it and `evaluate --data` scores it.

Each sample rolled out is one segment: its true context windows, then its imagined
windows (video int32 [windows, 3, 32, 32]), the raw actions used as its states
(float32 [frames, 25]) and its segment id (int32 [frames]). metadata.json says
which run, checkpoint and actions imagined it. The folder is written under a hidden
temporary name and renamed into place whole, metadata.json last inside it: a
killed command leaves no folder that looks like a split.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.split import LATENTS_PER_WINDOW, STATE_DIM, TOKENS_SIDE, shard_file
from ..errors import DataError
from ..runtime.atomic import fsync_dir, write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:
    from .rollout import SampleRollout

LAYOUT = "flat"  # the val split's: files in the root


def check_out_dir(out: Path) -> None:
    """One line unless `out` is free: absent, or an empty folder."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file: give a new folder for the imagined split")
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"--out {out} exists and is not empty: give a new folder, or empty that one first")


def write_imagined_split(out: Path, rollouts: list[SampleRollout], *, hz: float, imagined_by: dict[str, Any]) -> Path:
    out = out.expanduser()
    check_out_dir(out)
    if not rollouts:
        raise DataError("no sample was rolled out, so there is no split to write")
    video = np.concatenate(
        [
            np.concatenate([r.context, r.imagined]).reshape(-1, LATENTS_PER_WINDOW, TOKENS_SIDE, TOKENS_SIDE)
            for r in rollouts
        ]
    ).astype(np.int32)
    states = np.concatenate([r.states for r in rollouts]).astype(np.float32).reshape(-1, STATE_DIM)
    segments = np.concatenate([np.full(len(r.states), n, dtype=np.int32) for n, r in enumerate(rollouts)])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of this pid's earlier, killed try
    try:
        tmp.mkdir()
        write_bytes_atomic(shard_file(tmp, LAYOUT, "video", 0), video.tobytes())
        write_bytes_atomic(shard_file(tmp, LAYOUT, "states", 0), states.tobytes())
        write_bytes_atomic(shard_file(tmp, LAYOUT, "segments", 0), segments.tobytes())
        write_json_atomic(shard_file(tmp, LAYOUT, "metadata", 0), {"shard_num_frames": len(states), "shard_ind": 0})
        write_json_atomic(
            tmp / "metadata.json",
            {
                "num_shards": 1,
                "num_images": len(states),
                "hz": hz,
                "token_dtype": "int32",
                "state_dim": STATE_DIM,
                "imagined": True,
                "segments": "one a sample rolled out: its true context windows, then its imagined windows",
                "imagined_by": imagined_by,
            },
        )
        os.replace(tmp, out)  # onto an empty folder too: rename(2) replaces an empty directory
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out.parent)
    return out
