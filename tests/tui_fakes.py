"""A scripted run for dashboard tests: fixed events, a fixed clock, recorded commands."""

from __future__ import annotations

import math
from pathlib import Path

from hwm_core.events.types import CheckpointEvent, EvalEvent, StartEvent, StateEvent, StepEvent, WarningEvent
from hwm_core.runs.inbox import PAUSE, RESUME, STOP

T0 = 1_790_000_000.0  # a fixed start time, so nothing on screen depends on the clock


def scripted_events(steps: int = 300, max_steps: int = 600, *, run_id: str = "20261125-120000-cpu") -> list:
    events: list = [
        StartEvent(
            run_id=run_id,
            run_dir=f"/runs/{run_id}",
            preset="cpu",
            device="cpu (2 threads)",
            start_step=0,
            max_steps=max_steps,
            peak_lr=2e-3,
            warmup_steps=30,
            schedule="cosine",
            max_grad_norm=1.0,
            global_batch=4,
            world_size=1,
            num_parameters=220856,
            tokens_per_sample=3072,
            codebook_size=64000,
            time=T0,
        ),
        StateEvent("running", 0, time=T0),
    ]
    for step in range(1, steps + 1):
        loss = 5.5 + 5.57 * math.exp(-step / 90) + 0.15 * math.sin(step * 1.7)
        pre = 1.5 + 0.8 * math.sin(step / 7) + (140.0 if step == 120 else 0.0)
        if step < 30:
            lr = 2e-3 * step / 30
        else:
            lr = 2e-3 * 0.5 * (1 + math.cos(math.pi * (step - 30) / (max_steps - 30)))
        events.append(
            StepEvent(
                step=step,
                loss=loss,
                lr=lr,
                grad_norm_pre_clip=pre,
                grad_norm_post_clip=min(pre, 1.0),
                grad_max_abs=0.5,
                grad_min_abs=0.0,
                clipped=pre > 1.0,
                samples_per_s=10.0,
                tokens_per_s=30720.0,
                step_time_s=0.4,
                memory_bytes=640 * 2**20,
                time=T0 + step * 0.4,
            )
        )
        if step == 120:
            events.append(
                WarningEvent(
                    step=step,
                    kind="instability",
                    value=pre,
                    message="pre-clip norm > 100: lower lr or check data",
                    time=T0 + 48,
                )
            )
        if step == 200:
            events.append(
                WarningEvent(
                    step=step,
                    kind="nonfinite",
                    value=float("nan"),
                    message="non-finite loss or gradients: step skipped; lower lr or check data (1/10 in a row)",
                    time=T0 + 80,
                )
            )
        if step % 50 == 0:
            events.append(
                EvalEvent(step=step, val_loss=loss + 0.3, val_token_acc=0.01 * step / 50, time=T0 + step * 0.4)
            )
        if step % 100 == 0:
            events.append(
                CheckpointEvent(
                    step=step,
                    path=f"/runs/{run_id}/checkpoints/step_{step:08d}.safetensors",
                    seconds=0.1,
                    bytes=2_700_000,
                    time=T0 + step * 0.4,
                )
            )
    return events


class FakeLink:
    """Plays scripted events and answers commands the way the trainer does."""

    generation = 0

    def __init__(self, events: list, *, alive: bool = True, run_dir: Path | None = None, error: str | None = None):
        self.pending = list(events)
        self.sent: list[str] = []
        self._alive = alive
        self.run_dir = run_dir
        self.error = error  # what a LocalLink knows of a trainer thread that raised
        self.step = max((getattr(e, "step", 0) for e in events), default=0)

    def poll(self) -> list:
        out, self.pending = self.pending, []
        return out

    def send(self, command: str) -> None:
        self.sent.append(command)
        if command == PAUSE:
            self.pending.append(StateEvent("paused", self.step, time=T0 + 200))
        elif command == RESUME:
            self.pending.append(StateEvent("running", self.step, time=T0 + 201))
        elif command == STOP:
            self.pending.append(StateEvent("interrupted", self.step, time=T0 + 202))
            self._alive = False

    @property
    def alive(self) -> bool:
        return self._alive

    def close(self) -> None:
        pass


def fixed_clock() -> float:
    return T0 + 200.0


def write_fake_run(
    runs: Path,
    run_id: str,
    *,
    status: str,
    started: float,
    steps: int,
    max_steps: int = 600,
    ended: float | None = None,
    sets: list[str] | None = None,
) -> Path:
    """A run folder in the on-disk format, with scripted metrics (no checkpoint)."""
    from hwm_core.config.loading import load_config
    from hwm_core.events.log import event_to_json

    run = runs / run_id
    (run / "checkpoints").mkdir(parents=True)
    events = scripted_events(steps, max_steps, run_id=run_id)
    (run / "metrics.jsonl").write_text("".join(event_to_json(e) + "\n" for e in events))
    (run / "config.toml").write_text(load_config("cpu", sets or []).to_toml())
    meta = {
        "id": run_id,
        "preset": "cpu",
        "status": status,
        "started": started,
        "ended": ended,
        "heartbeat": ended or started,
        "device": "cpu (2 threads)",
        "max_steps": max_steps,
        "pid": None,
        "host": "elsewhere",
    }
    (run / "run.json").write_text(__import__("json").dumps(meta))
    return run


def prepared_runs(runs: Path) -> None:
    """Three finished runs and a broken one, for the history screen."""
    write_fake_run(runs, "20261120-090000-cpu", status="completed", started=T0, steps=600, ended=T0 + 240)
    write_fake_run(runs, "20261121-090000-cpu", status="failed", started=T0 + 86400, steps=210, ended=T0 + 86400 + 90)
    write_fake_run(
        runs, "20261122-090000-cpu", status="interrupted", started=T0 + 2 * 86400, steps=300, ended=T0 + 2 * 86400 + 120
    )
    broken = runs / "20261123-090000-cpu"
    broken.mkdir()
    (broken / "run.json").write_text("{torn")
