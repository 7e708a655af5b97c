"""A subscriber's queue that the publisher never waits on.

The bus hands every event to each subscriber while it holds its lock, on the
training thread. A subscriber that writes somewhere slow (a network logger, a
stuck file system) must not make that thread wait, nor grow without bound: at
capacity the oldest event makes room for the newest, and the drops are counted
so the reader can say how many it lost.
"""

from __future__ import annotations

import threading
from collections import deque

from .types import Event


class DroppingQueue:
    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._events: deque[Event] = deque()
        self._capacity = capacity
        self._ready = threading.Condition(threading.Lock())
        self.dropped = 0  # events pushed out by newer ones, ever

    def put(self, event: Event) -> None:
        """Never blocks beyond the few instructions under the queue's own lock."""
        with self._ready:
            if len(self._events) >= self._capacity:
                self._events.popleft()
                self.dropped += 1
            self._events.append(event)
            self._ready.notify()

    def get(self, timeout: float) -> Event | None:
        """The oldest event, waiting up to `timeout` seconds for one; None when none came."""
        with self._ready:
            if not self._events:
                self._ready.wait(timeout)
            return self._events.popleft() if self._events else None

    def __len__(self) -> int:
        with self._ready:
            return len(self._events)
