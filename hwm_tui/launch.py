"""Several processes: `hwm-tui train --nproc N` starts torchrun (each rank then runs
`hwm-tui train --headless`, see hwm_core.session.prepare_distributed).

Rank 0 owns the run folder; the launcher picks the run id up front so that the
dashboard (`watch`) can open that run as soon as it exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hwm_core.errors import RunError, UserError
from hwm_core.runs.folder import default_runs_dir, new_run_id
from hwm_core.runs.history import resolve_run
from hwm_core.runs.inbox import STOP, send_to_run
from hwm_core.runs.liveness import effective_status
from hwm_core.runtime.device import resolve_device
from hwm_core.status import RUNNING
from hwm_core.training.request import TrainRequest, request_config

from .signals import StopSignals

RUN_APPEARS_TIMEOUT_S = 600  # data checks and synthetic data generation come first


def torchrun_command(request: TrainRequest, nproc: int, run_id: str | None) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "hwm_tui",
        "train",
        "--headless",
    ]
    if request.resume:
        args += ["--resume", request.resume]
    if request.preset:
        args += ["--preset", request.preset]
    if request.data is not None:
        args += ["--data", request.data]
    if request.val_data is not None:
        args += ["--val-data", request.val_data]
    if request.runs_dir:
        args += ["--runs-dir", request.runs_dir]
    if request.max_steps is not None:
        args += ["--max-steps", str(request.max_steps)]
    if request.memory_limit_gib is not None:
        args += ["--memory-limit", str(request.memory_limit_gib)]
    if request.mirrors is not None:
        args += [arg for name in request.mirrors or ["none"] for arg in ("--log", name)]
    if run_id:
        args += ["--run-id", run_id]
    for item in request.overrides:
        args += ["--set", item]
    return args


def launch_distributed(request: TrainRequest, *, nproc: int, headless: bool) -> int:
    # Bad flags, or more processes than GPUs, fail here in one line, not in every rank.
    resolve_device(request_config(request).train, local_rank=nproc - 1)
    if headless or not sys.stdout.isatty():
        return _launch_headless(request, nproc)
    return _launch_with_dashboard(request, nproc)


def _launch_headless(request: TrainRequest, nproc: int) -> int:
    """torchrun prints to this terminal, but in a session of its own: Ctrl-C (or
    SIGTERM, SIGHUP) here becomes a stop command in the run's folder, which every
    rank applies at the same step boundary after rank 0 checkpoints. Signalled
    directly, torchrun would tear the ranks down mid-step. A second signal does."""
    runs_dir = default_runs_dir(request.runs_dir)
    run_id = None if request.resume else new_run_id(request.preset or "cpu")
    proc = subprocess.Popen(torchrun_command(request, nproc, run_id), start_new_session=True)

    def stop(signum: int) -> None:
        try:
            run_dir: Path | None = resolve_run(runs_dir, request.resume or run_id or "").path
        except UserError:
            run_dir = None
        if run_dir is None:  # no run folder yet: nothing would read the command
            _stop_at_once(proc.pid)
            return
        send_to_run(run_dir, STOP)
        _say("stopping: every rank checkpoints at the end of this step (again to stop at once)")

    signals = StopSignals(stop, at_once=lambda signum: _stop_at_once(proc.pid))
    with signals.installed():
        code = proc.wait()
    return 128 + signals.received if signals.received is not None and code == 0 else code


def _stop_at_once(torchrun_pid: int) -> None:
    """The ranks run in sessions of their own and would take a signal forwarded by
    torchrun as a first, graceful one: kill them, then torchrun. The last
    checkpoint stays the resume point."""
    for pid in _children(torchrun_pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(torchrun_pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _children(parent: int) -> list[int]:
    """Direct children of a process, from /proc (Linux); none found elsewhere."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the fields after the command name, which may itself hold spaces and ')'
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def _say(text: str) -> None:
    try:
        print(text, flush=True)
    except OSError:  # the terminal went away (SIGHUP)
        pass


def _launch_with_dashboard(request: TrainRequest, nproc: int) -> int:
    """torchrun in the background (its own session, so the terminal's keys and
    signals stay with the dashboard), the dashboard following its run folder."""
    from .app import run_watch

    runs_dir = default_runs_dir(request.runs_dir)
    run_id = request.resume or new_run_id(request.preset or "cpu")
    log = Path(tempfile.mkstemp(prefix=f"hwm-torchrun-{run_id}-", suffix=".log")[1])
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            torchrun_command(request, nproc, None if request.resume else run_id),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run_json = runs_dir / run_id / "run.json" if not request.resume else None
    deadline = time.monotonic() + RUN_APPEARS_TIMEOUT_S
    while run_json is not None and not _running(run_json):
        if proc.poll() is not None:
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            return proc.returncode or 2
        if time.monotonic() > deadline:
            proc.terminate()
            raise RunError(f"torchrun did not start run {run_id} within {RUN_APPEARS_TIMEOUT_S}s; see {log}")
        time.sleep(0.2)
    code = run_watch(str(runs_dir / run_id) if not request.resume else request.resume, runs_dir)
    if not _still_training(runs_dir, run_id):
        try:  # the run has ended (or was stopped from the dashboard): let torchrun finish
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        print(
            f"training goes on in the background (torchrun pid {proc.pid}, log {log}); "
            f"follow it with: hwm-tui watch {run_id}"
        )
        return code
    print(f"torchrun log: {log}")
    return proc.returncode if proc.returncode else code


def _still_training(runs_dir: Path, run_ref: str) -> bool:
    try:
        folder = resolve_run(runs_dir, run_ref)
        return effective_status(folder.read_meta(), folder=folder) == RUNNING
    except UserError:
        return False


def _running(run_json: Path) -> bool:
    try:
        return json.loads(run_json.read_text()).get("pid") is not None
    except (OSError, ValueError):
        return False
