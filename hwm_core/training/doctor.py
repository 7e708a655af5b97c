"""`hwm-tui doctor`: is this machine ready for a long run of a preset? As data.

The machine's checks (runtime/machine_checks.py), then, with a preset, what it resolves
to and a few real training steps of it, on its device, as it configures them (compiled,
its micro-batch or auto, under its memory budget): whether it fits and with what peak,
samples/s, share of matmul FLOP/s, compile seconds, the share spent waiting for data,
the loss at initialisation against ln 64,000, finite gradients. A run of 60,000 steps
that would fail in its first minute fails here instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config.loading import load_config
from ..config.schema import AUTO, Config
from ..figures import format_bytes
from ..fsq import CODEBOOK_SIZE
from ..model.masked_hwm import MaskedHWM
from ..runtime.machine_checks import FAIL, NOTICE, OK, Check, machine_checks
from .bench import OK as BENCH_OK
from .bench import BenchResult, run_bench

TRIAL_STEPS = 3  # timed steps, after the bench's warm-up (and the compiling step)
INIT_LOSS = math.log(CODEBOOK_SIZE)  # 11.07: a model at initialisation guesses uniformly
INIT_LOSS_TOLERANCE = 0.5
DATA_WAIT_NOTICE = 0.2  # of the step: the data path, not the GPU, sets the pace


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}


def diagnose(runs_dir: Path, preset: str | None = None, *, trial: bool = True) -> DoctorReport:
    """Every check; a bad preset name is the caller's one-line error (load_config raises)."""
    config = load_config(preset) if preset else None
    need = checkpoint_bytes(config) if config is not None else 0
    report = DoctorReport(machine_checks(runs_dir, need))
    if config is not None:
        report.checks += preset_checks(config, trial=trial)
    return report


def checkpoint_bytes(config: Config) -> int:
    """The disk the preset's kept checkpoints take: weights and Adam's two moments, fp32,
    each kept checkpoint, plus one being written. Counted on the meta device: no memory."""
    with torch.device("meta"):
        params = MaskedHWM(config.model, config.latent_frames).num_parameters()
    return 3 * 4 * params * (config.checkpoint.keep_checkpoints + 1)


def preset_checks(config: Config, *, trial: bool) -> list[Check]:
    t = config.train
    batch = "auto" if t.batch_size == AUTO else f"{t.batch_size} x {t.grad_accum_steps}"
    budget = f" · memory budget {config.memory_budget_gib:g} GiB" if config.memory_budget_gib else ""
    resolved = Check(
        f"preset {config.preset}",
        OK,
        f"{t.max_steps:,} steps · micro-batch x accumulation {batch} · device {t.device} · {t.precision}"
        f" · compile {t.compile}{budget}",
        data={"max_steps": t.max_steps, "batch": batch, "device": t.device, "compile": t.compile},
    )
    if not trial:
        return [resolved]
    gpu_preset = config.memory_budget_gib > 0 or t.device == "cuda"
    if gpu_preset and not torch.cuda.is_available():
        return [
            resolved,
            Check(
                "trial",
                FAIL,
                f"preset {config.preset} is made for a GPU and none is visible: its steps were not tried",
                "run it on a GPU machine, or try --preset cpu here",
            ),
        ]
    return [resolved, *trial_checks(config)]


def trial_checks(config: Config) -> list[Check]:
    """A few real steps of the preset, as bench train runs them under its budget."""
    on_cuda = torch.cuda.is_available() and config.train.device != "cpu"
    limit = (config.memory_budget_gib or None) if on_cuda else None
    result = run_bench(config.preset, steps=TRIAL_STEPS, memory_limit_gib=limit)
    if result.outcome != BENCH_OK:
        return [
            Check(
                "trial",
                FAIL,
                f"{result.outcome}: {result.error}",
                "lower train.batch_size (or set it to auto) and raise train.grad_accum_steps, or a smaller preset"
                if result.fits_budget is False
                else "see the error; `hwm-tui bench train --preset NAME` shows the same run",
                result.to_json(),
            )
        ]
    return [_fits(result), _speed(result), _compiled(result), _init_loss(result), _gradients(result)]


def _fits(r: BenchResult) -> Check:
    data = {"held_bytes": r.held_memory_bytes, "peak_bytes": r.peak_memory_bytes, "budget_gib": r.memory_budget_gib}
    if r.fits_budget is None:
        return Check(
            "memory", OK, f"peak {format_bytes(r.peak_memory_bytes)} ({r.peak_memory_kind}), no budget", data=data
        )
    detail = (
        f"holds {format_bytes(r.held_memory_bytes)} ({r.held_memory_kind}) of its "
        f"{r.memory_budget_gib:g} GiB budget; allocator peak {format_bytes(r.peak_memory_bytes)}"
    )
    if r.fits_budget:
        return Check("memory", OK, "fits: " + detail, data=data)
    return Check("memory", FAIL, "over budget: " + detail, "lower train.batch_size or set it to auto", data)


def _speed(r: BenchResult) -> Check:
    detail = (
        f"{r.samples_per_s:.2f} samples/s · {r.flops_share:.1%} of this device's matmul FLOP/s · "
        f"{r.data_wait_share:.0%} of the step waiting for data · micro-batch {r.micro_batch} x {r.grad_accum_steps}"
    )
    data = {
        "samples_per_s": r.samples_per_s,
        "flops_share": r.flops_share,
        "data_wait_share": r.data_wait_share,
        "step_time_s": r.step_time_s,
    }
    if r.data_wait_share > DATA_WAIT_NOTICE:
        return Check(
            "speed", NOTICE, detail, "the data path sets the pace: faster disk, or the data on local disk", data
        )
    return Check("speed", OK, detail, data=data)


def _compiled(r: BenchResult) -> Check:
    if r.compile == "off":
        return Check("compile", OK, "off (the preset trains eager)", data={"compile": "off"})
    if r.compile_error:
        return Check(
            "compile",
            NOTICE,
            f"train.compile = {r.compile} failed and the steps ran eager: {r.compile_error}",
            "set train.compile = off to skip the attempt, or fix the toolchain",
            {"compile": r.compile, "error": r.compile_error},
        )
    return Check("compile", OK, f"{r.compile}: compiled in {r.compile_s or 0:.1f} s", data={"seconds": r.compile_s})


def _init_loss(r: BenchResult) -> Check:
    data = {"loss": r.first_loss, "expected": INIT_LOSS}
    detail = f"first loss {r.first_loss:.2f}, ln 64,000 = {INIT_LOSS:.2f} expected at initialisation"
    if math.isfinite(r.first_loss) and abs(r.first_loss - INIT_LOSS) <= INIT_LOSS_TOLERANCE:
        return Check("loss at init", OK, detail, data=data)
    return Check("loss at init", FAIL, detail, "check model.init_std and the data's codes (0..63,999)", data)


def _gradients(r: BenchResult) -> Check:
    if r.nonfinite_steps:
        return Check(
            "gradients",
            FAIL,
            f"{r.nonfinite_steps} of {r.steps + r.warmup_steps} steps had non-finite loss or gradients",
            "lower train.lr, or train.precision = fp32 to see whether bf16 overflows",
            {"nonfinite_steps": r.nonfinite_steps},
        )
    return Check("gradients", OK, f"finite in all {r.steps + r.warmup_steps} steps", data={"nonfinite_steps": 0})
