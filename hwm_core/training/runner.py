"""Running a prepared session in a background thread: what the CLI and the
dashboard start, send commands to, and read events from."""

from __future__ import annotations

import queue
import threading

from ..events.bus import EventBus
from ..events.types import Event
from ..mirrors.base import MirrorContext
from ..mirrors.thread import MirrorThread
from ..mirrors.wandb_run import FOLDER as WANDB_FOLDER
from ..mirrors.wandb_run import wandb_mode
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
        self.mirrors = mirror_thread(session, self.bus)
        self.status: str | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hwm-trainer", daemon=True)

    @property
    def run_id(self) -> str:
        return self.session.folder.id if self.session.folder is not None else ""

    def start(self) -> TrainingRunner:
        if self.mirrors is not None:
            self.mirrors.start(self.bus)  # before the first event
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
            if self.mirrors is not None:
                self.mirrors.close()  # what they hold is written while the bus still takes their warnings
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


def mirror_thread(session: TrainingSession, bus: EventBus) -> MirrorThread | None:
    """The thread mirroring this run to TensorBoard / W&B (log.mirrors); None without
    mirrors, and on every rank but the one that writes the run folder."""
    names, folder = session.config.log.mirrors, session.folder
    if not names or folder is None:
        return None
    context = MirrorContext(
        run_id=folder.id,
        run_dir=folder.path,
        config=session.config.to_dict(),
        start_step=session.state.step,
        resumed=session.resumed_from is not None,
        wandb_project=session.config.log.wandb_project,
    )
    if "tensorboard" in names:
        session.notices.append(f"mirroring to TensorBoard: tensorboard --logdir {folder.path.parent}")
    if "wandb" in names and wandb_mode() == "offline":
        session.notices.append(
            f"mirroring to W&B offline (no WANDB_API_KEY, no `wandb login`): upload it later with "
            f"wandb sync {folder.path / WANDB_FOLDER}/offline-run-*"
        )
    return MirrorThread.for_names(list(names), context, bus.publish)
