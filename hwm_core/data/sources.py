"""The train and val splits a configuration names: folders, or generated synthetic data."""

from __future__ import annotations

from pathlib import Path

from ..config.schema import Config
from ..errors import ConfigError
from .cache import SYNTHETIC, synthetic_split
from .split import Split


def train_dir(config: Config) -> Path:
    d = config.data
    if not d.train:
        raise ConfigError(
            f"preset {config.preset} names no training data: pass --data DIR "
            "(a 1X v2.0 split such as train_v2.0) or --data synthetic"
        )
    if d.train == SYNTHETIC:
        return synthetic_split("train", shards=d.synthetic_shards, frames=d.synthetic_frames, seed=config.train.seed)
    return Path(d.train)


def val_dir(config: Config) -> Path | None:
    """The val split: the one named, generated along with synthetic train data, or none."""
    d = config.data
    if d.val == SYNTHETIC or (d.train == SYNTHETIC and not d.val):
        return synthetic_split("val", shards=d.synthetic_shards, frames=d.synthetic_frames, seed=config.train.seed)
    return Path(d.val) if d.val else None


def open_splits(config: Config, *, notices: list[str]) -> tuple[Split, Split | None]:
    """Both splits opened and every file checked; what a user should know goes to `notices`."""
    train_path, val_path = train_dir(config), val_dir(config)
    if val_path is None and config.eval.eval_steps > 0:
        notices.append("no val split given (--val-data): validation is skipped for this run")
    train = Split.open(train_path, role="train")
    train.check_contents()
    val = None
    if val_path is not None:
        val = Split.open(val_path, role="val")
        val.check_contents()
    for split in (train, val):
        notices.extend(split.notices if split is not None else [])
    return train, val
