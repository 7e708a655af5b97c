"""metrics.jsonl: events as one JSON object a line, and read back.

Written by the bus; read by the history screen, `runs show`, `watch` and a resume.
A line that does not parse (torn by a kill, damaged) is skipped, never passed on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .types import EVENT_TYPES, Event


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN/Infinity; a non-finite figure is written as null (in lists too:
    # a GPU field NVML does not report).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
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
        return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
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
            if isinstance(value, list) and f.type in ("list", list):
                value = [math.nan if v is None else v for v in value]
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
