"""Whether a run marked running in its run.json is still alive: its lock or pid on this
host, its heartbeat from elsewhere."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from ..status import INTERRUPTED, RUNNING
from .folder import RunFolder
from .lock import lock_held

# A running run whose heartbeat is older than this is taken as dead (kill -9, power loss).
HEARTBEAT_STALE_S = 60.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(meta: dict[str, Any], now: float | None = None, *, folder: RunFolder | None = None) -> str:
    """The status a run really has: 'running' in run.json is believed only while its
    process lives. On this host the run lock (with `folder`), else the pid, decides;
    a stale heartbeat alone may be a process that cannot write run.json (disk full).
    From another host only the heartbeat tells."""
    status = meta.get("status", "unknown")
    if status != RUNNING:
        return status
    if meta.get("host") == socket.gethostname():
        held = lock_held(folder) if folder is not None else None
        if held is not None:
            return RUNNING if held else INTERRUPTED
        pid = meta.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            return RUNNING if pid_alive(pid) else INTERRUPTED
    now = time.time() if now is None else now
    heartbeat = meta.get("heartbeat") or 0
    return INTERRUPTED if now - heartbeat > HEARTBEAT_STALE_S else RUNNING
