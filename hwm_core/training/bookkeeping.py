"""The trainer's record in run.json: the summary of what it wrote to metrics.jsonl
(kept by the bus's on_written callback), the heartbeat, and the final status."""

from __future__ import annotations

import time
from typing import Any

from ..events.bus import EventBus
from ..events.log import read_events
from ..events.run_state import RunState
from ..events.types import Event
from ..runs.folder import RunFolder
from ..runs.record import RunRecord
from .session import TrainingState


class RunBookkeeping:
    def __init__(self, folder: RunFolder | None, meta: dict[str, Any], state: TrainingState, bus: EventBus):
        self.folder = folder  # None on every rank but the one that writes the run folder
        self.meta = meta  # run.json as the session wrote it (new, or resumed)
        self.state = state
        self.bus = bus
        self.summary = RunState(curves=False)  # what run.json caches, as written to metrics.jsonl
        self.record: RunRecord | None = None

    def open(self) -> list[Event]:
        """Start the record (rank 0); returns the run's earlier events (a resumed run's
        history, rewound to its checkpoint), which the trainer's guard replays."""
        if self.folder is None:
            return []
        events, offset = read_events(self.folder.metrics)
        self.summary.add_all(events)
        self.summary.totals.metrics_offset = offset
        self.bus.on_written = self._on_written
        self.record = RunRecord(self.folder, self.meta, live_fields=self._live_fields)
        self.record.save()
        self.record.start_heartbeat()
        return events

    def close(self, status: str, error: str | None) -> None:
        if self.record is None:
            return
        self.record.stop_heartbeat()
        fields: dict[str, Any] = {"status": status, "ended": time.time()}
        if error:
            fields["error"] = error
        self.record.update(**fields)

    def _on_written(self, event: Event, end_offset: int) -> None:
        self.summary.add(event)
        self.summary.totals.metrics_offset = end_offset

    def _live_fields(self) -> dict[str, Any]:
        summary = self.bus.under_lock(lambda: self.summary.totals.to_json())
        return {"step": self.state.step, "summary": summary}
