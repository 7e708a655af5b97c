"""The bus that carries the trainer's events: to in-process subscribers (a thread-safe
queue each, read by the dashboard) and, as one JSON line each, to the run's metrics.jsonl."""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from .log import event_to_json
from .types import Event, WarningEvent

T = TypeVar("T")


class Subscriber(Protocol):
    """Anything that takes events without blocking: a queue.SimpleQueue, a DroppingQueue."""

    def put(self, event: Event) -> None: ...


class EventBus:
    """Publishes events to subscribers and appends them to metrics.jsonl.

    A failed append (disk full) must not stop training: the line is kept and
    written with the next one, and subscribers hear one warning about it.
    """

    def __init__(self, log_path: Path | None = None):
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        # Unbuffered: a line is with the OS as soon as publish returns, so a killed
        # process loses at most the line being written.
        self._file = open(log_path, "ab", buffering=0) if log_path is not None else None  # noqa: SIM115 - held until close()
        self._offset = os.fstat(self._file.fileno()).st_size if self._file is not None else 0
        self._backlog: list[tuple[Event, bytes]] = []
        self._write_failed = False
        # Called under the bus lock for each event once its line is on disk, with the
        # file offset after it; run summaries use it to know what they cover.
        self.on_written: Callable[[Event, int], None] | None = None

    def subscribe(self) -> queue.SimpleQueue[Event]:
        q: queue.SimpleQueue = queue.SimpleQueue()
        self.attach(q)
        return q

    def attach(self, subscriber: Subscriber) -> None:
        """Every event from now on also goes to `subscriber.put`, called under the bus lock
        on the publishing thread: it must return at once (mirrors use a DroppingQueue)."""
        with self._lock:
            self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        with self._lock:
            if self._file is not None:
                self._backlog.append((event, (event_to_json(event) + "\n").encode()))
                self._write_backlog(getattr(event, "step", 0))
            for q in self._subscribers:
                q.put(event)

    def _write_backlog(self, step: int) -> None:
        # After a failed write a torn fragment may end the file: a newline first
        # makes it a damaged line of its own, which readers skip.
        file = self._file
        assert file is not None, "the backlog is written only while metrics.jsonl is open"
        lead = b"\n" if self._write_failed else b""
        data = lead + b"".join(line for _, line in self._backlog)
        try:
            view = memoryview(data)
            while view:
                view = view[file.write(view) :]
        except OSError as exc:
            if not self._write_failed:
                warning = WarningEvent(
                    step=step,
                    kind="disk",
                    value=float(len(self._backlog)),
                    message=f"cannot write metrics.jsonl ({exc.strerror}): free disk space; lines are kept in memory",
                )
                for q in self._subscribers:
                    q.put(warning)
            self._write_failed = True
            if len(self._backlog) > 100_000:
                del self._backlog[: len(self._backlog) - 100_000]
            return
        if self._write_failed:  # a partial write moved the end: ask the file
            self._offset = os.fstat(file.fileno()).st_size - len(data) + len(lead)
        for event, line in self._backlog:
            self._offset += len(line)
            if self.on_written is not None:
                self.on_written(event, self._offset)
        self._backlog.clear()
        self._write_failed = False

    def sync(self) -> None:
        """Put every line published so far on disk (fsync); call before a checkpoint
        save, so checkpoint N never exists without the metrics up to step N. Raises
        OSError when lines are still unwritten or the fsync fails: the save must not go on."""
        with self._lock:
            if self._file is None:
                return
            if self._backlog:
                self._write_backlog(getattr(self._backlog[-1][0], "step", 0))
            if self._backlog:
                raise OSError(errno.EIO, f"{len(self._backlog)} metrics.jsonl lines are not written yet (disk full?)")
            os.fsync(self._file.fileno())

    def under_lock(self, fn: Callable[[], T]) -> T:
        """Run fn while no event is being published (for consistent snapshots)."""
        with self._lock:
            return fn()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                if self._backlog:
                    self._write_backlog(0)
                try:
                    self._file.close()
                except OSError:
                    pass
                self._file = None
