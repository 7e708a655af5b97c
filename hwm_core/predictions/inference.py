"""A trained model ready to predict: a checkpoint's weights, its run's config and
state statistics, and the val samples it is judged on.

`hwm-tui evaluate` and `hwm-tui samples` take a run (its newest good checkpoint)
or a checkpoint file. A checkpoint whose weights do not fit the shape its own
config gives, or a split with no sample of that shape, is one line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from ..config.loading import config_from_dict
from ..config.schema import Config, DeviceChoice
from ..data import SYNTHETIC, Split, StateStats, WindowDataset, synthetic_split
from ..data.sources import train_dir, val_dir
from ..errors import CheckpointError, ConfigError, DataError
from ..fsq import FactorSpec
from ..model.masked_hwm import MaskedHWM
from ..runs import checkpoint as ckpt
from ..runs.checkpoint_contents import load_model_weights, model_shape, shape_text
from ..runs.folder import RunFolder
from ..runs.history import resolve_run
from ..runtime.device import resolve_device


@dataclass
class TrainedModel:
    model: MaskedHWM
    config: Config
    stats: StateStats
    step: int
    checkpoint: Path | None  # None: the model a trainer is training
    folder: RunFolder | None  # the run it belongs to, when it is in one
    device: torch.device

    @property
    def factors(self) -> FactorSpec:
        return self.model.factors

    @property
    def precision(self) -> str:
        return self.config.train.precision


def find_checkpoint(ref: str, runs_dir: Path) -> tuple[ckpt.Checkpoint, RunFolder | None]:
    """A checkpoint file, or a run's newest checkpoint that verifies."""
    path = Path(ref).expanduser()
    if path.is_file():
        run_dir = path.parent.parent
        folder = RunFolder(run_dir) if (run_dir / "run.json").exists() else None
        return ckpt.load_checkpoint(path), folder
    folder = resolve_run(runs_dir, ref)
    checkpoint, _ = ckpt.newest_good(
        folder.checkpoints, folder.id, to_do="train it first (hwm-tui train --resume, or a new run)"
    )
    return checkpoint, folder


def load_trained(ref: str, runs_dir: Path, *, device: str | None = None) -> TrainedModel:
    checkpoint, folder = find_checkpoint(ref, runs_dir)
    where = checkpoint.path.name
    raw = checkpoint.meta.get("config")
    if not isinstance(raw, dict):
        raise CheckpointError(f"checkpoint {where} holds no config: it cannot be rebuilt for evaluation")
    config = config_from_dict(raw, source=f"the config in {where}", preset_name=str(raw.get("preset", "custom")))
    if device is not None:  # a new config, checked as it is built: none is changed after its check
        train = dataclasses.replace(config.train, device=cast(DeviceChoice, device))  # TrainConfig checks it
        config = dataclasses.replace(config, train=train)
    if checkpoint.meta.get("model_shape") != model_shape(config):
        raise CheckpointError(
            f"checkpoint {where} says its model is {shape_text(checkpoint.meta.get('model_shape'))}"
            f" but its config gives {shape_text(model_shape(config))}: the file is not "
            "one hwm-tui wrote as is"
        )
    try:
        torch_device = resolve_device(config.train)
    except ConfigError:
        if device is None:  # the run's own train.device: the generic line names the key
            raise
        raise ConfigError(
            f"--device {device} but no CUDA GPU is visible: use --device cpu, or check CUDA_VISIBLE_DEVICES"
        ) from None
    model = MaskedHWM(config.model, config.latent_frames)
    load_model_weights(checkpoint, model, what_to_do="it is not a checkpoint of the model its config describes")
    stats_path = folder.state_stats if folder is not None else checkpoint.path.parent.parent / "state_stats.json"
    if not stats_path.is_file():
        raise CheckpointError(
            f"{where} has no state_stats.json beside it (its run folder's): evaluate it from "
            "inside its run folder, runs/<run>/checkpoints/"
        )
    return TrainedModel(
        model=model.to(torch_device).eval(),
        config=config,
        stats=StateStats.load(stats_path),
        step=checkpoint.step,
        checkpoint=checkpoint.path,
        folder=folder,
        device=torch_device,
    )


def split_path(trained: TrainedModel, data: str | None, role: str) -> Path:
    """The split a command reads: the one given (a folder, or 'synthetic' for the
    generated one of the run's seed), else the run's own (val or train)."""
    config = trained.config
    if data == SYNTHETIC:
        d = config.data
        return synthetic_split(role, shards=d.synthetic_shards, frames=d.synthetic_frames, seed=config.train.seed)
    if data is not None:
        return Path(data)
    path = val_dir(config) if role == "val" else train_dir(config)
    if path is None:
        raise DataError(f"run's config names no {role} split: pass {'--data' if role == 'val' else '--train-data'} DIR")
    return path


def open_samples(trained: TrainedModel, path: Path, role: str = "val") -> WindowDataset:
    """Every valid sample of the checkpoint's shape (windows) in the split, checked."""
    split = Split.open(path, role=role)
    split.check_contents()
    return WindowDataset(split, trained.config.data.windows, trained.stats, role=role)


def sample_batch(
    trained: TrainedModel, samples: WindowDataset, indices: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """True factor ids [B, T, S, F] and normalised states [B, 17W, 25], on the device."""
    tokens, states = zip(*(samples.get(i) for i in indices))
    codes = torch.from_numpy(np.stack(tokens)).flatten(2)  # [B, T, 1024]
    return (
        trained.factors.codes_to_factors(codes).to(trained.device),
        torch.from_numpy(np.stack(states)).to(trained.device),
    )
