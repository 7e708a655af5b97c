"""Running a prepared session in a background thread: what the CLI and the
dashboard start, send commands to, and read events from."""

from __future__ import annotations

import queue
import threading

from ..events.bus import EventBus
from ..events.types import Event
from ..runs.inbox import CommandInbox
from ..runtime.distributed import bind_thread_to_device
from .session import TrainingSession
from .trainer import Trainer


class TrainingRunner:
    def __init__(self, session: TrainingSession):
        self.session = session
        folder = session.folder
        self.bus = EventBus(folder.metrics if folder is not None else None)
        self.events: queue.SimpleQueue[Event] = self.bus.subscribe()
        self.inbox = CommandInbox(folder.path if folder is not None else None)
        self.trainer = Trainer(session, self.bus, self.inbox)
        self.status: str | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hwm-trainer", daemon=True)

    @property
    def run_id(self) -> str:
        return self.session.folder.id if self.session.folder is not None else ""

    def start(self) -> TrainingRunner:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            # This thread's current CUDA device is the run's (rank k's GPU k), not GPU 0.
            bind_thread_to_device(self.session.device)
            self.status = self.trainer.run()
        except BaseException as exc:  # noqa: BLE001 - the status is already 'failed' on disk; keep the error
            self.status = "failed"
            self.error = exc
        finally:
            self.bus.close()
            self.inbox.close()  # while the run lock is still ours
            self.session.close()

    def send(self, command: str) -> None:
        self.inbox.send(command)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()
