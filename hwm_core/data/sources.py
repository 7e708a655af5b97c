"""The train and val splits a configuration names: folders, or generated synthetic data."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from .cache import SYNTHETIC, synthetic_split
from .split import Split


def open_splits(config: Config, *, notices: list[str]) -> tuple[Split, Split | None]:
    """Both splits opened and every file checked; what a user should know goes to `notices`."""
    d = config.data
    if not d.train:
        raise ConfigError(f"preset {config.preset} names no training data: pass --data DIR "
                          "(a 1X v2.0 split such as train_v2.0) or --data synthetic")
    seed = config.train.seed
    if d.train == SYNTHETIC:
        train_dir = synthetic_split("train", shards=d.synthetic_shards, frames=d.synthetic_frames, seed=seed)
    else:
        train_dir = Path(d.train)
    if d.val == SYNTHETIC or (d.train == SYNTHETIC and not d.val):
        val_dir: Path | None = synthetic_split("val", shards=d.synthetic_shards,
                                               frames=d.synthetic_frames, seed=seed)
    elif d.val:
        val_dir = Path(d.val)
    else:
        val_dir = None
        if config.eval.eval_steps > 0:
            notices.append("no val split given (--val-data): validation is skipped for this run")
    train = Split.open(train_dir, role="train")
    train.check_contents()
    val = None
    if val_dir is not None:
        val = Split.open(val_dir, role="val")
        val.check_contents()
    for split in (train, val):
        notices.extend(split.notices if split is not None else [])
    return train, val
