"""`train.batch_size = "auto"`: the largest micro-batch that divides the effective
batch and fits the GPU, found by trying real forward and backward passes.

The effective batch (samples per optimizer step per process) is kept, so the run
trains on the same samples with the same loss: only how they are split into
micro-batches changes. A try that runs out of memory is caught and the memory
given back; the weights, the optimizer state and every RNG are as they were after
the search.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..config.batch import BatchSplit, given_split
from ..config.schema import AUTO, Config
from ..errors import ConfigError
from ..runtime.failures import DoesNotFitError, does_not_fit

HEADROOM = 0.9  # of the memory allowed: the allocator's fragmentation and what the trainer adds later


class NothingFitsError(ConfigError, DoesNotFitError):
    """batch_size = auto and not even a micro-batch of 1 fits: the user's one line, and a
    "does not fit" to bench (runtime.failures)."""


def divisors_ascending(n: int) -> list[int]:
    return [m for m in range(1, n + 1) if n % m == 0]


def choose_micro_batch(effective: int, fits: Callable[[int], bool]) -> int | None:
    """The largest divisor of `effective` for which `fits` says yes; None if none does.

    Tried from the smallest up, stopping at the first that does not fit (memory grows
    with the micro-batch): the first try is small, so cuBLAS and the CUDA context make
    their handles and workspaces before a large try fills the GPU (a large first try
    could leave cuBLAS no room: CUBLAS_STATUS_ALLOC_FAILED), and a compiled probe
    compiles few shapes."""
    best = None
    for m in divisors_ascending(effective):
        if not fits(m):
            break
        best = m
    return best


def resolve_auto_batch(
    config: Config,
    fits: Callable[[int], bool] | None,
    *,
    agree: Callable[[int], int],
    notices: list[str],
    device_name: str,
) -> BatchSplit:
    """The split of batch_size = auto: the chosen micro-batch and the accumulation that
    keeps the effective batch (a config that names its batch_size is its own split).
    `fits` is None where nothing can be tried (CPU): the preset's own split is kept.
    `agree` makes every rank take the smallest choice."""
    t = config.train
    if t.batch_size != AUTO:
        return given_split(t)
    effective = t.effective_batch
    if fits is None:
        chosen = effective // t.grad_accum_steps if effective % t.grad_accum_steps == 0 else effective
        how = f"on {device_name} nothing limits memory as a GPU does: kept"
    else:
        found = choose_micro_batch(effective, fits)
        chosen = agree(found or 0)
        if chosen < 1:
            raise NothingFitsError(
                f"train.batch_size = auto: not even a micro-batch of 1 fits {device_name}"
                f"{f' under --memory-limit {t.memory_limit_gib:g} GiB' if t.memory_limit_gib else ''}"
                ": use a smaller model (model.d_model, model.n_layers) or a larger memory limit"
            )
        how = f"the largest that fits {device_name}:"
    split = BatchSplit(chosen, effective // chosen)
    notices.append(
        f"train.batch_size = auto: {how} micro-batch {chosen} x {split.grad_accum_steps} accumulation "
        f"= {effective} samples a step per process"
    )
    return split


def cuda_memory_probe(
    try_step: Callable[[int], None], device: torch.device, extra_bytes: int, limit_bytes: int
) -> Callable[[int], bool]:
    """`fits(m)`: run `try_step(m)` (real forward and backward passes of m samples,
    through the step training will run) and see whether its peak, plus `extra_bytes`
    the optimizer state will take, stays under HEADROOM of `limit_bytes`. Out of
    memory, and a launch error past a kernel's limits (runtime.failures), is a no, not an error."""

    def fits(m: int) -> bool:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        try:
            try_step(m)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
        except Exception as exc:  # torch.OutOfMemoryError, or a compiler's error wrapping one; others re-raised
            if not does_not_fit(exc):
                raise
            return False
        finally:
            torch.cuda.empty_cache()
        return peak + extra_bytes <= HEADROOM * limit_bytes

    return fits
