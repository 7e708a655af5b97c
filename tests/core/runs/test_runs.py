"""`hwm-tui runs list/show`: the same facts as the history screen, from the run folders."""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import socket
import threading
import time

import pytest

import hwm_core.runs.folder as run_folder
from hwm_core.events.bus import EventBus
from hwm_core.events.types import StepEvent
from hwm_core.runs.folder import RunFolder, create_run_folder
from hwm_core.runs.history import list_runs, summarize
from hwm_core.runs.inbox import STOP, CommandInbox, process_start_time, send_to_run
from hwm_core.runs.liveness import effective_status
from hwm_core.runs.lock import RunLock
from tests.helpers import hwm, make_run


def test_runs_list_and_show_give_the_same_facts(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs, "eval.eval_steps=1", "train.warmup_steps=1")
    listed = json.loads(hwm("runs", "list", "--json", "--runs-dir", str(runs)).stdout)
    shown = hwm("runs", "show", run.name[:10], "--json", "--runs-dir", str(runs))
    assert shown.returncode == 0, shown.stderr
    one = json.loads(shown.stdout)
    assert one.pop("latest_evaluation") is None  # show adds the run's latest evaluation: none yet
    assert listed == [one]
    assert one["id"] == run.name and one["preset"] == "cpu" and one["status"] == "completed"
    assert (one["step"], one["max_steps"]) == (2, 2)
    assert one["best_val_loss"] <= one["last_val_loss"]
    assert one["latest_checkpoint"].endswith("step_00000002.safetensors")
    table = hwm("runs", "list", "--runs-dir", str(runs))
    assert run.name in table.stdout and "completed" in table.stdout


def test_a_broken_run_does_not_hide_the_others(tmp_path):
    runs = tmp_path / "runs"
    good = make_run(runs)
    broken = runs / "20200101-000000-broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    summaries = {s.id: s for s in list_runs(runs)}
    assert summaries[good.name].status == "completed"
    assert summaries[broken.name].status == "broken" and "cannot be read" in summaries[broken.name].error


def test_stale_running_run_reads_as_interrupted(tmp_path):
    now = time.time()
    here = socket.gethostname()
    assert effective_status({"status": "running", "heartbeat": now, "pid": 1, "host": "elsewhere"}, now) == "running"
    assert effective_status({"status": "running", "heartbeat": now - 3600, "host": "elsewhere"}, now) == "interrupted"
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never alive
    dead = {"status": "running", "heartbeat": now, "pid": dead_pid, "host": here}
    assert effective_status(dead, now) == "interrupted"
    assert effective_status({"status": "completed"}, now) == "completed"


def test_a_live_process_here_keeps_running_though_its_heartbeat_is_stale(tmp_path):
    # run.json writes failing (disk full) stop the heartbeat, not the training
    meta = {"status": "running", "heartbeat": time.time() - 3600, "pid": os.getpid(), "host": socket.gethostname()}
    assert effective_status(meta) == "running"


def test_the_run_lock_decides_the_status_on_this_host(tmp_path):
    folder = create_run_folder(tmp_path / "runs", "cpu")
    dead_pid = 2**22 + 12345
    claims = {"status": "running", "heartbeat": time.time() - 3600, "pid": dead_pid, "host": socket.gethostname()}
    lock = RunLock(folder)
    lock.acquire()
    assert effective_status(claims, folder=folder) == "running"  # the lock is held: pid and heartbeat are moot
    lock.release()
    alive = {**claims, "pid": os.getpid(), "heartbeat": time.time()}
    assert effective_status(alive, folder=folder) == "interrupted"  # nobody holds it: a reused pid is moot
    assert effective_status({**claims, "host": "elsewhere"}, folder=folder) == "interrupted"


def test_a_status_probe_does_not_refuse_a_trainer(tmp_path):
    folder = create_run_folder(tmp_path / "runs", "cpu")
    first = RunLock(folder)
    first.acquire()  # creates the lock file
    first.release()
    probe = os.open(folder.lock_file, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a reader's lock_held, caught mid-probe
    threading.Timer(0.03, os.close, [probe]).start()
    lock = RunLock(folder)
    lock.acquire()
    lock.release()


def test_a_new_run_folder_is_on_disk_in_its_parent(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(run_folder, "fsync_dir", synced.append)
    folder = create_run_folder(tmp_path / "runs", "cpu")
    assert folder.path in synced and tmp_path / "runs" in synced


def step_event(step: int) -> StepEvent:
    return StepEvent(
        step=step,
        loss=1.0,
        lr=1e-4,
        grad_norm_pre_clip=1.0,
        grad_norm_post_clip=1.0,
        grad_max_abs=1.0,
        grad_min_abs=0.0,
        clipped=False,
        samples_per_s=1.0,
        tokens_per_s=1.0,
        step_time_s=1.0,
        memory_bytes=0,
    )


def test_event_bus_sync_puts_the_metrics_on_disk(tmp_path, monkeypatch):
    import hwm_core.events.bus as events

    synced = []
    monkeypatch.setattr(events.os, "fsync", synced.append)
    bus = EventBus(tmp_path / "metrics.jsonl")
    bus.publish(step_event(1))
    bus.sync()
    assert synced == [bus._file.fileno()]
    bus.close()


def test_event_bus_sync_refuses_while_lines_are_unwritten(tmp_path):
    class FullDisk:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    bus = EventBus(tmp_path / "metrics.jsonl")
    real_file, bus._file = bus._file, FullDisk()
    bus.publish(step_event(1))
    with pytest.raises(OSError, match="not written yet"):
        bus.sync()  # so the checkpoint of step 1 is not saved ahead of its metrics
    bus._file = real_file
    bus.sync()
    bus.close()
    assert [
        json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if line.strip()
    ] == [1]


def test_commands_sent_after_this_process_started_survive_the_inbox(tmp_path):
    started = process_start_time()
    assert started <= time.time() and time.time() - started < 24 * 3600
    inbox_dir = tmp_path / "commands"
    inbox_dir.mkdir()
    (inbox_dir / "00000000000000000001-old.json").write_text(json.dumps({"command": "pause", "time": started - 5}))
    untimed = inbox_dir / "00000000000000000002-untimed.json"
    untimed.write_text(json.dumps({"command": "pause"}))
    os.utime(untimed, (started - 5, started - 5))
    send_to_run(tmp_path, STOP)  # e.g. the launcher's Ctrl-C while the data is checked
    inbox = CommandInbox(tmp_path)
    assert inbox.poll() == [STOP]
    assert not list(inbox_dir.glob("*.json"))


def test_summary_reads_only_new_metrics_lines(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs)
    folder = RunFolder(run)
    meta = folder.read_meta()
    cached = meta["summary"]
    assert cached["metrics_offset"] == (run / "metrics.jsonl").stat().st_size
    # a cache that claims later figures than the file holds is what a reader trusts
    meta["summary"]["last_loss"] = 1.25
    folder.write_meta(meta)
    assert summarize(folder).last_loss == 1.25


def test_a_run_json_of_the_wrong_shape_lists_as_broken(tmp_path):
    runs = tmp_path / "runs"
    good = make_run(runs)
    odd = runs / "20200101-000000-odd"
    odd.mkdir()
    (odd / "run.json").write_text(json.dumps({"id": "x", "status": "completed", "max_steps": "60k"}))
    result = hwm("runs", "list", "--json", "--runs-dir", str(runs))
    assert result.returncode == 0, result.stderr
    statuses = {r["id"]: r["status"] for r in json.loads(result.stdout)}
    assert statuses[good.name] == "completed" and statuses["20200101-000000-odd"] == "broken"


def test_watch_link_reads_a_long_history_in_parts(tmp_path):
    from hwm_core.events.log import event_to_json
    from hwm_tui.watch_link import READ_AT_MOST_BYTES, WatchLink
    from tests.tui_fakes import scripted_events

    run = tmp_path / "run"
    run.mkdir()
    events = scripted_events(9000, 9000)
    (run / "metrics.jsonl").write_text("".join(event_to_json(e) + "\n" for e in events))
    (run / "run.json").write_text(json.dumps({"status": "completed"}))
    assert (run / "metrics.jsonl").stat().st_size > 2 * READ_AT_MOST_BYTES
    link = WatchLink(RunFolder(run))
    parts = []
    while True:
        got = link.poll()
        if not got:
            break
        parts.append(got)
    assert len(parts) >= 3
    assert sum(len(p) for p in parts) == len(events)


def test_a_metrics_line_with_fields_of_the_wrong_type_is_skipped(tmp_path):
    from hwm_core.events.log import read_events

    path = tmp_path / "metrics.jsonl"
    good = '{"type":"state","state":"running","step":3,"time":1.0}\n'
    path.write_text(
        good + '{"type":"state","state":"running","step":null,"time":1.0}\n'
        '{"type":"eval","step":"4","val_loss":1.0,"val_token_acc":0.5,"time":1.0}\n'
        '{"type":"eval","step":4,"val_loss":null,"val_token_acc":0.5,"time":1.0}\n'
    )
    events, _ = read_events(path)
    assert [(e.type, e.step) for e in events] == [("state", 3), ("eval", 4)]
    assert math.isnan(events[1].val_loss)  # a non-finite figure is written as null and read back as NaN
