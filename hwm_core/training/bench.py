"""`hwm-tui bench train`: the real training step of a preset, timed, with its memory and
its FLOP/s as a share of what this machine's dense matmuls reach in the same run.

Compiling (train.compile) happens in the warm-up steps and is reported apart from
the step time; so is the share of the step spent waiting for the data path."""

from __future__ import annotations

import gc
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..config.presets import preset_names
from ..events.bus import EventBus
from ..events.types import CompileEvent, StepEvent
from ..mirrors.base import MirrorContext, check_installed
from ..mirrors.thread import MirrorThread
from ..model.flops import train_flops_per_step
from ..runs.inbox import CommandInbox
from ..runtime.device import GIB, describe_device, effective_precision, peak_memory_bytes
from .session import TrainRequest, prepare
from .trainer import Trainer

ALL_PRESETS = "all"


@dataclass
class BenchResult:
    preset: str
    device: str
    precision: str
    steps: int
    warmup_steps: int
    global_batch: int
    num_parameters: int
    step_time_s: float
    step_time_min_s: float
    samples_per_s: float
    tokens_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    model_flops_per_step: float
    achieved_flops_per_s: float
    matmul_flops_per_s: float
    flops_share: float
    micro_batch: int = 0
    grad_accum_steps: int = 0
    compile: str = "off"
    compile_s: float | None = None  # the first (compiling) step; None if not compiled
    compile_error: str | None = None  # why compiling failed, if it did (the bench then ran eager)
    data_wait_share: float = 0.0  # of the timed steps' time, spent waiting for micro-batches
    memory_limit_gib: float = 0.0  # the cap the run had (0: none)
    memory_budget_gib: float = 0.0  # what the preset promises to fit in (0: no promise)
    fits_budget: bool | None = None  # peak CUDA memory within the budget; None on CPU or without one
    mirrors: list[str] = field(default_factory=list)  # log.mirrors the timed steps were mirrored to
    step_time_ratio: float | None = None  # median step time over the same preset's without mirrors (bench train --log)

    def to_json(self) -> dict:
        return asdict(self)


def measure_matmul_flops(device: torch.device, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Best dense-matmul FLOP/s this device reaches for `dtype` right now."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    deadline = time.perf_counter() + seconds
    reps = 10 if device.type == "cuda" else 2
    torch.matmul(a, b)  # warm-up: kernels chosen, caches filled
    _sync(device)
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        _sync(device)
        best = max(best, reps * 2 * n**3 / (time.perf_counter() - start))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_presets(preset: str) -> list[str]:
    """`all` is every shipped preset, smallest first."""
    return preset_names() if preset == ALL_PRESETS else [preset]


def run_bench(
    preset: str,
    *,
    steps: int = 5,
    device: str | None = None,
    warmup: int | None = None,
    overrides: list[str] | None = None,
    memory_limit_gib: float | None = None,
    mirrors: list[str] | None = None,
) -> BenchResult:
    mirrors = list(mirrors or [])
    check_installed(mirrors)
    sets = list(overrides or [])
    sets += ["data.train=synthetic", "eval.eval_steps=0"]
    if device:
        sets.append(f"train.device={device}")
    if torch.cuda.is_available():  # each preset's peak on its own, in a bench of several
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    session = prepare(TrainRequest(preset=preset, overrides=sets, memory_limit_gib=memory_limit_gib), create_run=False)
    warmup = warmup if warmup is not None else (1 if session.device.type == "cpu" else 3)
    total = warmup + steps
    # Warmup and max_steps shortened so the whole bench is `total` steps of the preset's
    # shape; the work per step does not depend on the learning rate.
    session.config.train.max_steps = total
    session.config.train.warmup_steps = min(session.config.train.warmup_steps, total)
    bus = EventBus(None)
    events = bus.subscribe()
    with _mirrored(mirrors, session, bus):
        status = Trainer(session, bus, CommandInbox()).run()
    if status != "completed":
        raise RuntimeError(f"bench run ended as {status}")
    step_events, compiled, compile_error = [], None, None
    while not events.empty():
        event = events.get()
        if isinstance(event, StepEvent):
            step_events.append(event)
        elif isinstance(event, CompileEvent):
            compiled, compile_error = (event.seconds, None) if event.ok else (None, event.message)
    timed = [e for e in step_events if e.step > warmup]
    step_time = statistics.median(e.step_time_s for e in timed)
    memory = peak_memory_bytes(session.device)
    precision = effective_precision(session.device, session.config.train.precision)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    matmul = measure_matmul_flops(session.device, dtype)
    flops = train_flops_per_step(session.config, session.global_batch)
    tokens_per_sample = session.config.latent_frames * 1024
    t = session.config.train
    budget = session.config.memory_budget_gib
    on_cuda = session.device.type == "cuda"
    return BenchResult(
        preset=session.config.preset,
        device=describe_device(session.device),
        precision=precision,
        steps=len(timed),
        warmup_steps=warmup,
        global_batch=session.global_batch,
        num_parameters=session.model.num_parameters(),
        step_time_s=step_time,
        step_time_min_s=min(e.step_time_s for e in timed),
        samples_per_s=session.global_batch / step_time,
        tokens_per_s=session.global_batch * tokens_per_sample / step_time,
        peak_memory_bytes=memory,
        peak_memory_kind="CUDA allocator peak" if session.device.type == "cuda" else "process peak RSS",
        model_flops_per_step=flops,
        achieved_flops_per_s=flops / step_time,
        matmul_flops_per_s=matmul,
        flops_share=(flops / step_time) / matmul if matmul else 0.0,
        micro_batch=session.batch.micro_batch,
        grad_accum_steps=session.batch.grad_accum_steps,
        compile=t.compile,
        compile_s=compiled,
        compile_error=compile_error,
        data_wait_share=sum(e.data_wait_s for e in timed) / sum(e.step_time_s for e in timed),
        memory_limit_gib=t.memory_limit_gib,
        memory_budget_gib=budget,
        fits_budget=(memory <= budget * GIB) if on_cuda and budget else None,
        mirrors=mirrors,
    )


class _mirrored:
    """The bench's steps mirrored as a run's are, into a folder deleted afterwards; W&B offline,
    so a benchmark never lands in the user's W&B project. Closing (W&B's finish) is not timed."""

    def __init__(self, names: list[str], session, bus: EventBus):
        self.names, self.session, self.bus = names, session, bus
        self.folder: Path | None = None
        self.thread: MirrorThread | None = None

    def __enter__(self) -> None:
        if not self.names:
            return
        self.folder = Path(tempfile.mkdtemp(prefix="hwm-bench-mirrors-"))
        context = MirrorContext(
            run_id=f"bench-{int(time.time())}",
            run_dir=self.folder,
            config=self.session.config.to_dict(),
            wandb_mode="offline",
        )
        self.thread = MirrorThread.for_names(self.names, context, self.bus.publish).start(self.bus)

    def __exit__(self, *exc) -> None:
        if self.thread is not None:
            self.thread.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def with_mirror_ratios(results: list[BenchResult]) -> list[BenchResult]:
    """Each mirrored result's step time over its preset's unmirrored one (run just before it)."""
    base: dict[str, float] = {}
    for r in results:
        if not r.mirrors:
            base[r.preset] = r.step_time_s
        elif r.preset in base:
            r.step_time_ratio = r.step_time_s / base[r.preset]
    return results
