"""One writer per run: the run folder's lock, who holds it, and deleting a run only when nobody does."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time

from ..errors import RunError
from .folder import RunFolder

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


def lock_held(folder: RunFolder) -> bool | None:
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
            raise RunError(
                f"cannot open {self.folder.lock_file} ({exc.strerror}): the run folder must be writable to train it"
            ) from None
        try:
            _flock_with_retries(fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _LOCK_BUSY:
                pid = self._holder_pid()
                who = f" (pid {pid})" if pid else ""
                raise RunError(
                    f"run {self.folder.id} is being trained by another process{who}: "
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
    if not (folder.path / "run.json").exists() and not folder.config_toml.exists() and not folder.metrics.exists():
        raise RunError(f"{folder.path} is not a run folder: nothing deleted")
    lock = RunLock(folder)
    lock.acquire()
    try:
        shutil.rmtree(folder.path)
    except OSError as exc:
        raise RunError(f"cannot delete {folder.path} ({exc.strerror}): check its permissions") from None
    finally:
        lock.release()
