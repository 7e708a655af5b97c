"""Checkpoints: atomic, checksummed, no pickle, failed saves that lose nothing."""

from __future__ import annotations

import errno
import json

import pytest
import torch
from safetensors.torch import load_file

import hwm_core.runs.checkpoint as ckpt
from hwm_core.errors import CheckpointError
from hwm_core.events.bus import EventBus
from hwm_core.events.types import CheckpointEvent, CheckpointFailedEvent, WarningEvent
from hwm_core.runs.history import list_runs
from hwm_core.runs.inbox import CommandInbox
from hwm_core.training.session import TrainRequest, prepare
from hwm_core.training.trainer import Trainer
from tests.helpers import tiny_sets


def resumable(**tensors: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and header with everything a resume reads, as checkpoint_payload writes them."""
    meta = {
        "samples_seen": 32,
        "consecutive_nonfinite": 0,
        "model_shape": {"d_model": 32},
        "optimizer": {"param_groups": [{"lr": 1e-4, "params": [0]}]},
        "rng": {"python": [3, [1, 2, 3], None], "numpy": ["MT19937", [4, 5], 0, 0, 0.0]},
    }
    return {**tensors, "rng.torch": torch.get_rng_state()}, meta


def rewrite_header(path, change, *, reseal: bool = False) -> None:
    """Edit the JSON header in place, as a buggy writer or a hand edit would;
    `reseal` recomputes the checksum, so only the header's contents are wrong."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    meta = json.loads(header["__metadata__"][ckpt.META_KEY])
    change(meta)
    if reseal:
        meta["checksum"] = ckpt.checkpoint_checksum(load_file(str(path)), meta)
    header["__metadata__"][ckpt.META_KEY] = json.dumps(meta)
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)  # safetensors pads the header to 8 bytes
    path.write_bytes(len(new_header).to_bytes(8, "little") + new_header + data[8 + length :])


def test_round_trip_and_checksum(tmp_path):
    tensors, meta = resumable(
        a=torch.randn(3, 4), b=torch.arange(5), c=torch.tensor(2.0), h=torch.randn(4).to(torch.bfloat16)
    )
    path, size = ckpt.save_checkpoint(tmp_path, 7, tensors, {**meta, "note": "x"})
    assert path.name == "step_00000007.safetensors" and size == path.stat().st_size
    loaded = ckpt.load_checkpoint(path)
    assert loaded.step == 7 and loaded.meta["note"] == "x" and loaded.meta["samples_seen"] == 32
    for name, value in tensors.items():
        assert torch.equal(loaded.tensors[name], value)


def test_flipped_byte_fails_the_checksum(tmp_path):
    path, _ = ckpt.save_checkpoint(tmp_path, 1, *resumable(w=torch.ones(1000)))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        ckpt.load_checkpoint(path)


def test_a_changed_header_fails_the_checksum(tmp_path):
    path, _ = ckpt.save_checkpoint(tmp_path, 1, *resumable(w=torch.ones(4)))
    rewrite_header(path, lambda meta: meta.update(samples_seen=33))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda meta: meta.pop("samples_seen"), "has no 'samples_seen'"),
        (lambda meta: meta.update(samples_seen="32"), "malformed 'samples_seen'"),
        (lambda meta: meta.pop("model_shape"), "has no 'model_shape'"),
        (lambda meta: meta.update(optimizer={}), "malformed 'optimizer'"),
        (lambda meta: meta["rng"].pop("numpy"), "malformed 'rng'"),
        (lambda meta: meta.update(consecutive_nonfinite=None, global_batch=-1), "malformed 'global_batch'"),
    ],
)
def test_a_header_a_resume_cannot_use_falls_back_to_the_older_checkpoint(tmp_path, change, needle):
    for step in (1, 2):
        ckpt.save_checkpoint(tmp_path, step, *resumable(w=torch.full((2,), float(step))))
    newest = tmp_path / "step_00000002.safetensors"
    rewrite_header(newest, change, reseal=True)  # checksum-valid: only the schema check can catch it
    good, problems = ckpt.load_latest_good(tmp_path)
    assert good.step == 1
    [(path, why)] = problems
    assert path == newest and needle in why and "\n" not in why


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
        ckpt.save_checkpoint(tmp_path, step, *resumable(w=torch.full((2,), float(step))))
    (tmp_path / "step_00000004.safetensors").write_bytes(b"torn")  # unreadable newest
    ckpt.prune_checkpoints(tmp_path, keep=1)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4, 3]  # the bad file is left for a human
    assert ckpt.latest_readable(tmp_path)[0] == 3
    good, problems = ckpt.load_latest_good(tmp_path)
    assert good.step == 3 and [p.name for p, _ in problems] == ["step_00000004.safetensors"]


def test_pruning_never_deletes_the_newest_verified_checkpoint(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, *resumable(w=torch.full((1000,), float(step))))
    newest = tmp_path / "step_00000003.safetensors"
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF  # bit rot in the tensors: header and size still look whole
    newest.write_bytes(bytes(data))
    assert ckpt.latest_readable(tmp_path)[0] == 3
    assert [p.name for p in ckpt.prune_checkpoints(tmp_path, keep=1)] == ["step_00000001.safetensors"]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 2]
    assert ckpt.load_latest_good(tmp_path)[0].step == 2


def test_a_checkpoint_that_does_not_read_back_is_a_failed_save(tmp_path, monkeypatch):
    older, _ = ckpt.save_checkpoint(tmp_path, 1, *resumable(w=torch.ones(1000)))
    real_write = ckpt._write_file

    def write_then_rot(path, tensors, metadata):
        real_write(path, tensors, metadata)
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF  # what a bad disk or cable hands back
        path.write_bytes(bytes(data))

    monkeypatch.setattr(ckpt, "_write_file", write_then_rot)
    with pytest.raises(OSError, match="does not read back intact"):
        ckpt.save_checkpoint(tmp_path, 2, *resumable(w=torch.ones(1000)))
    assert [p.name for p in tmp_path.iterdir()] == [older.name]  # no temp file, no bad checkpoint
    assert ckpt.load_checkpoint(older).step == 1


def test_setting_aside_twice_keeps_both_damaged_files(tmp_path):
    path = tmp_path / "step_00000004.safetensors"
    for content in (b"first", b"second"):
        path.write_bytes(content)
        ckpt.set_aside(path)
    assert (tmp_path / "step_00000004.safetensors.damaged").read_bytes() == b"first"
    assert (tmp_path / "step_00000004.safetensors.damaged-2").read_bytes() == b"second"
    assert not path.exists()


def test_failed_save_keeps_the_previous_checkpoint_and_training_goes_on(tmp_path, monkeypatch):
    session = prepare(
        TrainRequest(
            preset="cpu",
            runs_dir=str(tmp_path / "runs"),
            max_steps=12,
            overrides=tiny_sets("checkpoint.save_steps=4", "eval.eval_steps=0"),
        )
    )
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
    import hwm_core.model.masked_hwm as model_module

    session = prepare(
        TrainRequest(
            preset="cpu",
            runs_dir=str(tmp_path / "runs"),
            max_steps=10,
            overrides=tiny_sets("checkpoint.save_steps=2", "eval.eval_steps=0", "train.max_nonfinite_steps=2"),
        )
    )
    real_loss = model_module.masked_token_loss

    def nan_from_step_3(*args):
        per_sample, correct = real_loss(*args)
        return (per_sample * float("nan"), correct) if session.state.step >= 2 else (per_sample, correct)

    monkeypatch.setattr(model_module, "masked_token_loss", nan_from_step_3)
    bus = EventBus(session.folder.metrics)
    status = Trainer(session, bus, CommandInbox(session.folder.path)).run()
    bus.close()
    session.close()
    run_dir = session.folder.path
    assert status == "diverged"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "diverged" and "non-finite steps in a row" in meta["error"]
    assert [s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints")] == [2]
    good = ckpt.load_checkpoint(run_dir / "checkpoints" / "step_00000002.safetensors")
    assert all(torch.isfinite(t).all() for name, t in good.tensors.items() if name.startswith("model."))
    [summary] = list_runs(tmp_path / "runs")
    assert summary.status == "diverged" and summary.resumable and summary.latest_checkpoint_step == 2


def test_a_real_io_error_while_saving_is_survived(tmp_path):
    """A file-size limit makes the OS refuse the checkpoint bytes as a full disk
    would; safetensors reports that with its own error type, which must not end
    the run."""
    import resource
    import subprocess
    import sys

    from hwm_core.data import synthetic_split
    from tests.helpers import REPO, read_metrics, set_args

    for role in ("train", "val"):  # the data cache is written before the limit applies
        synthetic_split(role, shards=1, frames=1020, seed=0)
    limit = 300_000  # bytes: metrics lines fit, a ~900 KB checkpoint does not

    def cap_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    runs = tmp_path / "runs"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwm_tui",
            "train",
            "--preset",
            "cpu",
            "--headless",
            "--runs-dir",
            str(runs),
            "--max-steps",
            "4",
            *set_args(tiny_sets("checkpoint.save_steps=2", "eval.eval_steps=0")),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap_file_size,
    )
    assert "Traceback" not in result.stderr + result.stdout
    [run] = list(runs.iterdir())
    events = read_metrics(run)
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4]  # trained on past step 2
    assert [e["step"] for e in events if e["type"] == "checkpoint_failed"][0] == 2
    # Without its final weights on disk a run is not completed: it fails, saying how to resume.
    meta = json.loads((run / "run.json").read_text())
    assert result.returncode == 1 and meta["status"] == "failed" and "final checkpoint" in meta["error"]
    assert not list((run / "checkpoints").iterdir())  # no partial file left behind


def test_resume_passes_over_a_header_without_samples_seen(tmp_path):
    from tests.helpers import make_run

    runs = tmp_path / "runs"
    run = make_run(runs, "checkpoint.save_steps=1")
    newest = run / "checkpoints" / "step_00000002.safetensors"
    rewrite_header(newest, lambda meta: meta.pop("samples_seen"), reseal=True)
    session = prepare(TrainRequest(resume=run.name, runs_dir=str(runs), max_steps=3))
    session.close()
    assert session.resumed_from == 1 and "has no 'samples_seen'" in session.notices[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_00000001.safetensors",
        "step_00000002.safetensors.damaged",
    ]
