"""The trainer's checkpoints: written at its cadence, on request, and at the end.

A failed save (disk full) keeps the older checkpoints, says so, and training goes on;
metrics.jsonl is on disk first, so a checkpoint never stands ahead of its metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..events.bus import EventBus
from ..events.types import CheckpointEvent, CheckpointFailedEvent, Event, StateEvent, WarningEvent
from ..runs import checkpoint as ckpt
from ..runs.folder import RunFolder
from ..runtime.distributed import DistInfo, gather_cuda_rng_states
from ..status import CHECKPOINTING, PAUSED, RUNNING
from .session import CheckpointState, TrainingState


class Checkpointer:
    def __init__(
        self,
        state: TrainingState,
        state_dict: Callable[[list[torch.Tensor]], CheckpointState],  # what a checkpoint of now holds
        folder: RunFolder | None,  # None on every rank but the one that writes the run folder
        keep: int,  # checkpoint.keep_checkpoints
        device: torch.device,
        dist: DistInfo,
        bus: EventBus,
        publish: Callable[[Event], None],
        *,
        resumed_from: int | None,
    ):
        self.state = state
        self.state_dict = state_dict
        self.folder = folder
        self.keep = keep
        self.device = device
        self.dist = dist
        self.bus = bus
        self.publish = publish
        self.last_step: int | None = resumed_from  # of the newest checkpoint written
        # The step of the last save every rank took part in: what save_if_new decides by,
        # the same on every rank (a save is a collective: the CUDA RNG states are gathered).
        self.last_attempt: int | None = resumed_from

    def save_if_new(self, *, paused: bool) -> None:
        if self.state.step != self.last_attempt and self.state.step > 0:
            self.save(paused=paused)

    def save(self, *, paused: bool) -> bool:
        """A checkpoint of the current step; False if it could not be written. `paused`:
        the state the trainer is in once it is done."""
        self.last_attempt = self.state.step
        # Every rank's own CUDA RNG state goes into rank 0's file (checkpoint_contents).
        cuda_rng_states = gather_cuda_rng_states(self.device, self.dist)
        folder = self.folder
        if folder is None:  # not rank 0
            return True
        step = self.state.step
        self.publish(StateEvent(CHECKPOINTING, step))
        started = time.perf_counter()
        saved = self.state_dict(cuda_rng_states)
        try:
            self.bus.sync()  # a checkpoint never stands on disk ahead of the metrics it follows
            path, size = ckpt.save_checkpoint(folder.checkpoints, saved.step, saved.tensors, saved.meta)
            ckpt.prune_checkpoints(folder.checkpoints, self.keep, just_written=path)
        except OSError as exc:
            # Disk full or similar: the older checkpoints are intact; say so and train on.
            reason = exc.strerror or str(exc)
            self.publish(CheckpointFailedEvent(step=step, error=reason))
            self.publish(
                WarningEvent(
                    step=step,
                    kind="checkpoint",
                    value=float(step),
                    message=f"checkpoint at step {step} failed ({reason}): "
                    "free disk space; older checkpoints are intact",
                )
            )
            ok = False
        else:
            self.last_step = step
            self.publish(CheckpointEvent(step=step, path=str(path), seconds=time.perf_counter() - started, bytes=size))
            ok = True
        self.publish(StateEvent(PAUSED if paused else RUNNING, step))
        return ok
