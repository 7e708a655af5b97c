"""The writer's side of run.json: a new or resumed run's record, its status changes and its heartbeat.

Only the process holding the run's lock writes run.json; readers never write.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..status import RUNNING
from .folder import RunFolder

HEARTBEAT_INTERVAL_S = 5.0


def versions() -> dict[str, str]:
    import torch

    from .. import __version__

    return {"hwm_tui": __version__, "torch": torch.__version__, "python": platform.python_version()}


class RunRecord:
    """The writer's side of run.json: status changes and a heartbeat thread."""

    def __init__(
        self, folder: RunFolder, meta: dict[str, Any], live_fields: Callable[[], dict[str, Any]] | None = None
    ):
        self.folder = folder
        self.meta = meta
        self._live_fields = live_fields
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.write_failed: str | None = None

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="hwm-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL_S):
            self.save()

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.meta.update(fields)
        self.save()

    def save(self) -> None:
        with self._lock:
            if self._live_fields is not None:
                self.meta.update(self._live_fields())
            self.meta["heartbeat"] = time.time()
            self.meta["pid"] = os.getpid()
            self.meta["host"] = socket.gethostname()
            try:
                self.folder.write_meta(self.meta)
                self.write_failed = None
            except OSError as exc:
                # The previous run.json stays intact; the next beat tries again.
                self.write_failed = exc.strerror or str(exc)

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_INTERVAL_S + 1)


def new_meta(run_id: str, preset: str, device: str, max_steps: int, world_size: int) -> dict[str, Any]:
    return {
        "id": run_id,
        "preset": preset,
        "status": RUNNING,
        "started": time.time(),
        "ended": None,
        "device": device,
        "world_size": world_size,
        "versions": versions(),
        "command": " ".join(sys.argv),
        "step": 0,
        "max_steps": max_steps,
        "resumes": [],
    }


def resumed_meta(
    meta: dict[str, Any], *, from_step: int, max_steps: int, device: str, world_size: int
) -> dict[str, Any]:
    """run.json of a run that goes on from a checkpoint: running again, its resume recorded."""
    out = dict(meta)
    out.update(status=RUNNING, ended=None, max_steps=max_steps, device=device, world_size=world_size)
    out.pop("error", None)
    out.pop("summary", None)  # metrics were rewound; the cache no longer matches
    out["resumes"] = [*meta.get("resumes", []), {"time": time.time(), "from_step": from_step}]
    return out
