"""Following a growing metrics.jsonl: what it gained since the last look, and whether a
resume rewound it.

A resume rewrites metrics.jsonl (a new file, cut back to its checkpoint). The one rule
every reader follows: the file was rewound when it is another file than the one
followed, or shorter than where the last look stopped (a missing file is an empty
one); the reader then starts over from its first line. `watch`, the history and
comparison screens, run listings and `bench dashboard` all follow a run through this class.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from .log import read_events
from .types import Event

REREADS = 3  # a file replaced while it is read is read again from its start, this many times at most


@dataclass
class MetricsRead:
    events: list[Event]
    rewound: bool  # the file started over since the last look: these events begin the run anew


class MetricsFollower:
    def __init__(self, path: Path, offset: int = 0):
        self.path = path
        self.offset = offset  # bytes read so far: complete lines only
        self.file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file followed; None: not seen yet

    def copy(self) -> MetricsFollower:
        return copy.copy(self)

    def poll(self, max_bytes: int = 0) -> MetricsRead:
        """The events appended since the last poll (at most about `max_bytes` of them, 0: all)."""
        rewound = False
        for _ in range(REREADS):
            identity, size = self._stat()
            if size < self.offset or (self.file is not None and identity not in (None, self.file)):
                self.offset, rewound = 0, True
            if identity is not None:
                self.file = identity
            if identity is None or size == self.offset:
                return MetricsRead([], rewound)
            events, offset = self._read(max_bytes)
            if self._stat()[0] == identity:
                self.offset = offset
                return MetricsRead(events, rewound)
            # replaced while we read (a resume): what was read may be a mix, read the new file instead
        return MetricsRead([], rewound)

    def _read(self, max_bytes: int) -> tuple[list[Event], int]:
        """The complete lines from where the last read stopped, and the offset after them."""
        return read_events(self.path, self.offset, max_bytes=max_bytes)

    def _stat(self) -> tuple[tuple[int, int] | None, int]:
        try:
            st = self.path.stat()
        except OSError:
            return None, 0
        return (st.st_dev, st.st_ino), st.st_size
