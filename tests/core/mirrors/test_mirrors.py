"""Mirrors: TensorBoard and W&B hold what metrics.jsonl holds, a resume never
duplicates a step, and no logger can make the training thread wait or fail."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hwm_core.events.bus import EventBus
from hwm_core.events.types import StepEvent, WarningEvent
from hwm_core.mirrors.thread import MirrorThread
from hwm_core.runs.inbox import CommandInbox
from hwm_core.training.runner import TrainingRunner
from hwm_core.training.session import TrainRequest, prepare
from hwm_core.training.trainer import Trainer
from tests.helpers import hwm, make_run, read_metrics, set_args, tiny_sets, wandb_history, wandb_records

SETS = ("eval.eval_steps=2", "checkpoint.save_steps=2")


def train(runs: Path, max_steps: int, *extra: str, resume: str | None = None) -> Path:
    """A tiny run trained by the runner (the trainer's thread and the mirror thread), as `train` does."""
    overrides = list(extra) if resume else tiny_sets(*SETS, *extra)
    session = prepare(
        TrainRequest(preset="cpu", runs_dir=str(runs), max_steps=max_steps, overrides=overrides, resume=resume)
    )
    runner = TrainingRunner(session).start()
    assert runner.join(timeout=300)
    assert runner.status == "completed", (runner.status, runner.error, runner.trainer.error)
    assert session.folder is not None
    return session.folder.path


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def texts(run: Path, tag: str) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    return [e.tensor_proto.string_val[0].decode() for e in events.Tensors(f"{tag}/text_summary")]


def jsonl(run: Path, kind: str, field: str) -> list[tuple[int, float]]:
    return [(e["step"], e[field]) for e in read_metrics(run) if e["type"] == kind]


def test_tensorboard_holds_every_step_eval_and_warning_of_metrics_jsonl(runs_dir):
    # instability_norm this low warns at every step, so warnings travel too
    run = train(runs_dir, 4, "log.mirrors=['tensorboard']", "health.instability_norm=1e-9")
    for tag, kind, field in (
        ("train/loss", "step", "loss"),
        ("train/lr", "step", "lr"),
        ("grad/norm_pre_clip", "step", "grad_norm_pre_clip"),
        ("grad/norm_post_clip", "step", "grad_norm_post_clip"),
        ("grad/max_abs", "step", "grad_max_abs"),
        ("grad/min_abs", "step", "grad_min_abs"),
        ("perf/tokens_per_s", "step", "tokens_per_s"),
        ("eval/val_loss", "eval", "val_loss"),
        ("eval/val_token_acc", "eval", "val_token_acc"),
    ):
        expected = jsonl(run, kind, field)
        assert expected, (tag, "metrics.jsonl has none")
        got = scalars(run, tag)
        assert [s for s, _ in got] == [s for s, _ in expected], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6), tag  # TB keeps float32
    warnings = [e for e in read_metrics(run) if e["type"] == "warning"]
    assert len(warnings) == 4 and {w["kind"] for w in warnings} == {"instability"}
    assert texts(run, "warnings") == [f"step {w['step']} [instability] {w['message']}" for w in warnings]
    assert "model.d_model = 32" in texts(run, "config")[0]


def test_wandb_offline_run_holds_the_history_and_config_of_the_run(runs_dir):
    run = train(runs_dir, 4, "log.mirrors=['wandb']")
    rows = wandb_history(run)
    steps = [e for e in read_metrics(run) if e["type"] == "step"]
    by_step = {row["_step"]: row for row in rows}
    assert [row["_step"] for row in rows] == [0, 1, 2, 3, 4]  # one row a step, at the run's own step
    assert by_step[0]["state"].startswith("step 0: started on cpu")  # the start, as text
    for e in steps:
        row = by_step[e["step"]]
        assert row["train/loss"] == e["loss"] and row["train/lr"] == e["lr"]  # JSON floats: exact
        assert row["grad/norm_pre_clip"] == e["grad_norm_pre_clip"]
        assert row["perf/tokens_per_s"] == e["tokens_per_s"]
    for e in read_metrics(run):
        if e["type"] == "eval":
            assert by_step[e["step"]]["eval/val_loss"] == e["val_loss"]
    (run_file,) = run.glob("wandb/offline-run-*/run-*.wandb")
    header = next(r.run for r in wandb_records(run_file) if r.WhichOneof("record_type") == "run")
    assert header.run_id == run.name and header.project == "hwm-tui"
    config = {item.key: json.loads(item.value_json) for item in header.config.update}
    assert config["model"]["d_model"] == 32 and config["log"]["mirrors"] == ["wandb"]  # config.toml's values


def test_a_resumed_run_appends_to_its_mirrors_and_never_duplicates_a_step(runs_dir):
    run = train(runs_dir, 3, "log.mirrors=['tensorboard', 'wandb']")
    # killed after step 3 was mirrored, before it was checkpointed: the resume goes on from step 2
    (run / "checkpoints" / "step_00000003.safetensors").unlink()
    train(runs_dir, 5, resume=run.name)
    steps = jsonl(run, "step", "loss")
    assert [s for s, _ in steps] == [1, 2, 3, 4, 5]
    tb = scalars(run, "train/loss")
    assert [s for s, _ in tb] == [1, 2, 3, 4, 5]  # step 3 of the first session purged
    assert [v for _, v in tb] == pytest.approx([v for _, v in steps], rel=1e-6)
    rows = [row for row in wandb_history(run) if "train/loss" in row]
    assert [row["_step"] for row in rows] == [1, 2, 3, 4, 5]  # two local sessions, each step once
    assert [row["train/loss"] for row in rows if row["_step"] > 3] == [v for s, v in steps if s > 3]
    notices = [e["message"] for e in read_metrics(run) if e["type"] == "warning" and e["kind"] == "mirror"]
    assert len(notices) == 1 and "already holds steps 3..3" in notices[0], notices


class Blocking:
    """A logger stuck on the network: write waits until the test lets it go."""

    name = "slow"

    def __init__(self):
        self.notices: list[str] = []
        self.release = threading.Event()
        self.written: list = []

    def write(self, event) -> None:
        self.release.wait()
        self.written.append(event)

    def close(self) -> None:
        pass


def tiny_session(steps: int):
    return prepare(
        TrainRequest(preset="cpu", overrides=tiny_sets("eval.eval_steps=0", f"train.max_steps={steps}")),
        create_run=False,
    )


def test_a_logger_that_blocks_never_makes_the_training_thread_wait():
    bus = EventBus(None)
    seen = bus.subscribe()
    slow = Blocking()
    mirrors = MirrorThread([("slow", lambda: slow)], bus.publish, capacity=8).start(bus)
    # The logger is stuck on the first event for the whole run: if any publish waited on
    # it, this would never return.
    status = Trainer(tiny_session(20), bus, CommandInbox()).run()
    assert status == "completed" and slow.written == []
    slow.release.set()
    assert mirrors.close(timeout=60)
    events = []
    while not seen.empty():
        events.append(seen.get())
    assert mirrors.queue.dropped > 0
    dropped = [e for e in events if isinstance(e, WarningEvent) and e.kind == "mirror"]
    assert dropped and "events dropped" in dropped[-1].message
    assert dropped[-1].value == mirrors.queue.dropped  # the last report counts them all
    # the oldest went, the newest were written: the last step reached the logger
    assert [e.step for e in slow.written if isinstance(e, StepEvent)][-1] == 20


class Failing(Blocking):
    name = "broken"

    def write(self, event) -> None:
        if isinstance(event, StepEvent) and event.step == 2:
            raise ConnectionError("the server went away\nsecond line")
        self.written.append(event)


def test_a_failing_logger_warns_once_and_training_and_the_other_mirrors_go_on():
    bus = EventBus(None)
    seen = bus.subscribe()
    broken, fine = Failing(), Blocking()
    fine.release.set()

    def cannot_open():
        raise ImportError("No module named 'wandb'")

    mirrors = MirrorThread(
        [("broken", lambda: broken), ("wandb", cannot_open), ("fine", lambda: fine)], bus.publish
    ).start(bus)
    assert Trainer(tiny_session(5), bus, CommandInbox()).run() == "completed"
    assert mirrors.close(timeout=60)
    warnings = []
    while not seen.empty():
        event = seen.get()
        if isinstance(event, WarningEvent) and event.kind == "mirror":
            warnings.append(event.message)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("the wandb mirror stopped (ImportError: No module named 'wandb')")
    assert warnings[1].startswith("the broken mirror stopped (ConnectionError: the server went away)")
    assert [e.step for e in fine.written if isinstance(e, StepEvent)] == [1, 2, 3, 4, 5]
    assert [e.step for e in broken.written if isinstance(e, StepEvent)] == [1]


def test_a_mirror_hung_at_the_end_is_left_behind_with_a_warning_naming_it():
    bus = EventBus(None)
    seen = bus.subscribe()
    slow = Blocking()
    mirrors = MirrorThread([("slow", lambda: slow)], bus.publish).start(bus)
    bus.publish(StepEvent(1, 1.0, 1e-3, 1.0, 1.0, 1.0, 0.0, False, 1.0, 1.0, 1.0, 0))
    assert not mirrors.close(timeout=0.5)
    warnings = []
    while not seen.empty():
        event = seen.get()
        if isinstance(event, WarningEvent):
            warnings.append(event)
    assert len(warnings) == 1 and warnings[0].message.startswith("the slow mirror did not finish within 0 s")
    slow.release.set()


def test_runs_export_tensorboard_writes_what_metrics_jsonl_holds(runs_dir, tmp_path):
    run = make_run(runs_dir)
    result = hwm("runs", "export", run.name, "--tensorboard", "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    assert str(run / "tensorboard") in result.stdout
    expected = jsonl(run, "step", "loss")
    assert len(expected) == 2
    got = scalars(run, "train/loss")
    assert [s for s, _ in got] == [1, 2] and [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)
    again = hwm("runs", "export", run.name, "--tensorboard", "--runs-dir", str(runs_dir))
    lines = again.stderr.strip().splitlines()
    assert again.returncode == 2 and len(lines) == 1 and "already holds TensorBoard event files" in lines[0]
    elsewhere = hwm(
        "runs", "export", run.name, "--tensorboard", "--out", str(tmp_path / "tb"), "--runs-dir", str(runs_dir)
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--log", "tensorbord"], "--log 'tensorbord': choose tensorboard, wandb"),
        (["--log", "none", "--log", "wandb"], "--log 'none': choose tensorboard, wandb"),
        (["--set", "log.mirrors=['mlflow']"], "log.mirrors must list each of tensorboard, wandb at most once"),
    ],
)
def test_a_bad_log_value_is_one_line_and_exit_2(args, says, runs_dir):
    result = hwm("train", "--headless", "--runs-dir", str(runs_dir), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr
    assert not runs_dir.exists()


def test_a_mirror_without_its_package_stops_the_run_before_it_starts(monkeypatch, runs_dir):
    import importlib.util

    from hwm_core.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'hwm-tui\[wandb\]'"):
        prepare(TrainRequest(preset="cpu", runs_dir=str(runs_dir), overrides=tiny_sets("log.mirrors=['wandb']")))
    assert not runs_dir.exists()


def test_bench_train_times_the_steps_with_and_without_a_mirror_side_by_side():
    result = hwm("bench", "train", "--steps", "2", "--log", "tensorboard", "--json", *set_args(tiny_sets()))
    assert result.returncode == 0, result.stderr
    plain, mirrored = json.loads(result.stdout)
    assert (plain["mirrors"], plain["step_time_ratio"]) == ([], None)
    assert mirrored["mirrors"] == ["tensorboard"]
    assert mirrored["step_time_ratio"] == pytest.approx(mirrored["step_time_s"] / plain["step_time_s"])
    bad = hwm("bench", "train", "--log", "tensorbord")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --log 'tensorbord': choose tensorboard, wandb (repeat --log for both) or none"
    ]
