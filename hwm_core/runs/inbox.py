"""Commands to a running trainer: pause, resume, checkpoint now, stop.

The trainer applies them at the next step boundary. They arrive in-process (the
dashboard's thread) or as small files in the run's `commands/` folder, so a
dashboard in another terminal (`hwm-tui watch`) can steer a headless run.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import sys
import time
import uuid
from pathlib import Path

PAUSE, RESUME, CHECKPOINT, STOP = "pause", "resume", "checkpoint", "stop"
COMMANDS = (PAUSE, RESUME, CHECKPOINT, STOP)
COMMANDS_DIR = "commands"
FILE_POLL_INTERVAL_S = 0.25  # how often the trainer looks at the folder, at most


# Fallback for process_start_time: when hwm_core was imported (early in a CLI process)
# if the package records it, else when this module was.
_IMPORTED_AT = getattr(sys.modules["hwm_core"], "IMPORTED_AT", time.time())
# A start further back than this before the import is taken as a misread clock.
MAX_IMPORT_DELAY_S = 600.0


@functools.cache
def process_start_time() -> float:
    """When this process started (wall clock), read once. Linux: its start in clock
    ticks after boot from /proc/self/stat, placed on the wall clock through
    CLOCK_BOOTTIME, which counts from the same boot; elsewhere, or if that looks
    wrong, the time this module was imported."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            # Field 22 (starttime); the command name (field 2) may hold spaces, so count after ')'.
            started_ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT
    started = time.time() - age
    return started if _IMPORTED_AT - MAX_IMPORT_DELAY_S <= started <= _IMPORTED_AT else _IMPORTED_AT


def send_to_run(run_dir: Path, command: str) -> Path:
    """Drop a command for the trainer of `run_dir`; written whole, then renamed in."""
    if command not in COMMANDS:
        raise ValueError(command)
    inbox = run_dir / COMMANDS_DIR
    inbox.mkdir(exist_ok=True)
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    tmp = inbox / f".{name}.tmp"
    tmp.write_text(json.dumps({"command": command, "time": time.time(), "pid": os.getpid()}))
    final = inbox / f"{name}.json"
    os.replace(tmp, final)
    return final


class CommandInbox:
    def __init__(self, run_dir: Path | None = None):
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._dir = run_dir / COMMANDS_DIR if run_dir is not None else None
        self._next_scan = 0.0
        if self._dir is not None:
            self._dir.mkdir(exist_ok=True)
            self._discard_stale(self._dir)

    def _discard_stale(self, folder: Path) -> None:
        """Commands sent before this process started were meant for an earlier one;
        later ones (a stop from the launcher's Ctrl-C, a `p` from `hwm-tui watch` while
        the data is checked) are for us, and the first poll applies them."""
        started = process_start_time()
        for path in folder.glob("*.json"):
            if _sent_at(path) < started:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """The trainer is done: commands still waiting were for it, and must not reach
        a later resume of the run in this same process (the dashboard's `r`)."""
        if self._dir is None:
            return
        try:
            for path in self._dir.glob("*.json"):
                path.unlink(missing_ok=True)
        except OSError:  # left for the next trainer's start-time check
            pass

    def send(self, command: str) -> None:
        if command not in COMMANDS:
            raise ValueError(command)
        self._queue.put(command)

    def poll(self) -> list[str]:
        """Every command waiting now, oldest first; never blocks."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        now = time.monotonic()
        if self._dir is not None and now >= self._next_scan:
            self._next_scan = now + FILE_POLL_INTERVAL_S
            out.extend(self._read_files(self._dir))
        return out

    def wait(self, timeout: float) -> list[str]:
        """Block up to `timeout` s for commands (used while paused)."""
        got = self.poll()
        if got:
            return got
        try:
            first = self._queue.get(timeout=min(timeout, FILE_POLL_INTERVAL_S))
        except queue.Empty:
            return self.poll()
        return [first, *self.poll()]

    def _read_files(self, folder: Path) -> list[str]:
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json"))
        except OSError:
            return []
        out = []
        for name in names:
            path = folder / name
            try:
                command = json.loads(path.read_text()).get("command")
            except (OSError, ValueError, AttributeError):
                command = None
            path.unlink(missing_ok=True)
            if command in COMMANDS:
                out.append(command)
        return out


def _sent_at(path: Path) -> float:
    """The sender's clock in the file, else its modification time; 0 if unreadable."""
    try:
        sent = json.loads(path.read_text()).get("time")
        if isinstance(sent, (int, float)) and not isinstance(sent, bool):
            return float(sent)
        return path.stat().st_mtime
    except (OSError, ValueError, AttributeError):
        return 0.0


# Ranks must apply the same commands at the same step boundary, so rank 0's
# commands travel to the others as one number inside a collective they already make.
_BITS = {PAUSE: 1, RESUME: 2, CHECKPOINT: 4, STOP: 8}


def encode_commands(commands: list[str]) -> int:
    """The commands as bits; of pause and resume only the last one given counts."""
    code = 0
    for command in commands:
        if command in (PAUSE, RESUME):
            code &= ~(_BITS[PAUSE] | _BITS[RESUME])
        code |= _BITS[command]
    return code


def decode_commands(code: int) -> list[str]:
    """In the order they are applied: checkpoint, then pause or resume, then stop."""
    return [c for c in (CHECKPOINT, PAUSE, RESUME, STOP) if code & _BITS[c]]
