"""SIGINT, SIGTERM and SIGHUP while a run trains in this process: the first signal
stops the run, the second exits.

The trainer runs in a thread of its own, and signals reach only the main thread, so
a handler never interrupts a step: the first signal asks the trainer to checkpoint at
its next step boundary and mark the run interrupted (the exit code is then 128 + that
signal); once a stop has been asked for, by a signal or by q, another signal leaves at
once (os._exit: the trainer thread is not waited for), the last checkpoint being the
resume point. `train --headless`, the dashboard and `train --nproc`'s launcher (where a
later signal kills the ranks) all go through `StopSignals`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """`stop(signum)` asks the run to stop (and says so); `stop_now` is what a first signal
    does, `installed()` puts the handlers in place while a block runs."""

    def __init__(self, stop: Callable[[int], None], at_once: Callable[[int], None] | None = None):
        self._stop = stop
        # what a later signal does: leave this process (torchrun's launcher kills its ranks instead)
        self._at_once = at_once or (lambda signum: os._exit(128 + signum))
        self.received: int | None = None  # the signal that stopped the run, if one did
        self.stopping = False  # a stop was asked for: by a signal, or by the user (q)

    def stop_now(self, signum: int) -> None:
        self.received, self.stopping = signum, True
        self._stop(signum)

    def handle(self, signum: int, frame: Any = None) -> None:
        if self.stopping:
            self._at_once(signum)
        else:
            self.stop_now(signum)

    @contextmanager
    def installed(self, *, hangup: bool = True) -> Iterator[None]:
        """These handlers while the block runs, the previous ones after it. `hangup=False`
        ignores SIGHUP: once the app has left a terminal that then closes, the hang-up
        must not cut the last checkpoint short."""
        handled = STOP_SIGNALS if hangup else (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle) for sig in handled}
        if not hangup:
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
