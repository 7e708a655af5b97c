"""The mirror thread: takes the bus's events from a DroppingQueue and hands each to
every mirror, so the training thread never waits on a logger.

A mirror that fails (its package broken, a full disk, W&B refusing a key) is
dropped with one warning and the others go on; so does training. If the mirrors
fall behind by more than the queue holds, the oldest events are dropped and the
count is published as a warning. Warnings go back on the bus (metrics.jsonl, the
dashboard), published from this thread, never from inside the bus's call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

from ..events.dropping_queue import DroppingQueue
from ..events.types import Event, WarningEvent
from .base import Mirror, MirrorContext
from .opening import opener

CAPACITY = 10_000  # events (a few MB): minutes of a fast run's steps
DROP_REPORT_EVERY_S = 60.0  # a mirror that stays behind is told about once a minute, not every event
CLOSE_TIMEOUT_S = 120.0  # at the run's end, how long W&B may take to finish its upload
WARNING_KIND = "mirror"


class MirrorThread:
    def __init__(
        self,
        openers: list[tuple[str, Callable[[], Mirror]]],
        publish: Callable[[Event], None],
        *,
        capacity: int = CAPACITY,
    ):
        self.queue = DroppingQueue(capacity)
        self.openers = openers
        self.publish = publish
        self.mirrors: list[Mirror] = []
        self.failed: list[str] = []  # names of mirrors that stopped
        self.busy: str | None = None  # the mirror being called right now (who is stuck, at close)
        self._step = 0
        self._reported_drops = 0
        self._drops_reported_at = 0.0
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hwm-mirrors", daemon=True)

    @classmethod
    def for_names(cls, names: list[str], context: MirrorContext, publish: Callable[[Event], None]) -> MirrorThread:
        return cls([(name, opener(name, context)) for name in names], publish)

    def start(self, bus) -> MirrorThread:
        """Subscribe to `bus` (an EventBus) and start; call before the first event is published."""
        bus.attach(self.queue)
        self._thread.start()
        return self

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Write what is queued, close every mirror; False if they did not finish in `timeout`
        (the thread is left behind, a daemon, and a warning says which mirror hung)."""
        self._closing.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return True
        self._warn(
            f"the {self.busy or 'mirror'} mirror did not finish within {timeout:.0f} s: its last "
            "events may be missing there (metrics.jsonl has them all)"
        )
        return False

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        for name, open_mirror in self.openers:
            mirror = self._call(name, open_mirror)
            if mirror is not None:
                self.mirrors.append(mirror)
                self._pass_on_notices(mirror)
        while True:
            event = self.queue.get(timeout=0.25)
            if event is None:
                if self._closing.is_set():
                    break
                continue
            self._step = max(self._step, getattr(event, "step", 0))
            self._report_drops()
            for mirror in list(self.mirrors):
                if self._call(mirror.name, partial(mirror.write, event), mirror) is not None:
                    self._pass_on_notices(mirror)
        self._report_drops(final=True)
        for mirror in list(self.mirrors):
            self._call(mirror.name, mirror.close, mirror)
        self.busy = None

    def _call(self, name: str, fn: Callable, mirror: Mirror | None = None):
        """fn(); on any failure the mirror is dropped with one warning. Returns fn's
        result (True for a write), None when it failed."""
        self.busy = name
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - any logger failure: warn once, training goes on
            if mirror is not None and mirror in self.mirrors:
                self.mirrors.remove(mirror)
                try:
                    mirror.close()
                except Exception:  # noqa: BLE001 - it already failed; its close may too
                    pass
            self.failed.append(name)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self._warn(
                f"the {name} mirror stopped ({type(exc).__name__}{': ' + first if first else ''}); "
                "training goes on and metrics.jsonl keeps every step"
            )
            return None
        return True if result is None else result

    def _pass_on_notices(self, mirror: Mirror) -> None:
        while mirror.notices:
            self._warn(mirror.notices.pop(0))

    def _report_drops(self, final: bool = False) -> None:
        dropped = self.queue.dropped
        due = final or not self._reported_drops or time.monotonic() - self._drops_reported_at >= DROP_REPORT_EVERY_S
        if dropped > self._reported_drops and due:
            self._warn(
                f"the mirrors fell behind: {dropped} events dropped so far (oldest first); "
                "metrics.jsonl keeps every one (hwm-tui runs export --tensorboard rewrites them all)",
                value=float(dropped),
            )
            self._reported_drops = dropped
            self._drops_reported_at = time.monotonic()

    def _warn(self, message: str, value: float = 0.0) -> None:
        self.publish(WarningEvent(step=self._step, kind=WARNING_KIND, value=value, message=message))
