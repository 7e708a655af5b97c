"""The batch split a run trains with, resolved: micro-batches of an int size, and how many a step.

`train.batch_size` in a preset is an int or "auto"; a session resolves it once
(training/micro_batch.py) into a BatchSplit, which every later reader uses. The
config a run records (its config.toml, its checkpoints' header) carries the resolved
numbers, written by `recorded`, so a resume reads them back as a plain int.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .schema import AUTO, Config, TrainConfig


@dataclass(frozen=True)
class BatchSplit:
    micro_batch: int  # samples per forward/backward on each process
    grad_accum_steps: int  # micro-batches per optimizer step

    @property
    def per_process(self) -> int:
        """Samples per optimizer step on each process."""
        return self.micro_batch * self.grad_accum_steps

    def global_batch(self, world_size: int) -> int:
        """Samples in one optimizer step, over every process."""
        return self.per_process * world_size


def given_split(train: TrainConfig) -> BatchSplit:
    """The split a config names outright; auto must be resolved first (micro_batch.py)."""
    if isinstance(train.batch_size, str):
        raise ValueError(f"train.batch_size = {AUTO} is resolved when a session starts, not read as a number")
    return BatchSplit(train.batch_size, train.grad_accum_steps)


def recorded(config: Config, split: BatchSplit) -> Config:
    """`config` as the run records it: the resolved micro-batch and accumulation in place of auto."""
    train = dataclasses.replace(config.train, batch_size=split.micro_batch, grad_accum_steps=split.grad_accum_steps)
    return dataclasses.replace(config, train=train)
