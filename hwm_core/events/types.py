"""Typed events the trainer publishes, and the bus that carries them.

Every event goes to in-process subscribers (a thread-safe queue each, read by the
dashboard) and, as one JSON object a line, to the run's `metrics.jsonl`, which is
what the history screen, `runs show` and `watch` read later.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")


def _now() -> float:
    return time.time()


@dataclass
class StepEvent:
    step: int
    loss: float
    lr: float
    grad_norm_pre_clip: float
    grad_norm_post_clip: float
    grad_max_abs: float
    grad_min_abs: float
    clipped: bool
    samples_per_s: float
    tokens_per_s: float
    step_time_s: float
    memory_bytes: int
    skipped: bool = False
    data_wait_s: float = 0.0   # of step_time_s, how long the step waited for its micro-batches
    time: float = field(default_factory=_now)
    type: str = "step"


@dataclass
class EvalEvent:
    step: int
    val_loss: float
    val_token_acc: float
    time: float = field(default_factory=_now)
    type: str = "eval"


@dataclass
class WarningEvent:
    step: int
    kind: str          # instability | vanishing | nonfinite | skipped | checkpoint | data | disk
    value: float
    message: str
    time: float = field(default_factory=_now)
    type: str = "warning"


@dataclass
class CheckpointEvent:
    step: int
    path: str
    seconds: float
    bytes: int
    time: float = field(default_factory=_now)
    type: str = "checkpoint"


@dataclass
class CheckpointFailedEvent:
    step: int
    error: str
    time: float = field(default_factory=_now)
    type: str = "checkpoint_failed"


@dataclass
class CompileEvent:
    """The first step of a compiled run is done: how long compiling took, or why it
    failed (the run then goes on eager)."""

    step: int
    mode: str
    seconds: float
    ok: bool
    message: str = ""
    time: float = field(default_factory=_now)
    type: str = "compile"


@dataclass
class SamplesEvent:
    """New predictions of the fixed val samples are in `path` (samples/ of the run)."""

    step: int
    path: str
    count: int
    time: float = field(default_factory=_now)
    type: str = "samples"


@dataclass
class GpuEvent:
    """Each of the run's GPUs as NVML reads it (lists in the order of `index`)."""

    step: int
    index: list       # CUDA device numbers
    utilization: list  # % of the last sample period a kernel ran
    memory_used: list  # bytes, the whole GPU's (other processes' too)
    memory_total: list
    power_w: list
    temperature_c: list
    time: float = field(default_factory=_now)
    type: str = "gpu"


@dataclass
class StateEvent:
    """running, paused, checkpointing, completed, interrupted, failed."""

    state: str
    step: int
    message: str = ""
    time: float = field(default_factory=_now)
    type: str = "state"


@dataclass
class StartEvent:
    """What a viewer needs to know about the run before the first step."""

    run_id: str
    run_dir: str
    preset: str
    device: str
    start_step: int
    max_steps: int
    peak_lr: float
    warmup_steps: int
    schedule: str
    max_grad_norm: float
    global_batch: int
    world_size: int
    num_parameters: int
    tokens_per_sample: int
    codebook_size: int
    resumed: bool = False
    micro_batch: int = 0        # samples per forward/backward on each process (0: not recorded)
    grad_accum_steps: int = 0
    compile: str = "off"
    time: float = field(default_factory=_now)
    type: str = "start"


Event = (StepEvent | EvalEvent | WarningEvent | CheckpointEvent | CheckpointFailedEvent | CompileEvent
         | SamplesEvent | GpuEvent | StateEvent | StartEvent)
EVENT_TYPES: dict[str, type] = {cls.__dataclass_fields__["type"].default: cls for cls in
                                (StepEvent, EvalEvent, WarningEvent, CheckpointEvent, CheckpointFailedEvent,
                                 CompileEvent, SamplesEvent, GpuEvent, StateEvent, StartEvent)}


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN/Infinity; a non-finite figure is written as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def event_to_json(event: Event) -> str:
    data = {k: _finite_or_none(v) for k, v in dataclasses.asdict(event).items()}
    return json.dumps(data, separators=(",", ":"))


def _fits(value: Any, annotation: Any) -> bool:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in value)
    return True


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """An event from a metrics line; None for a line of an unknown type."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        return None
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, f in names.items():
        if name in data:
            value = data[name]
            if value is None and f.type in ("float", float):
                value = math.nan
            if not _fits(value, f.type):
                return None  # a damaged line ("step": null, say) is skipped, not passed on to break readers
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError:
        return None


def read_events(path: Path, offset: int = 0, max_bytes: int = 0) -> tuple[list[Event], int]:
    """Events in `path` from byte `offset`; returns them and the offset after the
    last complete line. A torn last line (killed writer) is left for later, and a
    damaged line in the middle is skipped. `max_bytes` reads a big file in parts."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(max_bytes) if max_bytes else fh.read()
    except OSError:  # missing or unreadable: nothing to show yet
        return [], offset
    end = data.rfind(b"\n")
    if end < 0 and max_bytes and len(data) == max_bytes:
        return read_events(path, offset)  # one line longer than a part: read it whole
    if end < 0:
        return [], offset
    events = []
    for line in data[: end + 1].splitlines():
        event = parse_line(line)
        if event is not None:
            events.append(event)
    return events, offset + end + 1


def parse_line(line: bytes | str) -> Event | None:
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return event_from_dict(data) if isinstance(data, dict) else None


def iter_events(path: Path) -> Iterator[Event]:
    events, _ = read_events(path)
    yield from events


class EventBus:
    """Publishes events to subscribers and appends them to metrics.jsonl.

    A failed append (disk full) must not stop training: the line is kept and
    written with the next one, and subscribers hear one warning about it.
    """

    def __init__(self, log_path: Path | None = None):
        self._lock = threading.Lock()
        self._subscribers: list[queue.SimpleQueue] = []
        # Unbuffered: a line is with the OS as soon as publish returns, so a killed
        # process loses at most the line being written.
        self._file = open(log_path, "ab", buffering=0) if log_path is not None else None
        self._offset = os.fstat(self._file.fileno()).st_size if self._file is not None else 0
        self._backlog: list[tuple[Event, bytes]] = []
        self._write_failed = False
        # Called under the bus lock for each event once its line is on disk, with the
        # file offset after it; run summaries use it to know what they cover.
        self.on_written: Callable[[Event, int], None] | None = None

    def subscribe(self) -> "queue.SimpleQueue[Event]":
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._subscribers.append(q)
        return q

    def publish(self, event: Event) -> None:
        with self._lock:
            if self._file is not None:
                self._backlog.append((event, (event_to_json(event) + "\n").encode()))
                self._write_backlog(getattr(event, "step", 0))
            for q in self._subscribers:
                q.put(event)

    def _write_backlog(self, step: int) -> None:
        # After a failed write a torn fragment may end the file: a newline first
        # makes it a damaged line of its own, which readers skip.
        lead = b"\n" if self._write_failed else b""
        data = lead + b"".join(line for _, line in self._backlog)
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view):]
        except OSError as exc:
            if not self._write_failed:
                warning = WarningEvent(step=step, kind="disk", value=float(len(self._backlog)),
                                       message=f"cannot write metrics.jsonl ({exc.strerror}): "
                                               "free disk space; lines are kept in memory")
                for q in self._subscribers:
                    q.put(warning)
            self._write_failed = True
            if len(self._backlog) > 100_000:
                del self._backlog[: len(self._backlog) - 100_000]
            return
        if self._write_failed:  # a partial write moved the end: ask the file
            self._offset = os.fstat(self._file.fileno()).st_size - len(data) + len(lead)
        for event, line in self._backlog:
            self._offset += len(line)
            if self.on_written is not None:
                self.on_written(event, self._offset)
        self._backlog.clear()
        self._write_failed = False

    def sync(self) -> None:
        """Put every line published so far on disk (fsync); call before a checkpoint
        save, so checkpoint N never exists without the metrics up to step N. Raises
        OSError when lines are still unwritten or the fsync fails: the save must not go on."""
        with self._lock:
            if self._file is None:
                return
            if self._backlog:
                self._write_backlog(getattr(self._backlog[-1][0], "step", 0))
            if self._backlog:
                raise OSError(errno.EIO, f"{len(self._backlog)} metrics.jsonl lines are not written yet "
                                         "(disk full?)")
            os.fsync(self._file.fileno())

    def under_lock(self, fn: Callable[[], T]) -> T:
        """Run fn while no event is being published (for consistent snapshots)."""
        with self._lock:
            return fn()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                if self._backlog:
                    self._write_backlog(0)
                try:
                    self._file.close()
                except OSError:
                    pass
                self._file = None
