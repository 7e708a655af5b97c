"""Snapshots of the main and history screens at fixed sizes, from scripted runs.

Update them after an intended change with: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hwm_tui.app import HwmApp
from tests.tui_fakes import FakeLink, fixed_clock, prepared_runs, scripted_events


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


async def settle(pilot) -> None:
    await pilot.pause(0.8)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_dashboard(snap_compare, size):
    app = HwmApp(link=FakeLink(scripted_events(300)), runs_dir=Path("/runs"), clock=fixed_clock)
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_dashboard_finished(snap_compare):
    events = scripted_events(600)
    app = HwmApp(link=FakeLink(events), runs_dir=Path("/runs"), clock=fixed_clock)

    async def finish(pilot):
        await settle(pilot)
        from hwm_core.events.types import StateEvent
        from tests.tui_fakes import T0

        pilot.app.link.pending.append(StateEvent("completed", 600, time=T0 + 240))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=finish)


def test_history(snap_compare, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    prepared_runs(runs)
    # the runs dir path is part of the screen: make it the same on every machine
    monkeypatch.chdir(tmp_path)
    app = HwmApp(runs_dir=Path("runs"))

    async def loaded(pilot):
        deadline = time.monotonic() + 10
        while not pilot.app.screen.detail_config and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=loaded)
