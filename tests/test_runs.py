"""`hwm-tui runs list/show`: the same facts as the history screen, from the run folders."""

from __future__ import annotations

import json
import socket
import time

from hwm_core.run_folder import RunFolder, effective_status
from hwm_core.run_history import list_runs, summarize

from conftest import hwm
from test_bad_input import make_run


def test_runs_list_and_show_give_the_same_facts(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs, "eval.eval_steps=1", "train.warmup_steps=1")
    listed = json.loads(hwm("runs", "list", "--json", "--runs-dir", str(runs)).stdout)
    shown = hwm("runs", "show", run.name[:10], "--json", "--runs-dir", str(runs))
    assert shown.returncode == 0, shown.stderr
    one = json.loads(shown.stdout)
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
    dead_pid = 2 ** 22 + 12345  # above pid_max on Linux: never alive
    assert effective_status({"status": "running", "heartbeat": now, "pid": dead_pid, "host": here}, now) == "interrupted"
    assert effective_status({"status": "completed"}, now) == "completed"


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
    from hwm_core.events import event_to_json
    from hwm_tui.watch_link import READ_AT_MOST_BYTES, WatchLink
    from tui_fakes import scripted_events

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
