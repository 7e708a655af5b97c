"""`hwm-tui watch`: the dashboard on a run that another process trains.

Events come from following the run's metrics.jsonl; commands go as files into
its commands/ folder, which the trainer reads at step boundaries. Nothing here
locks or writes anything the trainer waits on, so watching never slows it.
"""

from __future__ import annotations

import time
from pathlib import Path

from hwm_core.errors import RunError
from hwm_core.events.follow import MetricsFollower
from hwm_core.events.types import Event
from hwm_core.runs.folder import RunFolder
from hwm_core.runs.history import newest_running, resolve_run
from hwm_core.runs.inbox import send_to_run
from hwm_core.runs.liveness import effective_status
from hwm_core.status import RUNNING

STATUS_CHECK_S = 1.0  # how often run.json is read to know if the trainer still lives
READ_AT_MOST_BYTES = 1 << 20  # of metrics.jsonl per poll (~40 ms of parsing)


class WatchLink:
    error = None  # another process's trainer: its failure is in run.json and the metrics

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.run_dir = folder.path
        self._metrics = MetricsFollower(folder.metrics)
        self._alive = True
        self._next_status_check = 0.0
        self.generation = 0  # bumps when metrics.jsonl was rewritten (a resume rewound it)

    def poll(self) -> list[Event]:
        # In parts: a 60,000-step file is ~17 MB, and the screen must stay live while it loads.
        read = self._metrics.poll(max_bytes=READ_AT_MOST_BYTES)
        if read.rewound:
            self.generation += 1
        return read.events

    def send(self, command: str) -> None:
        send_to_run(self.folder.path, command)

    @property
    def alive(self) -> bool:
        now = time.monotonic()
        if now >= self._next_status_check:
            self._next_status_check = now + STATUS_CHECK_S
            try:
                self._alive = effective_status(self.folder.read_meta(), folder=self.folder) == RUNNING
            except RunError:
                self._alive = False
        return self._alive

    def close(self) -> None:
        pass


def open_watch_link(run: str | None, runs_dir: Path) -> WatchLink:
    if run is None:
        folder = newest_running(runs_dir)
        if folder is None:
            raise RunError(f"no running run in {runs_dir}: give a run id or path (hwm-tui runs list shows them)")
    else:
        folder = resolve_run(runs_dir, run)
    return WatchLink(folder)
