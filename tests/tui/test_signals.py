"""The first signal stops the run, the second exits: one rule for `train --headless` and the dashboard."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from pathlib import Path

import pytest
from rich.console import Console

import hwm_tui.signals as signals_module
from hwm_core.runs.inbox import STOP
from hwm_tui.signals import StopSignals
from tests.tui_fakes import FakeLink, scripted_events


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch) -> list[int]:
    codes: list[int] = []

    def exit_now(code: int) -> None:
        codes.append(code)
        raise Exited

    monkeypatch.setattr(signals_module.os, "_exit", exit_now)
    return codes


def test_the_first_signal_stops_the_second_exits_and_the_handlers_are_put_back(exits):
    stops: list[int] = []
    signals = StopSignals(stops.append)
    before = signal.getsignal(signal.SIGTERM)
    with signals.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stops == [signal.SIGTERM] and signals.received == signal.SIGTERM and exits == []
        with pytest.raises(Exited):
            os.kill(os.getpid(), signal.SIGINT)
        assert exits == [128 + signal.SIGINT] and stops == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


def test_once_a_stop_was_asked_for_without_a_signal_any_signal_exits_and_a_hangup_is_ignored(exits):
    signals = StopSignals(lambda signum: pytest.fail("a stop was already asked for"))
    signals.stopping = True  # q: the app has left, the trainer finishes its checkpoint
    with signals.installed(hangup=False):
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        with pytest.raises(Exited):
            os.kill(os.getpid(), signal.SIGTERM)
    assert exits == [128 + signal.SIGTERM] and signals.received is None


def test_headless_says_what_a_first_signal_does_and_keeps_quiet_on_a_hangup():
    from hwm_tui.headless import _stop

    sent: list[str] = []
    runner = type("Runner", (), {"send": lambda self, command: sent.append(command)})()
    out = io.StringIO()
    console = Console(file=out, width=200)
    _stop(runner, console, signal.SIGINT)
    assert sent == [STOP] and "SIGINT: checkpointing at the end of this step" in out.getvalue()
    _stop(runner, console, signal.SIGHUP)
    assert sent == [STOP, STOP] and console.file is not out  # the terminal is gone: nothing more to it


def test_a_signal_in_the_app_stops_the_run_and_leaves_the_screen():
    from hwm_tui.app import HwmApp

    link = FakeLink(scripted_events(10))
    app = HwmApp(link=link, runs_dir=Path("/nonexistent"))

    async def main():
        async with app.run_test() as pilot:
            await pilot.pause(0.2)
            app.signals.stop_now(signal.SIGTERM)  # what the event loop's handler calls
            app.signals.stop_now(signal.SIGTERM)  # while the app leaves, another only asks again
            await pilot.pause(0.2)

    asyncio.run(main())
    assert app.return_value == "signal" and link.sent == [STOP, STOP]
    assert app.signals.received == signal.SIGTERM and app.signals.stopping
