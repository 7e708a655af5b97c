"""The cache of generated synthetic splits that `--data synthetic` trains on."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import DataError
from .synth import GENERATOR_VERSION, write_split

SYNTHETIC = "synthetic"
VAL_SEED_OFFSET = 1_000_003  # val is another world: its loss measures dynamics, not memory


def cache_root() -> Path:
    if os.environ.get("HWM_CACHE_DIR"):
        return Path(os.environ["HWM_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hwm-tui"


def synthetic_split(role: str, *, shards: int, frames: int, seed: int) -> Path:
    """Path of a generated split, writing it first if it is not cached yet.

    Written into a temporary folder and renamed, so a run killed while generating
    never leaves a half-written split that a later run would trust.
    """
    if role == "val":
        seed, shards = seed + VAL_SEED_OFFSET, max(1, shards // 4)
    name = f"synth-v{GENERATOR_VERSION}-{role}-seed{seed}-{shards}x{frames}"
    target = cache_root() / name
    if (target / "metadata.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    except OSError as exc:
        raise DataError(
            f"cannot write the synthetic data cache {target.parent} ({exc.strerror}): "
            "set HWM_CACHE_DIR to a writable folder"
        ) from None
    try:
        write_split(tmp, shards=shards, frames=frames, seed=seed)
        os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if (target / "metadata.json").is_file():  # another process won the race
            return target
        raise DataError(
            f"cannot write the synthetic data cache {target} ({exc.strerror}): "
            "free disk space or set HWM_CACHE_DIR to another folder"
        ) from None
    return target
