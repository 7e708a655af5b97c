"""`hwm-tui bench dashboard`: the same run trained headless and under the dashboard.

Both are real `hwm-tui train` processes; the dashboard one runs in a real terminal
(tmux). Samples/s come from each run's metrics.jsonl. Within each dashboard run,
blocks of steps have its drawing live and frozen (f) in turn; and key presses (p)
are timed from the press to the status line's answer in the terminal's output.
Where the run stands (its step, whether it has finished) comes from its events, as
every view has it, never from what the screen shows.
"""

from __future__ import annotations

import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwm_core.errors import UserError
from hwm_core.events.follow import MetricsFollower
from hwm_core.events.log import iter_events
from hwm_core.events.run_state import RunState
from hwm_core.events.types import StepEvent
from hwm_core.status import COMPLETED
from hwm_core.training.request import TrainRequest, request_config

from .tmux import TmuxSession, pinned_env, require_tmux

START_TIMEOUT_S = 300.0  # the run's first step: imports, data check, model build
STALL_TIMEOUT_S = 300.0  # with no new step for this long the run is stuck, not slow
KEY_ANSWER_TIMEOUT_S = 10.0
SERVER = "hwm-bench"  # the bench's own tmux server, never the user's


@dataclass
class TrainCommand:
    """The `hwm-tui train` both runs of a pair start with, checked before any starts."""

    preset: str
    steps: int
    overrides: list[str] = field(default_factory=list)

    def check(self) -> None:
        # A preset whose warm-up is longer than --steps (say) fails here in its own words.
        request_config(TrainRequest(preset=self.preset, overrides=list(self.overrides), max_steps=self.steps))

    def args(self, runs: Path) -> list[str]:
        out = [
            sys.executable,
            "-m",
            "hwm_tui",
            "train",
            "--preset",
            self.preset,
            "--max-steps",
            str(self.steps),
            "--runs-dir",
            str(runs),
        ]
        for item in self.overrides:
            out += ["--set", item]
        return out


def run_headless(command: list[str], *, cpu: int | None = None) -> subprocess.Popen:
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return subprocess.Popen(
        [*pin, *command, "--headless"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_headless(proc: subprocess.Popen) -> None:
    """A headless run that failed says why in its last line: that line, not a traceback."""
    _, err = proc.communicate()
    if proc.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        raise UserError(
            f"the headless run failed (exit {proc.returncode}): {lines[-1].strip() if lines else 'no message'}"
        )


class RunFollower:
    """Where the benched run stands: its metrics.jsonl followed by the one follower, which
    reads only what was added since the last look (re-parsing the whole file every poll
    would tax the dashboard run only), folded by the one reducer."""

    def __init__(self, metrics: Path):
        self.metrics = MetricsFollower(metrics)
        self.run = RunState(curves=False)

    def poll(self) -> int:
        """The run's step now."""
        read = self.metrics.poll()
        if read.rewound:
            self.run = RunState(curves=False)
        self.run.add_all(read.events)
        return self.step

    @property
    def step(self) -> int:
        return self.run.progress.step

    @property
    def stepped(self) -> bool:
        """The run has made its first step."""
        return self.run.start is not None and self.step > self.run.progress.start_step

    @property
    def completed(self) -> bool:
        """The run reached its last step (the dashboard's "● finished")."""
        return self.run.progress.state == COMPLETED


class StallCheck:
    """Fails the bench, with the screen, when the dashboard's process has exited or
    its run has made no step for STALL_TIMEOUT_S: better than waiting forever."""

    def __init__(self, follower: RunFollower, term: TmuxSession):
        self.follower, self.term = follower, term
        self.step, self.progress_at, self.checked_at = follower.step, time.monotonic(), 0.0

    def check(self, every_s: float = 0.0) -> None:
        now = time.monotonic()
        if self.follower.step != self.step:
            self.step, self.progress_at = self.follower.step, now
        if now - self.checked_at < every_s:
            return
        self.checked_at = now
        screen = self.term.screen()
        if self.term.exited or now - self.progress_at > STALL_TIMEOUT_S:
            raise RuntimeError(f"the dashboard run stopped at step {self.step}; its terminal showed:\n{screen}")


@dataclass
class DashboardPlan:
    """What one dashboard run measures. Blocks of `block` steps (live, frozen, ...)
    from step `skip` to `blocks_until` (none if block is 0); then a key press every
    `key_every_s` until near the end (none if None)."""

    command: list[str]
    runs: Path
    max_steps: int
    skip: int = 0
    blocks_until: int = 0
    block: int = 0
    key_every_s: float | None = None
    cpu: int | None = None


@dataclass
class DashboardRun:
    blocks: list[tuple[int, int, bool]]  # (first step, last step, frozen)
    latencies_ms: list[float]  # key press to the status line's answer
    unanswered_at_end: int = 0  # presses that met the run's end instead of an answer


def dashboard_run(plan: DashboardPlan) -> DashboardRun:
    line = " ".join(shlex.quote(a) for a in plan.command)
    term = TmuxSession(line, server=SERVER, env=pinned_env(), cpu=plan.cpu)
    try:
        follower = _first_step(term, plan.runs)
        stalled = StallCheck(follower, term)
        blocks = (
            live_and_frozen_blocks(term, follower, stalled, plan.skip, plan.blocks_until, plan.block, plan.max_steps)
            if plan.block
            else []
        )
        result = DashboardRun(blocks, [])
        if plan.key_every_s is not None:
            _time_key_presses(term, follower, stalled, plan, result)
        else:
            while not term.exited and not follower.completed:
                follower.poll()
                stalled.check()
                time.sleep(2.0)
        term.keys("q")
        deadline = time.monotonic() + 120
        while not term.exited and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        term.close()
    return result


def _first_step(term: TmuxSession, runs: Path) -> RunFollower:
    """Follows the run once its folder exists, until it has made its first step."""
    deadline = time.monotonic() + START_TIMEOUT_S
    follower: RunFollower | None = None
    while True:
        if follower is None and _runs_in(runs):
            follower = RunFollower(_only_run(runs) / "metrics.jsonl")
        if follower is not None:
            follower.poll()
            if follower.stepped:
                return follower
        if term.exited or time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard did not start; its terminal showed:\n{term.screen()}")
        time.sleep(0.1)


def _time_key_presses(
    term: TmuxSession, follower: RunFollower, stalled: StallCheck, plan: DashboardPlan, result: DashboardRun
) -> None:
    """p toggles pause; the status must say so at once, long before the trainer reaches
    its step boundary. Presses stop a few seconds before the run's end: one landing on
    the finished run has nothing to answer (and is counted as such, not as a latency)."""
    every_s = plan.key_every_s
    assert every_s is not None, "a run timed for key presses names their interval"
    term.record_output()
    paused = False
    while True:
        follower.poll()
        stalled.check()
        if term.exited or follower.completed or _near_end(follower, plan):
            break
        expect = (b"resuming", b"running") if paused else (b"pausing", b"paused")
        seen = term.output_size
        started = time.perf_counter()
        term.keys("p")
        answered = False
        while time.perf_counter() - started < KEY_ANSWER_TIMEOUT_S:
            if any(text in term.output_since(seen) for text in expect):
                answered = True
                break
            time.sleep(0.002)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if answered:
            result.latencies_ms.append(elapsed_ms)
            paused = not paused
        elif follower.poll() >= plan.max_steps or follower.completed:
            result.unanswered_at_end += 1
            break
        else:
            result.latencies_ms.append(elapsed_ms)  # a real miss: it counts, at the wait's length
            paused = not paused
        time.sleep(every_s)
    if paused:
        term.keys("p")


def _near_end(follower: RunFollower, plan: DashboardPlan) -> bool:
    steps_left = plan.max_steps - follower.step
    return steps_left <= max(3, plan.max_steps // 50)


def live_and_frozen_blocks(
    term: TmuxSession, follower: RunFollower, stalled: StallCheck, first: int, last: int, block: int, max_steps: int
) -> list[tuple[int, int, bool]]:
    """Live, frozen, live, ... blocks of `block` steps from step `first` to `last`, in
    pairs; f switches the dashboard's drawing at each boundary. Ends live."""

    def reach(step: int) -> int:
        if step >= max_steps:
            raise UserError(
                f"the dashboard started too late (step {follower.step}) for a live and a frozen "
                f"block of {block} steps before the key presses: raise --steps"
            )
        while follower.poll() < step:
            time.sleep(0.25)
            stalled.check(every_s=5.0)  # the terminal is read rarely: it is part of what is measured
        return follower.step

    blocks: list[tuple[int, int, bool]] = []
    start, frozen = reach(first), False
    while not blocks or frozen or start + 2 * block <= last:  # whole pairs, at least one
        end = reach(start + block)
        blocks.append((start, end, frozen))
        term.keys("f")
        start, frozen = end, not frozen
    return blocks


def dashboard_vs_headless(
    train: TrainCommand, *, repeats: int = 3, skip: int = 5, block: int = 10, key_every_s: float = 2.0
) -> dict:
    """`repeats` pairs of runs, one headless and one under the dashboard, back to back;
    which goes first alternates from pair to pair, so a steady drift in the machine's
    speed favours neither. Throughput is compared over steps skip..2/3 of each run.

    A machine's speed can also jump for a minute at a time, more than the dashboard
    could cost, so each dashboard run also measures itself: over the same steps its
    drawing is live and frozen (f) in turn, `block` steps each, and each live block
    is compared with the frozen one next to it. A frozen dashboard draws nothing, as
    headless prints one line a step: what this measures is what drawing costs
    training. The last third of each dashboard run measures key-press latency."""
    train.check()
    require_tmux()
    need = skip + 2 * block  # warm-up, then one live and one frozen block
    if 2 * train.steps // 3 < need:
        raise UserError(
            f"bench dashboard needs --steps {3 * need // 2 + 2} or more (warm-up, one live and "
            "one frozen block, then key presses)"
        )
    quiet_until = 2 * train.steps // 3
    headless, dashboard, latencies, block_shares, unanswered = [], [], [], [], 0
    work = Path(tempfile.mkdtemp(prefix="hwm-bench-"))

    def headless_run(n: int) -> None:
        runs = work / f"headless-{n}"
        wait_headless(run_headless(train.args(runs)))
        times = _steps_by_number(_only_run(runs))
        headless.append(_samples_per_s(times, range(skip + 1, quiet_until + 1)))

    def dashboard_side(n: int) -> None:
        nonlocal unanswered
        runs = work / f"dashboard-{n}"
        run = dashboard_run(
            DashboardPlan(
                train.args(runs),
                runs,
                train.steps,
                skip=skip,
                blocks_until=quiet_until,
                block=block,
                key_every_s=key_every_s,
            )
        )
        latencies.extend(run.latencies_ms)
        unanswered += run.unanswered_at_end
        times = _steps_by_number(_only_run(runs))
        live = [s for start, end, frozen in run.blocks if not frozen for s in _block_steps(start, end)]
        dashboard.append(_samples_per_s(times, live))
        for (start, end, _), (start2, end2, _) in zip(run.blocks[0::2], run.blocks[1::2]):  # (live, frozen)
            block_shares.append(
                _samples_per_s(times, _block_steps(start, end)) / _samples_per_s(times, _block_steps(start2, end2))
            )

    try:
        for n in range(repeats):
            for run in (headless_run, dashboard_side) if n % 2 == 0 else (dashboard_side, headless_run):
                run(n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [d / h for d, h in zip(dashboard, headless)]
    return {
        "preset": train.preset,
        "steps": train.steps,
        "throughput_steps": f"{skip + 1}..{quiet_until}",
        "repeats": repeats,
        "in_run": {
            "block_steps": block,
            "live_share_of_frozen_per_block_pair": block_shares,
            # Blocks a few seconds apart see the same machine: the least touched by its drift.
            "live_share_of_frozen": statistics.median(block_shares),
        },
        "headless_samples_per_s": headless,
        "dashboard_samples_per_s": dashboard,
        "dashboard_share_of_headless_per_pair": ratios,
        "dashboard_share_of_headless": statistics.median(ratios),
        "ratio_of_medians": statistics.median(dashboard) / statistics.median(headless),
        "key_to_screen_ms": {
            "presses": len(latencies),
            "median": statistics.median(latencies) if latencies else None,
            "max": max(latencies) if latencies else None,
            "unanswered_at_run_end": unanswered,
        },
    }


def side_by_side(train: TrainCommand, *, repeats: int = 2, warm_s: float = 10.0) -> dict:
    """A headless run and a dashboard run at the same time, each pinned to a core of
    its own (so one torch thread each), compared over the seconds both were training:
    whatever the shared machine does then, it does to both. The cores swap from one
    repeat to the next. Everything the dashboard needs (its tmux too) runs on its core;
    the UI has no idle core to use, the worst case for training."""
    train.check()
    require_tmux()
    if shutil.which("taskset") is None:
        raise UserError("bench dashboard --side-by-side needs taskset: install it (apt-get install util-linux)")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise UserError("bench dashboard --side-by-side needs two cores: run it without --side-by-side")
    shares, seconds = [], []
    work = Path(tempfile.mkdtemp(prefix="hwm-bench-"))
    try:
        for n in range(repeats):
            headless_cpu, dashboard_cpu = (cpus[0], cpus[1]) if n % 2 == 0 else (cpus[1], cpus[0])
            headless_runs, dashboard_runs = work / f"headless-{n}", work / f"dashboard-{n}"
            headless = run_headless(train.args(headless_runs), cpu=headless_cpu)
            try:
                dashboard_run(DashboardPlan(train.args(dashboard_runs), dashboard_runs, train.steps, cpu=dashboard_cpu))
            except BaseException:
                headless.kill()  # its twin failed: nothing to compare it with
                headless.wait()
                raise
            wait_headless(headless)
            h, d = _step_events(_only_run(headless_runs)), _step_events(_only_run(dashboard_runs))
            start = max(h[0].time, d[0].time) + warm_s
            end = min(h[-1].time, d[-1].time)
            if end - start < 30:
                raise UserError(f"the two runs trained together for only {max(0.0, end - start):.0f} s: raise --steps")
            shares.append(_rate_between(d, start, end) / _rate_between(h, start, end))
            seconds.append(end - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "preset": train.preset,
        "steps": train.steps,
        "repeats": repeats,
        "seconds_compared": seconds,
        "dashboard_share_of_headless_per_repeat": shares,
        "dashboard_share_of_headless": statistics.median(shares),
    }


def _runs_in(runs: Path) -> list[Path]:
    return [p for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []


def _only_run(runs: Path) -> Path:
    found = _runs_in(runs)
    if len(found) != 1:
        raise RuntimeError(f"expected one run in {runs}, found {len(found)}")
    return found[0]


def _step_events(run_dir: Path) -> list[StepEvent]:
    return [e for e in iter_events(run_dir / "metrics.jsonl") if isinstance(e, StepEvent)]


def _steps_by_number(run_dir: Path) -> dict[int, StepEvent]:
    return {e.step: e for e in _step_events(run_dir)}


def _rate_between(steps: list[StepEvent], start: float, end: float) -> float:
    """Samples per second of the steps that ended between two wall-clock times."""
    return _rate([e for e in steps if start <= e.time <= end])


def _samples_per_s(steps: dict[int, StepEvent], numbers) -> float:
    return _rate([steps[n] for n in numbers if n in steps])


def _rate(steps: list[StepEvent]) -> float:
    """Samples over seconds, not a median of rates: a slow step costs what it took."""
    if not steps:
        raise UserError("no step was timed: raise --steps")
    return sum(e.samples_per_s * e.step_time_s for e in steps) / sum(e.step_time_s for e in steps)


def _block_steps(start: int, end: int) -> range:
    # The step running when the drawing was switched is in neither mode: leave it out.
    return range(start + 2, end + 1)
