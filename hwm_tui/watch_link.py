"""`hwm-tui watch`: the dashboard on a run that another process trains.

Events come from following the run's metrics.jsonl; commands go as files into
its commands/ folder, which the trainer reads at step boundaries. Nothing here
locks or writes anything the trainer waits on, so watching never slows it.
"""

from __future__ import annotations

import time
from pathlib import Path

from hwm_core.runs.inbox import send_to_run
from hwm_core.errors import RunError
from hwm_core.events.log import read_events
from hwm_core.events.types import Event
from hwm_core.runs.folder import RunFolder, effective_status
from hwm_core.runs.history import newest_running, resolve_run
from hwm_core.status import RUNNING

STATUS_CHECK_S = 1.0  # how often run.json is read to know if the trainer still lives
READ_AT_MOST_BYTES = 1 << 20  # of metrics.jsonl per poll (~40 ms of parsing)


class WatchLink:
    error = None  # another process's trainer: its failure is in run.json and the metrics

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.run_dir = folder.path
        self._offset = 0
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the metrics.jsonl being followed
        self._alive = True
        self._next_status_check = 0.0
        self.generation = 0  # bumps when metrics.jsonl was rewritten (a resume rewound it)

    def poll(self) -> list[Event]:
        file = self._stat()
        if file is None:
            return []
        identity, size = file
        # A resume replaces the file (a new inode) and may have written past our offset
        # before we look: a size check alone would read the new file from mid-line.
        if size < self._offset or (self._file is not None and identity != self._file):
            self._offset = 0
            self.generation += 1
        self._file = identity
        if size == self._offset:
            return []
        # In parts: a 60,000-step file is ~17 MB, and the screen must stay live while it loads.
        events, offset = read_events(self.folder.metrics, self._offset, max_bytes=READ_AT_MOST_BYTES)
        after = self._stat()
        if after is None or after[0] != identity:
            return []  # replaced while we read: the next poll starts the new file from its beginning
        self._offset = offset
        return events

    def _stat(self) -> tuple[tuple[int, int], int] | None:
        try:
            st = self.folder.metrics.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino), st.st_size

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
