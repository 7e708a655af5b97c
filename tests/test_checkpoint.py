"""Checkpoints: atomic, checksummed, no pickle, failed saves that lose nothing."""

from __future__ import annotations

import errno
import json

import pytest
import torch

import hwm_core.checkpoint as ckpt
from hwm_core.commands import CommandInbox
from hwm_core.errors import CheckpointError
from hwm_core.events import CheckpointEvent, CheckpointFailedEvent, EventBus, WarningEvent
from hwm_core.run_history import list_runs
from hwm_core.session import TrainRequest, prepare
from hwm_core.trainer import Trainer

from conftest import tiny_sets


def test_round_trip_and_checksum(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.tensor(2.0),
               "h": torch.randn(4).to(torch.bfloat16)}
    path, size = ckpt.save_checkpoint(tmp_path, 7, tensors, {"note": "x"})
    assert path.name == "step_00000007.safetensors" and size == path.stat().st_size
    loaded = ckpt.load_checkpoint(path)
    assert loaded.step == 7 and loaded.meta["note"] == "x"
    for name, value in tensors.items():
        assert torch.equal(loaded.tensors[name], value)


def test_flipped_byte_fails_the_checksum(tmp_path):
    path, _ = ckpt.save_checkpoint(tmp_path, 1, {"w": torch.ones(1000)}, {})
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", None])
def test_unreadable_files_are_refused_in_one_line(tmp_path, content):
    path = tmp_path / "step_00000001.safetensors"
    if content is None:  # a pickle, as torch.save writes: must not be unpickled
        torch.save({"w": torch.ones(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        ckpt.load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_pruning_keeps_newest_readable(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, {})
    (tmp_path / "step_00000004.safetensors").write_bytes(b"torn")  # unreadable newest
    ckpt.prune_checkpoints(tmp_path, keep=1)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4, 3]  # the bad file is left for a human
    assert ckpt.latest_readable(tmp_path)[0] == 3
    good, problems = ckpt.load_latest_good(tmp_path)
    assert good.step == 3 and [p.name for p, _ in problems] == ["step_00000004.safetensors"]


def test_failed_save_keeps_the_previous_checkpoint_and_training_goes_on(tmp_path, monkeypatch):
    session = prepare(TrainRequest(preset="cpu", runs_dir=str(tmp_path / "runs"), max_steps=12,
                                   overrides=tiny_sets("checkpoint.save_steps=4", "eval.eval_steps=0")))
    real_write = ckpt._write_file

    def disk_full_at_step_8(path, tensors, metadata):
        if "step_00000008" in path.name:
            with open(path, "wb") as fh:  # a partial file, as a full disk leaves it
                fh.write(b"\x00" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, tensors, metadata)

    monkeypatch.setattr(ckpt, "_write_file", disk_full_at_step_8)
    bus = EventBus(session.folder.metrics)
    events = bus.subscribe()
    run_dir = session.folder.path

    status = Trainer(session, bus, CommandInbox(session.folder.path)).run()
    bus.close()
    assert status == "completed"
    seen = []
    while not events.empty():
        seen.append(events.get())
    failed = [e for e in seen if isinstance(e, CheckpointFailedEvent)]
    assert [(e.step, e.error) for e in failed] == [(8, "No space left on device")]
    assert any(isinstance(e, WarningEvent) and e.kind == "checkpoint" for e in seen)
    assert [e.step for e in seen if isinstance(e, CheckpointEvent)] == [4, 12]
    steps = sorted(s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints"))
    assert steps == [4, 12]
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))  # the partial file was removed
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "step_00000004.safetensors").step == 4
    [summary] = list_runs(tmp_path / "runs")
    assert summary.status == "completed" and summary.latest_checkpoint_step == 12
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_run_that_fails_on_nan_keeps_its_last_good_checkpoint(tmp_path, monkeypatch):
    import hwm_core.trainer as trainer_module

    session = prepare(TrainRequest(preset="cpu", runs_dir=str(tmp_path / "runs"), max_steps=10,
                                   overrides=tiny_sets("checkpoint.save_steps=2", "eval.eval_steps=0",
                                                       "train.max_nonfinite_steps=2")))
    real_loss = trainer_module.masked_token_loss

    def nan_from_step_3(*args):
        per_sample, correct = real_loss(*args)
        return (per_sample * float("nan"), correct) if session.state.step >= 2 else (per_sample, correct)

    monkeypatch.setattr(trainer_module, "masked_token_loss", nan_from_step_3)
    bus = EventBus(session.folder.metrics)
    status = Trainer(session, bus, CommandInbox(session.folder.path)).run()
    bus.close()
    session.close()
    run_dir = session.folder.path
    assert status == "failed"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and "non-finite steps in a row" in meta["error"]
    assert [s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints")] == [2]
    good = ckpt.load_checkpoint(run_dir / "checkpoints" / "step_00000002.safetensors")
    assert all(torch.isfinite(t).all() for name, t in good.tensors.items() if name.startswith("model."))
    [summary] = list_runs(tmp_path / "runs")
    assert summary.status == "failed" and summary.resumable and summary.latest_checkpoint_step == 2


def test_a_real_io_error_while_saving_is_survived(tmp_path):
    """A file-size limit makes the OS refuse the checkpoint bytes as a full disk
    would; safetensors reports that with its own error type, which must not end
    the run."""
    import resource
    import subprocess
    import sys

    from hwm_core.data import synthetic_split
    from conftest import REPO, read_metrics, set_args

    for role in ("train", "val"):  # the data cache is written before the limit applies
        synthetic_split(role, shards=1, frames=1020, seed=0)
    limit = 300_000  # bytes: metrics lines fit, a ~900 KB checkpoint does not

    def cap_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    runs = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "hwm_tui", "train", "--preset", "cpu", "--headless",
                             "--runs-dir", str(runs), "--max-steps", "4",
                             *set_args(tiny_sets("checkpoint.save_steps=2", "eval.eval_steps=0"))],
                            cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=cap_file_size)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [run] = list(runs.iterdir())
    events = read_metrics(run)
    assert [e["step"] for e in events if e["type"] == "checkpoint_failed"] == [2, 4]
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4]
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert not list((run / "checkpoints").iterdir())  # no partial file left behind
