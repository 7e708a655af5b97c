"""The real `hwm-tui train` in a real terminal (tmux): press p, c, h, q; read the screen
and the run folder, as a user over SSH would meet it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time

import pytest

from hwm_core.runs.checkpoint import list_checkpoints
from hwm_tui.bench.tmux import EXIT_MARK, TmuxSession
from tests.helpers import REPO, only_run, set_args, tiny_sets

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def tmux(command: str, env: dict[str, str]) -> TmuxSession:
    """The product's own terminal harness (the benches use it too), on a server of the tests'."""
    return TmuxSession(command, server="hwm-test", env=env, cwd=REPO, linger_s=120)


def test_train_in_tmux_p_c_h_q(tmp_path):
    runs = tmp_path / "runs"
    args = [
        "-m",
        "hwm_tui",
        "train",
        "--preset",
        "cpu",
        "--runs-dir",
        str(runs),
        "--max-steps",
        "5000",
        *set_args(tiny_sets("eval.eval_steps=0", "checkpoint.save_steps=100000")),
    ]
    command = " ".join(shlex.quote(a) for a in [sys.executable, *args])
    env = {"HWM_CACHE_DIR": os.environ["HWM_CACHE_DIR"], "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"}
    term = tmux(command, env)
    try:
        term.wait_for("Loss · step", timeout=120)
        term.wait_for("● running")

        term.keys("p")
        screen = term.wait_for("● paused")
        assert "Pause/resume" in screen  # the footer lists the keys
        run = only_run(runs)

        term.keys("c")
        screen = term.wait_for("saved:")
        [(step, path)] = list_checkpoints(run / "checkpoints")
        assert f"checkpoint step {step} saved" in screen

        term.keys("h")
        screen = term.wait_for("Runs in")
        screen = term.wait_for(run.name)
        assert "running" in screen, screen
        term.keys("Escape")
        term.wait_for("Pause/resume")  # the dashboard's footer, not the history's

        term.keys("p")
        term.wait_for("● running")

        term.keys("q")
        term.wait_for("Quit training run")
        term.keys("y")
        screen = term.wait_for(f"{EXIT_MARK}0", timeout=60)
        assert f"hwm-tui train --resume {run.name}" in screen
    finally:
        term.close()
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    steps = [s for s, _ in list_checkpoints(run / "checkpoints")]
    assert len(steps) == 2 and steps[0] > steps[1]  # the one from c, and the one q wrote on the way out


def test_bench_dashboard_run_gives_up_when_the_dashboard_does_not_start(tmp_path):
    from hwm_tui.bench.dashboard import DashboardPlan, dashboard_run

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        dashboard_run(
            DashboardPlan(
                [sys.executable, "-c", "print('no dashboard here')"],
                tmp_path,
                100,
                skip=5,
                blocks_until=60,
                block=10,
                key_every_s=2.0,
            )
        )
    assert time.monotonic() - started < 10  # the command's exit was seen, not waited out


def test_bench_alternates_live_and_frozen_blocks_in_whole_pairs(monkeypatch):
    import hwm_tui.bench.dashboard as ui_bench

    class Follower:  # a run that makes three steps between two looks
        step = 0

        def poll(self):
            self.step += 3
            return self.step

    keys = []
    term = type("Term", (), {"keys": lambda self, *k: keys.extend(k)})()
    monkeypatch.setattr(ui_bench.time, "sleep", lambda s: None)
    stall = type("Stall", (), {"check": lambda self, every_s=0.0: None})()
    blocks = ui_bench.live_and_frozen_blocks(term, Follower(), stall, first=5, last=60, block=10, max_steps=100)
    assert [frozen for *_, frozen in blocks] == [False, True, False, True]  # whole pairs, ending live
    assert keys == ["f"] * 4
    assert all(end >= start + 10 for start, end, _ in blocks)
    assert all(b[0] == a[1] for a, b in zip(blocks, blocks[1:]))  # each block starts where the last ended
    # the step that was running when f was pressed counts for neither mode
    assert list(ui_bench._block_steps(5, 15)) == list(range(7, 16))
    from types import SimpleNamespace

    times = {
        7: SimpleNamespace(step_time_s=1.0, samples_per_s=4.0),  # 4 samples in 1 s
        8: SimpleNamespace(step_time_s=3.0, samples_per_s=4 / 3),
    }  # 4 samples in 3 s
    assert ui_bench._samples_per_s(times, [7, 8, 9]) == 2.0  # samples over seconds, not a mean of rates
    with pytest.raises(ui_bench.UserError, match="raise --steps"):
        ui_bench.live_and_frozen_blocks(term, Follower(), stall, first=5, last=60, block=10, max_steps=20)


def test_bench_run_follower_reads_only_the_new_tail_and_knows_the_end_from_events(tmp_path):
    from hwm_core.events.log import event_to_json
    from hwm_core.events.types import StateEvent
    from hwm_tui.bench.dashboard import RunFollower
    from tests.tui_fakes import scripted_events

    lines = [event_to_json(e) + "\n" for e in scripted_events(30)]
    metrics = tmp_path / "metrics.jsonl"
    follower = RunFollower(metrics)
    assert follower.poll() == 0 and not follower.stepped  # no file yet
    metrics.write_text("".join(lines[:2]))  # started, no step yet
    assert follower.poll() == 0 and not follower.stepped
    metrics.write_text("".join(lines[:10]))
    assert follower.poll() == 8 and follower.stepped and follower.metrics.offset == metrics.stat().st_size
    with metrics.open("a") as fh:
        fh.write("".join(lines[10:]))
    assert follower.poll() == 30 and not follower.completed
    with metrics.open("a") as fh:
        fh.write(event_to_json(StateEvent("completed", 30)) + "\n")
    follower.poll()
    assert follower.completed
    metrics.write_text("".join(lines[:5]))  # rewound (a resume): the run is read anew
    assert follower.poll() == 3 and not follower.completed


def test_a_key_press_that_meets_the_runs_end_is_counted_apart_not_as_a_latency(monkeypatch):
    """What gave one press of 10,002 ms on a fast GPU: p sent as the run finished has
    nothing to answer. Presses stop near the end, and one that still meets it is counted
    apart; a press the running app leaves unanswered still counts, at the wait's length."""
    import hwm_tui.bench.dashboard as bench

    monkeypatch.setattr(bench, "KEY_ANSWER_TIMEOUT_S", 0.05)

    class Term:  # answers the first press; the run has ended by the second
        exited = False

        def __init__(self):
            self.presses, self.out = 0, b""

        def screen(self):
            return "● running"

        def keys(self, *keys):
            self.presses += keys.count("p")
            if self.presses == 1:
                self.out += b"pausing"

        def record_output(self):
            pass

        @property
        def output_size(self):
            return len(self.out)

        def output_since(self, offset):
            return self.out[offset:]

    class Follower:
        step, completed = 0, False

        def poll(self):
            self.step = 10 if term.presses < 2 else 100
            return self.step

    term, stall = Term(), type("Stall", (), {"check": lambda self, every_s=0.0: None})()
    result = bench.DashboardRun([], [])
    plan = bench.DashboardPlan([], None, 100, key_every_s=0.0)
    bench._time_key_presses(term, Follower(), stall, plan, result)
    assert len(result.latencies_ms) == 1 and result.latencies_ms[0] < 50
    assert result.unanswered_at_end == 1
