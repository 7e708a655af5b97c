"""How the dashboard reaches a trainer: its events in, its commands out.

LocalLink: the trainer runs in this process (`hwm-tui train`).
The dashboard only ever uses what `RunLink` declares, so the same screen also
serves a run that another process trains (`hwm-tui watch`, see watch_link.py),
a finished run replayed (benchmarks) and the tests' scripted runs.
"""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Protocol

from hwm_core.events.types import Event
from hwm_core.runs.history import read_run_events
from hwm_core.training.runner import TrainingRunner
from hwm_core.training.session import TrainingSession

MAX_EVENTS_PER_POLL = 5_000  # a burst (a long history) is taken over several polls, ~25 ms each


class RunLink(Protocol):
    @property
    def run_dir(self) -> Path | None:
        """The run's folder, where it has one."""

    # Bumps when the run's events start over (a followed metrics.jsonl was rewound by a
    # resume): the viewer then folds them into a new state.
    generation: int

    def poll(self) -> list[Event]:
        """The events that arrived since the last poll; never blocks."""

    def send(self, command: str) -> None:
        """A command for the trainer, applied at its next step boundary."""

    @property
    def alive(self) -> bool:
        """Whether the trainer still runs."""

    @property
    def error(self) -> str | None:
        """Why the trainer ended, when it died without a final state, if known."""

    def close(self) -> None: ...


class LocalLink:
    generation = 0  # the trainer's own queue never starts over

    def __init__(self, runner: TrainingRunner, history: list[Event] | None = None):
        self.runner = runner
        folder = runner.session.folder
        self.run_dir = folder.path if folder is not None else None
        self._history = list(history or [])

    @classmethod
    def start(cls, session: TrainingSession) -> LocalLink:
        """Start training `session`; a resumed run brings its earlier metrics along,
        read before the trainer appends a line, so the charts show the whole run."""
        history = read_run_events(session.folder) if session.resumed_from is not None and session.folder else []
        return cls(TrainingRunner(session).start(), history)

    def poll(self) -> list[Event]:
        if self._history:
            history = self._history[:MAX_EVENTS_PER_POLL]
            del self._history[:MAX_EVENTS_PER_POLL]
            return history
        out: list[Event] = []
        while len(out) < MAX_EVENTS_PER_POLL:
            try:
                out.append(self.runner.events.get_nowait())
            except queue.Empty:
                break
        return out

    def send(self, command: str) -> None:
        self.runner.send(command)

    @property
    def alive(self) -> bool:
        return self.runner.is_alive()

    @property
    def error(self) -> str | None:
        """Why the trainer ended, if it failed: what the dashboard shows when no final state came."""
        if self.runner.error is not None:
            return f"{type(self.runner.error).__name__}: {self.runner.error}"
        return self.runner.trainer.error

    def close(self) -> None:
        pass


class ReplayLink:
    """A finished run's events, handed over once (benchmarks, previews)."""

    run_dir = None
    generation = 0
    error = None

    def __init__(self, events: list[Event]):
        self._pending = list(events)

    def poll(self) -> list[Event]:
        out = self._pending[:MAX_EVENTS_PER_POLL]
        del self._pending[:MAX_EVENTS_PER_POLL]
        return out

    def send(self, command: str) -> None:
        pass

    @property
    def alive(self) -> bool:
        return True  # keeps the dashboard showing the run as it was

    def close(self) -> None:
        pass
