"""A run's folder on disk: its files, its `run.json`, its lock and heartbeat.

    <runs-dir>/<run-id>/
        config.toml         the fully resolved configuration
        run.json            id, preset, status, times, device, versions, heartbeat, summary
        metrics.jsonl       every event, one JSON object a line
        state_stats.json    state normalisation from the train split
        checkpoints/        step_XXXXXXXX.safetensors, written atomically
        commands/           commands dropped by `hwm-tui watch`
        .lock               held (flock) by the one process that trains the run

Only the process holding the lock writes run.json; readers never write.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import re
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..runtime.atomic import fsync_dir, write_json_atomic
from ..errors import RunError
from ..status import INTERRUPTED, RUNNING
HEARTBEAT_INTERVAL_S = 5.0
# A running run whose heartbeat is older than this is taken as dead (kill -9, power loss).
HEARTBEAT_STALE_S = 60.0
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_runs_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("HWM_RUNS_DIR"):
        return Path(os.environ["HWM_RUNS_DIR"]).expanduser()
    return Path("runs")


def versions() -> dict[str, str]:
    import torch

    from .. import __version__
    return {"hwm_tui": __version__, "torch": torch.__version__, "python": platform.python_version()}


class RunFolder:
    """Paths and metadata of one run folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def config_toml(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def rolled_back_metrics(self) -> Path:
        return self.path / "metrics.rolled_back.jsonl"

    @property
    def state_stats(self) -> Path:
        return self.path / "state_stats.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(self.run_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} has no run.json: it is not a run folder") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise RunError(f"{self.run_json} cannot be read ({exc}): the run's record is damaged") from None
        if not isinstance(meta, dict):
            raise RunError(f"{self.run_json} does not hold a JSON object: the run's record is damaged")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.run_json, meta)


def new_run_id(preset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(preset).stem).strip("-") or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def create_run_folder(runs_dir: Path, preset: str, run_id: str | None = None) -> RunFolder:
    """A new, empty run folder; its id is the time and the preset unless given."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        probe = runs_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to the runs dir {runs_dir} ({exc.strerror or exc}): "
                       "pass --runs-dir with a writable folder or set HWM_RUNS_DIR") from None
    if run_id is not None and not RUN_ID_RE.match(run_id):
        raise RunError(f"run id {run_id!r} may hold only letters, digits, '.', '_' and '-'")
    base = run_id or new_run_id(preset)
    for n in range(1 if run_id else 1000):
        candidate = base + (f"-{n + 1}" if n else "")
        path = runs_dir / candidate
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"cannot create a run folder in {runs_dir} ({exc.strerror}): "
                           "free disk space or pass another --runs-dir") from None
        (path / "checkpoints").mkdir()
        # Both new entries on disk before anything in the run relies on them.
        fsync_dir(path)
        fsync_dir(runs_dir)
        return RunFolder(path)
    raise RunError(f"a run named {base} already exists in {runs_dir}: choose another id")


_LOCK_BUSY = (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN)
# Readers probe the lock with a brief shared flock (lock_held); a few quick retries
# keep such a probe from being mistaken for another trainer.
LOCK_RETRIES, LOCK_RETRY_S = 5, 0.02


def _flock_with_retries(fd: int) -> None:
    for attempt in range(LOCK_RETRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in _LOCK_BUSY or attempt == LOCK_RETRIES - 1:
                raise
            time.sleep(LOCK_RETRY_S)


def lock_held(folder: "RunFolder") -> bool | None:
    """Whether a process holds the run's lock now (a definite answer on this host);
    None when the lock file cannot be opened, and nothing is created or written."""
    try:
        fd = os.open(folder.lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return True if exc.errno in _LOCK_BUSY else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class RunLock:
    """One writer per run: an exclusive flock, released by the OS if the process dies."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.folder.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(f"cannot open {self.folder.lock_file} ({exc.strerror}): the run folder must be "
                           "writable to train it") from None
        try:
            _flock_with_retries(fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _LOCK_BUSY:
                pid = self._holder_pid()
                who = f" (pid {pid})" if pid else ""
                raise RunError(f"run {self.folder.id} is being trained by another process{who}: "
                               f"stop that one first, or follow it with `hwm-tui watch {self.folder.id}`"
                               ) from None
            raise
        self._fd = fd

    def _holder_pid(self) -> int | None:
        try:
            return int(self.folder.read_meta().get("pid") or 0) or None
        except (RunError, ValueError, TypeError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


def delete_run(folder: RunFolder) -> None:
    """Remove a run folder, unless a process is training it (its lock is held)."""
    if not (folder.path / "run.json").exists() and not folder.config_toml.exists() \
            and not folder.metrics.exists():
        raise RunError(f"{folder.path} is not a run folder: nothing deleted")
    lock = RunLock(folder)
    lock.acquire()
    try:
        shutil.rmtree(folder.path)
    except OSError as exc:
        raise RunError(f"cannot delete {folder.path} ({exc.strerror}): check its permissions") from None
    finally:
        lock.release()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(meta: dict[str, Any], now: float | None = None, *,
                     folder: RunFolder | None = None) -> str:
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


class RunRecord:
    """The writer's side of run.json: status changes and a heartbeat thread."""

    def __init__(self, folder: RunFolder, meta: dict[str, Any],
                 live_fields: Callable[[], dict[str, Any]] | None = None):
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


def resumed_meta(meta: dict[str, Any], *, from_step: int, max_steps: int, device: str,
                 world_size: int) -> dict[str, Any]:
    """run.json of a run that goes on from a checkpoint: running again, its resume recorded."""
    out = dict(meta)
    out.update(status=RUNNING, ended=None, max_steps=max_steps, device=device, world_size=world_size)
    out.pop("error", None)
    out.pop("summary", None)  # metrics were rewound; the cache no longer matches
    out["resumes"] = [*meta.get("resumes", []), {"time": time.time(), "from_step": from_step}]
    return out
