"""Commands a trainer applies at step boundaries: pause, resume, checkpoint now, stop.

On one process they come straight from the inbox. Under DDP every rank must apply the
same commands at the same boundary: rank 0's ride along with the step's loss as one
number (see Trainer._measure), and while paused, rank 0 hands out what arrives in a
collective of its own that every rank waits in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..events.types import Event, StateEvent
from ..runs.inbox import CHECKPOINT, PAUSE, RESUME, STOP, CommandInbox, decode_commands, encode_commands
from ..runtime.distributed import DistInfo, all_reduce_sum
from ..status import PAUSED, RUNNING
from .session import TrainingState


class Controls:
    def __init__(
        self,
        inbox: CommandInbox,
        state: TrainingState,
        dist: DistInfo,
        device: torch.device,
        publish: Callable[[Event], None],
        checkpoint: Callable[[], bool],
    ):
        self.inbox = inbox
        self.state = state
        self.dist = dist
        self.device = device
        self.publish = publish
        self.checkpoint = checkpoint
        self.paused = False
        self.stop_requested = False
        self.agreed: list[str] = []  # from rank 0, for every rank's next boundary

    def outgoing_code(self) -> float:
        """Rank 0's waiting commands as the number that travels with the step's loss (0 elsewhere)."""
        dist = self.dist
        return float(encode_commands(self.inbox.poll())) if dist.enabled and dist.is_main else 0.0

    def apply_at_boundary(self) -> None:
        """Apply what arrived; while paused, wait here for more."""
        if not self.dist.enabled:
            for command in self.inbox.poll():
                self._apply(command)
            while self.paused and not self.stop_requested:
                for command in self.inbox.wait(0.5):
                    self._apply(command)
            return
        commands, self.agreed = self.agreed, []
        for command in commands:
            self._apply(command)
        while self.paused and not self.stop_requested:
            # Every rank waits here together; rank 0 hands out what arrives.
            local = self.inbox.wait(0.5) if self.dist.is_main else []
            code = torch.full((), float(encode_commands(local)), device=self.device)
            for command in decode_commands(int(all_reduce_sum(code, self.dist).item())):
                self._apply(command)

    def _apply(self, command: str) -> None:
        step = self.state.step
        if command in (PAUSE, RESUME):
            # Answered even when nothing changes (p pressed twice quickly), so a viewer
            # showing "pausing…" or "resuming…" always learns where the trainer stands.
            self.paused = command == PAUSE
            self.publish(StateEvent(PAUSED if self.paused else RUNNING, step))
        elif command == CHECKPOINT:
            self.checkpoint()
        elif command == STOP:
            self.stop_requested = True
