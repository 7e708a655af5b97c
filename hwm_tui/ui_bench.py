"""`hwm-tui bench --ui` and `--dashboard`: what the dashboard costs.

--ui         chart redraw time with 60,000 steps of history, at 80x24 and 200x60.
--dashboard  the same run trained headless and under the dashboard (in tmux, a
             real terminal), samples/s of each from their metrics.jsonl; within
             each dashboard run, blocks of steps with its drawing live and frozen
             (f) in turn; and how long a key press (p) takes to show on screen
             while training runs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from hwm_core.errors import UserError
from hwm_core.events import (CheckpointEvent, EvalEvent, StartEvent, StateEvent, StepEvent, WarningEvent,
                             iter_events, read_events)
from hwm_core.schedule import lr_at

from .link import ReplayLink


def synthetic_history(steps: int) -> list:
    """A plausible 60,000-step run: falling noisy loss, cosine LR, spiky grad norms."""
    import random
    rng = random.Random(0)
    events: list = [StartEvent(run_id="bench", run_dir="", preset="12gb", device="bench", start_step=0,
                               max_steps=steps, peak_lr=5e-5, warmup_steps=500, schedule="cosine",
                               max_grad_norm=1.0, global_batch=16, world_size=1, num_parameters=0,
                               tokens_per_sample=9216, codebook_size=64000)]
    for step in range(1, steps + 1):
        loss = 4.0 + 7.07 * math.exp(-step / 3000) + rng.gauss(0, 0.1)
        pre = math.exp(rng.gauss(0, 0.6)) * (50 if rng.random() < 0.001 else 1)
        events.append(StepEvent(step=step, loss=loss, lr=lr_at(step, peak_lr=5e-5, warmup_steps=500,
                                                               max_steps=steps),
                                grad_norm_pre_clip=pre, grad_norm_post_clip=min(pre, 1.0), grad_max_abs=0.1,
                                grad_min_abs=0.0, clipped=pre > 1, samples_per_s=40.0, tokens_per_s=368640.0,
                                step_time_s=0.4, memory_bytes=3 << 30))
        if step % 500 == 0:
            events.append(EvalEvent(step=step, val_loss=loss + 0.2, val_token_acc=0.3))
        if step % 1000 == 0:
            events.append(CheckpointEvent(step=step, path=f"step_{step:08d}.safetensors", seconds=1.0, bytes=1))
        if pre > 20:
            events.append(WarningEvent(step=step, kind="instability", value=pre, message="spike"))
    events.append(StateEvent("running", steps))
    return events


def chart_redraw_ms(steps: int = 60_000, sizes=((80, 24), (200, 60)), redraws: int = 20) -> dict:
    from textual.geometry import Region

    from .app import HwmApp
    from .widgets.run_chart import RunChart

    results: dict = {}

    async def measure(size):
        app = HwmApp(link=ReplayLink(synthetic_history(steps)), runs_dir=Path(tempfile.gettempdir()))
        async with app.run_test(size=size) as pilot:
            await pilot.pause(1.0)
            # The events are consumed into numpy series by now, as in a live run; collect
            # their garbage first so a full GC pass is not timed as a redraw.
            gc.collect()
            gc.freeze()  # as the dashboard does once it is up (see HwmApp.on_mount)
            charts = list(app.screen.query(RunChart))
            times: dict[str, list[float]] = {c.id: [] for c in charts}
            for _ in range(redraws):
                for chart in charts:
                    # All of the chart's lines as Textual composes them (plot, border,
                    # styles): what a redraw costs the UI thread, not plotext alone.
                    chart.show(chart.view, force=True)
                    started = time.perf_counter()
                    chart.render_lines(Region(0, 0, *chart.outer_size))
                    times[chart.id].append((time.perf_counter() - started) * 1000)
                await pilot.pause(0.05)
            return {cid: {"median_ms": statistics.median(t), "max_ms": max(t)} for cid, t in times.items()}

    for size in sizes:
        results[f"{size[0]}x{size[1]}"] = asyncio.run(measure(size))
    return {"steps_of_history": steps, "charts": results}


# ---------------------------------------------------------------------------- dashboard vs headless

class _StepFollower:
    """The newest step in a growing metrics.jsonl, reading only what was added since
    the last look: re-parsing the whole file every poll would tax the dashboard run only."""

    def __init__(self, metrics: Path):
        self.metrics = metrics
        self.offset = 0
        self.step = 0

    def poll(self) -> int:
        events, self.offset = read_events(self.metrics, self.offset)
        self.step = max((e.step for e in events if isinstance(e, StepEvent)), default=self.step)
        return self.step


START_TIMEOUT_S = 300.0  # the dashboard's first chart: imports, data check, model build
STALL_TIMEOUT_S = 300.0  # with no new step for this long the run is stuck, not slow


def _only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()]
    if len(found) != 1:
        raise RuntimeError(f"expected one run in {runs}, found {len(found)}")
    return found[0]


# A tmux server of the bench's own: started afresh for each run (and pinned with it in
# --side-by-side), and never the user's.
TMUX = ("tmux", "-L", "hwm-bench")


def _tmux(*args: str) -> str:
    return subprocess.run([*TMUX, *args], capture_output=True, text=True).stdout


def dashboard_vs_headless(preset: str, steps: int, overrides: list[str], *, repeats: int = 3, skip: int = 5,
                          block: int = 10, key_every_s: float = 2.0) -> dict:
    """`repeats` pairs of runs, one headless and one under the dashboard, back to back;
    which goes first alternates from pair to pair, so a steady drift in the machine's
    speed favours neither. Throughput is compared over steps skip..2/3 of each run.

    On a shared 2-core box the speed also jumps by 10-30 % for a minute at a time,
    more than the dashboard could cost, so each dashboard run also measures itself:
    over the same steps its drawing is live and frozen (f) in turn, `block` steps
    each, and each live block is compared with the frozen one next to it. A frozen
    dashboard draws nothing, as headless prints one line a step: what this measures
    is what drawing costs training. The last third of each dashboard run measures
    key-press latency (p, pause/resume, until the status shows it)."""
    if shutil.which("tmux") is None:
        raise UserError("bench --dashboard runs the dashboard in a real terminal and needs tmux: install it "
                        "(apt-get install tmux)")
    need = skip + 2 * block  # warm-up, then one live and one frozen block
    if 2 * steps // 3 < need:
        raise UserError(f"bench --dashboard needs --steps {3 * need // 2 + 2} or more (warm-up, one live and "
                        "one frozen block, then key presses)")
    quiet_until = 2 * steps // 3
    base = _train_command(preset, steps, overrides)
    headless, dashboard, latencies, block_shares = [], [], [], []
    work = Path(tempfile.mkdtemp(prefix="hwm-bench-"))

    def run_headless(n: int) -> None:
        runs = work / f"headless-{n}"
        subprocess.run(base + ["--headless", "--runs-dir", str(runs)], check=True, stdout=subprocess.DEVNULL)
        times = _steps_by_number(_only_run(runs))
        headless.append(_samples_per_s(times, range(skip + 1, quiet_until + 1)))

    def run_dashboard(n: int) -> None:
        runs = work / f"dashboard-{n}"
        blocks, keys = _dashboard_run(base + ["--runs-dir", str(runs)], runs, steps, skip, quiet_until, block,
                                      key_every_s)
        latencies.extend(keys)
        times = _steps_by_number(_only_run(runs))
        live = [s for start, end, frozen in blocks if not frozen for s in _block_steps(start, end)]
        dashboard.append(_samples_per_s(times, live))
        for (start, end, _), (start2, end2, _) in zip(blocks[0::2], blocks[1::2]):  # (live, frozen)
            block_shares.append(_samples_per_s(times, _block_steps(start, end)) /
                                _samples_per_s(times, _block_steps(start2, end2)))

    try:
        for n in range(repeats):
            for run in (run_headless, run_dashboard) if n % 2 == 0 else (run_dashboard, run_headless):
                run(n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [d / h for d, h in zip(dashboard, headless)]
    return {
        "preset": preset, "steps": steps, "throughput_steps": f"{skip + 1}..{quiet_until}", "repeats": repeats,
        "in_run": {
            "block_steps": block,
            "live_share_of_frozen_per_block_pair": block_shares,
            # Blocks a few seconds apart see the same machine: the least touched by its drift.
            "live_share_of_frozen": statistics.median(block_shares),
        },
        "headless_samples_per_s": headless, "dashboard_samples_per_s": dashboard,
        "dashboard_share_of_headless_per_pair": ratios,
        "dashboard_share_of_headless": statistics.median(ratios),
        "ratio_of_medians": statistics.median(dashboard) / statistics.median(headless),
        "key_to_screen_ms": {"presses": len(latencies),
                             "median": statistics.median(latencies) if latencies else None,
                             "max": max(latencies) if latencies else None},
    }


def side_by_side(preset: str, steps: int, overrides: list[str], *, repeats: int = 2, warm_s: float = 10.0) -> dict:
    """A headless run and a dashboard run at the same time, each pinned to a core of
    its own (so one torch thread each), compared over the seconds both were training:
    whatever the shared machine does then, it does to both. The cores swap from one
    repeat to the next. Everything the dashboard needs (its tmux too) runs on its core;
    the UI has no idle core to use, the worst case for training."""
    if shutil.which("tmux") is None or shutil.which("taskset") is None:
        raise UserError("bench --dashboard --side-by-side needs tmux and taskset: install them "
                        "(apt-get install tmux util-linux)")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise UserError("bench --dashboard --side-by-side needs two cores: run it without --side-by-side")
    base = _train_command(preset, steps, overrides)
    shares, seconds = [], []
    work = Path(tempfile.mkdtemp(prefix="hwm-bench-"))
    try:
        for n in range(repeats):
            headless_cpu, dashboard_cpu = (cpus[0], cpus[1]) if n % 2 == 0 else (cpus[1], cpus[0])
            headless_runs, dashboard_runs = work / f"headless-{n}", work / f"dashboard-{n}"
            headless = subprocess.Popen(["taskset", "-c", str(headless_cpu), *base, "--headless", "--runs-dir",
                                         str(headless_runs)], stdout=subprocess.DEVNULL)
            try:
                _dashboard_run(base + ["--runs-dir", str(dashboard_runs)], dashboard_runs, steps, 0, 0, 0, None,
                               cpu=dashboard_cpu)
            except BaseException:
                headless.kill()  # its twin failed: nothing to compare it with
                headless.wait()
                raise
            if headless.wait() != 0:
                raise RuntimeError(f"the headless run failed (exit {headless.returncode})")
            h, d = _step_events(_only_run(headless_runs)), _step_events(_only_run(dashboard_runs))
            start = max(h[0].time, d[0].time) + warm_s
            end = min(h[-1].time, d[-1].time)
            if end - start < 30:
                raise UserError(f"the two runs trained together for only {max(0.0, end - start):.0f} s: "
                                "raise --steps")
            shares.append(_rate_between(d, start, end) / _rate_between(h, start, end))
            seconds.append(end - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"preset": preset, "steps": steps, "repeats": repeats, "seconds_compared": seconds,
            "dashboard_share_of_headless_per_repeat": shares,
            "dashboard_share_of_headless": statistics.median(shares)}


def _train_command(preset: str, steps: int, overrides: list[str]) -> list[str]:
    command = [sys.executable, "-m", "hwm_tui", "train", "--preset", preset, "--max-steps", str(steps)]
    for item in overrides:
        command += ["--set", item]
    return command


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


class _StallCheck:
    """Fails the bench, with the screen, when the dashboard's process has exited or
    its run has made no step for STALL_TIMEOUT_S: better than waiting forever."""

    def __init__(self, follower: _StepFollower, session: str):
        self.follower, self.session = follower, session
        self.step, self.progress_at, self.checked_at = follower.step, time.monotonic(), 0.0

    def check(self, every_s: float = 0.0) -> None:
        now = time.monotonic()
        if self.follower.step != self.step:
            self.step, self.progress_at = self.follower.step, now
        if now - self.checked_at < every_s:
            return
        self.checked_at = now
        screen = _tmux("capture-pane", "-p", "-t", self.session)
        if "BENCH-EXIT" in screen or now - self.progress_at > STALL_TIMEOUT_S:
            raise RuntimeError(f"the dashboard run stopped at step {self.step}; its terminal showed:\n{screen}")


def _dashboard_run(command: list[str], runs: Path, max_steps: int, skip: int, quiet_until: int, block: int,
                   key_every_s: float | None, cpu: int | None = None) -> tuple[list[tuple[int, int, bool]], list[float]]:
    """One dashboard run in tmux: its blocks of steps (first, last, frozen) from `skip`
    to `quiet_until` (none if block is 0), and the key-press latencies (ms) of its
    last third (none if key_every_s is None). With `cpu`, tmux and the run are pinned
    to that core."""
    name = f"hwm-bench-{uuid.uuid4().hex[:8]}"
    cache = os.environ.get("HWM_CACHE_DIR")
    env = "env TERM=xterm-256color" + (f" HWM_CACHE_DIR={shlex.quote(cache)}" if cache else "")
    line = " ".join(shlex.quote(a) for a in command)
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    subprocess.run([*pin, *TMUX, "new-session", "-d", "-s", name, "-x", "120", "-y", "36",
                    f"{env} {line}; echo BENCH-EXIT=$?; sleep 600"], check=True)
    latencies = []
    # What the app writes to its terminal, as tmux receives it: watching this file
    # costs no process per look, so the latency is the app's and not the harness's.
    output = Path(tempfile.mkstemp(prefix="hwm-bench-pane-")[1])
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Loss · step" not in (screen := _tmux("capture-pane", "-p", "-t", name)):
            if "BENCH-EXIT" in screen or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start; its terminal showed:\n{screen}")
            time.sleep(0.1)
        follower = _StepFollower(_only_run(runs) / "metrics.jsonl")
        stalled = _StallCheck(follower, name)
        blocks = _live_and_frozen_blocks(name, follower, stalled, skip, quiet_until, block, max_steps) \
            if block else []
        if key_every_s is not None:
            _tmux("pipe-pane", "-o", "-t", name, f"cat >> {shlex.quote(str(output))}")
        paused = False
        while True:
            screen = _tmux("capture-pane", "-p", "-t", name)
            if "BENCH-EXIT" in screen or "● finished" in screen:
                break
            follower.poll()
            stalled.check()
            if key_every_s is None:  # hands off to the end
                time.sleep(2.0)
                continue
            # p toggles pause; the status must say so at once, long before the
            # trainer reaches its step boundary.
            expect = (b"resuming", b"running") if paused else (b"pausing", b"paused")
            seen = output.stat().st_size
            started = time.perf_counter()
            _tmux("send-keys", "-t", name, "p")
            while not any(text in _read_from(output, seen) for text in expect):
                if time.perf_counter() - started > 10:
                    break
                time.sleep(0.002)
            latencies.append((time.perf_counter() - started) * 1000)
            paused = not paused
            time.sleep(key_every_s)
        if paused:
            _tmux("send-keys", "-t", name, "p")
        _tmux("send-keys", "-t", name, "q")
        deadline = time.monotonic() + 120
        while "BENCH-EXIT" not in _tmux("capture-pane", "-p", "-t", name) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        _tmux("kill-session", "-t", name)
        output.unlink(missing_ok=True)
    return blocks, latencies


def _live_and_frozen_blocks(session: str, follower: _StepFollower, stalled: _StallCheck, first: int, last: int,
                            block: int, max_steps: int) -> list[tuple[int, int, bool]]:
    """Live, frozen, live, ... blocks of `block` steps from step `first` to `last`, in
    pairs; f switches the dashboard's drawing at each boundary. Ends live."""
    def reach(step: int) -> int:
        if step >= max_steps:
            raise UserError(f"the dashboard started too late (step {follower.step}) for a live and a frozen "
                            f"block of {block} steps before the key presses: raise --steps")
        while follower.poll() < step:
            time.sleep(0.25)
            stalled.check(every_s=5.0)  # the terminal is read rarely: it is part of what is measured
        return follower.step

    blocks, start, frozen = [], reach(first), False
    while not blocks or frozen or start + 2 * block <= last:  # whole pairs, at least one
        end = reach(start + block)
        blocks.append((start, end, frozen))
        _tmux("send-keys", "-t", session, "f")
        start, frozen = end, not frozen
    return blocks


def _read_from(path: Path, offset: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read()


def print_json(value: dict) -> None:
    print(json.dumps(value, indent=1))
