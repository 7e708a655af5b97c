"""`hwm-tui bench train`: the real training step of a preset, timed, with its memory and
its FLOP/s as a share of what this machine's dense matmuls reach in the same run.

Compiling (train.compile) happens in the warm-up steps and is reported apart from
the step time; so is the share of the step spent waiting for the data path.

A preset that fails (out of memory under its budget, say) is a result, not an error:
`bench_each` gives it a row saying so and goes on with the next, each preset starting
from a clean compile state and an empty CUDA cache."""

from __future__ import annotations

import gc
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..config.presets import preset_names
from ..errors import UserError
from ..events.bus import EventBus
from ..events.types import CompileEvent, StepEvent
from ..mirrors.base import MirrorContext, check_installed
from ..mirrors.thread import MirrorThread
from ..model.flops import train_flops_per_step
from ..runs.inbox import CommandInbox
from ..runtime.device import GIB, describe_device, effective_precision, peak_memory_bytes, resolve_device
from ..runtime.failures import FailureKind, does_not_fit
from ..runtime.gpu_health import process_memory_bytes
from ..status import BenchOutcome
from .compile import release_compiled_memory
from .request import request_config
from .session import TrainRequest, prepare
from .trainer import Trainer

ALL_PRESETS = "all"
OK, DOES_NOT_FIT, FAILED = BenchOutcome.OK, BenchOutcome.DOES_NOT_FIT, BenchOutcome.FAILED  # status.py
# What a CUDA context, cuBLAS's workspaces and the loaded kernels take besides the
# allocator's blocks, where NVML cannot tell this process's own use (~0.3-0.6 GiB on
# current cards and CUDA 12 with lazy loading): an estimate, said to be one.
CONTEXT_ESTIMATE_BYTES = 512 * 2**20


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
    fits_budget: bool | None = None  # the memory held within the budget; None on CPU or without one
    held_memory_bytes: int = 0  # what the process held on the GPU at its peak, context included
    held_memory_kind: str = ""  # how that was measured (NVML, or an estimated context)
    first_loss: float = math.nan  # the loss of step 1, at initialisation: ln(64,000) = 11.07 expected
    nonfinite_steps: int = 0  # steps whose loss or gradients were not finite
    outcome: str = OK  # ok, does not fit (out of memory), failed
    error: str | None = None  # why it did not run, when it did not
    mirrors: list[str] = field(default_factory=list)  # log.mirrors the timed steps were mirrored to
    step_time_ratio: float | None = None  # median step time over the same preset's without mirrors (bench train --log)

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def not_run(cls, preset: str, outcome: str, error: str, *, budget_gib: float = 0.0) -> BenchResult:
        """A preset that did not complete: its row says why, its figures are zero."""
        return cls(
            preset=preset,
            device="",
            precision="",
            steps=0,
            warmup_steps=0,
            global_batch=0,
            num_parameters=0,
            step_time_s=0.0,
            step_time_min_s=0.0,
            samples_per_s=0.0,
            tokens_per_s=0.0,
            peak_memory_bytes=0,
            peak_memory_kind="",
            model_flops_per_step=0.0,
            achieved_flops_per_s=0.0,
            matmul_flops_per_s=0.0,
            flops_share=0.0,
            memory_budget_gib=budget_gib,
            fits_budget=False if outcome == DOES_NOT_FIT else None,
            outcome=outcome,
            error=error,
        )


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


def bench_each(names: list[str], run_one: Callable[[str], BenchResult]) -> list[BenchResult]:
    """`run_one` for every preset; one that raises gets a row saying why (out of memory,
    or a launch error past a kernel's limits: does not fit), and the rest still run. A
    user error (a bad --set) stops a bench of one preset with its line, as any command."""
    results = []
    for name in names:
        try:
            results.append(run_one(name))
        except UserError as exc:
            if len(names) == 1:
                raise
            # batch_size = auto found nothing that fits: a NothingFitsError, a user error that does not fit
            results.append(BenchResult.not_run(name, DOES_NOT_FIT if does_not_fit(exc) else FAILED, str(exc)))
        except Exception as exc:  # noqa: BLE001 - this preset's failure is its row; the others still run
            first = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {first[0] if first else ''}"[:300]
            results.append(BenchResult.not_run(name, DOES_NOT_FIT if does_not_fit(exc) else FAILED, message))
        finally:
            _release(None)
    return results


def _release(device: torch.device | None) -> None:
    """Each preset on its own: no earlier preset's compiled graphs, pools or cached blocks."""
    release_compiled_memory()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats(device)


def held_memory(device: torch.device) -> tuple[int, str]:
    """What the process held on the GPU at its peak: the allocator's reserved peak plus
    the CUDA context. The allocated peak can never pass a cap (allocated <= reserved <=
    cap); what must fit a card is everything the process holds. NVML's figure for this
    process (now) minus the allocator's reserved bytes (now) is the context; without
    NVML (or where it cannot see this process: MIG, a container) it is estimated."""
    reserved_peak = int(torch.cuda.max_memory_reserved(device))
    used = process_memory_bytes(device)
    if used is not None:
        context = max(0, used - int(torch.cuda.memory_reserved(device)))
        return reserved_peak + context, "reserved peak + CUDA context (NVML)"
    return reserved_peak + CONTEXT_ESTIMATE_BYTES, "reserved peak + CUDA context (estimated)"


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
    gc.collect()
    _release(None)  # each preset's peak on its own, in a bench of several
    request = TrainRequest(preset=preset, overrides=sets, memory_limit_gib=memory_limit_gib)
    preset_train = request_config(request).train  # the preset's warmup, and the device it runs on
    warmup = warmup if warmup is not None else (1 if resolve_device(preset_train).type == "cpu" else 3)
    total = warmup + steps
    # Warmup and max_steps shortened so the whole bench is `total` steps of the preset's
    # shape; the work per step does not depend on the learning rate. They are overrides
    # like a user's, so the config is checked with them and never changed afterwards.
    warmup_steps = min(preset_train.warmup_steps, total)
    request = replace(request, overrides=[*sets, f"train.warmup_steps={warmup_steps}"], max_steps=total)
    session = prepare(request, create_run=False)
    bus = EventBus(None)
    events = bus.subscribe()
    trainer = Trainer(session, bus, CommandInbox())
    with _mirrored(mirrors, session, bus):
        status = trainer.run()
    if status != "completed":
        return BenchResult.not_run(
            session.config.preset,
            DOES_NOT_FIT if trainer.failure is FailureKind.OUT_OF_MEMORY else FAILED,
            f"{status}: {trainer.error or ''}",
            budget_gib=session.config.memory_budget_gib,
        )
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
    held, held_kind = held_memory(session.device) if on_cuda else (0, "")
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
        fits_budget=(held <= budget * GIB) if on_cuda and budget else None,
        held_memory_bytes=held,
        held_memory_kind=held_kind,
        first_loss=step_events[0].loss if step_events else math.nan,
        nonfinite_steps=sum(e.skipped for e in step_events),
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
