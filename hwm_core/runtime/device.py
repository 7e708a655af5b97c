"""Where training runs: device choice, mixed precision, memory figures."""

from __future__ import annotations

import contextlib
import os
import resource

import torch

from ..config.schema import TrainConfig
from ..errors import ConfigError


def resolve_device(train: TrainConfig, local_rank: int = 0) -> torch.device:
    """The device a run (or an evaluation) uses; on a GPU, with TF32 for fp32 matmuls."""
    device = _choose_device(train, local_rank)
    if device.type == "cuda":
        enable_tf32()
    return device


def enable_tf32() -> None:
    """fp32 matmuls (the fp32 precision, and fp32 islands under bf16 autocast) in TF32 on
    the tensor cores of Ampere and later: several times faster, with a 10-bit mantissa
    that training does not notice; torch leaves it off for CUDA matmuls by default.
    Through `set_float32_matmul_precision`, which sets torch's newer per-backend flags
    and its legacy one together: torch refuses to read a mix of the two (and inductor
    reads the legacy one), so a single flag set on its own would break compiling.
    Called only for a CUDA run, whose CPU matmuls are not on its path."""
    torch.set_float32_matmul_precision("high")


def tf32_enabled() -> bool:
    return torch.get_float32_matmul_precision() != "highest"


def _choose_device(train: TrainConfig, local_rank: int) -> torch.device:
    if train.device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if local_rank >= count:  # two ranks on one GPU fail deep inside NCCL instead
            raise ConfigError(
                f"process {local_rank} has no GPU of its own: {count} visible; "
                f"use --nproc {count} or fewer (or check CUDA_VISIBLE_DEVICES)"
            )
        return torch.device("cuda", local_rank)
    if train.device == "cuda":
        raise ConfigError(
            "train.device = cuda but no CUDA GPU is visible: "
            "use --set train.device=cpu (or auto), or check CUDA_VISIBLE_DEVICES"
        )
    return torch.device("cpu")


GIB = 2**30


def limit_memory(train: TrainConfig, device: torch.device) -> int | None:
    """Cap this process's CUDA memory at train.memory_limit_gib (an out-of-memory error
    past it, as on a smaller card); returns the bytes this process may use on a GPU."""
    if device.type != "cuda":
        if train.memory_limit_gib:
            raise ConfigError(
                f"--memory-limit ({train.memory_limit_gib:g} GiB) caps CUDA memory, and this run "
                "trains on the CPU: drop it, or train on a GPU"
            )
        return None
    total = torch.cuda.get_device_properties(device).total_memory
    if not train.memory_limit_gib:
        return total
    limit = int(train.memory_limit_gib * GIB)
    if limit > total:
        raise ConfigError(
            f"--memory-limit {train.memory_limit_gib:g} GiB is more than {describe_device(device)} "
            f"has ({total / GIB:.1f} GiB): give a smaller limit, or none"
        )
    torch.cuda.set_per_process_memory_fraction(limit / total, device)
    return limit


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} {torch.cuda.get_device_name(device)}"
    return f"cpu ({torch.get_num_threads()} threads)"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; CPU always trains in fp32."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def effective_precision(device: torch.device, precision: str) -> str:
    return "bf16" if device.type == "cuda" and precision == "bf16" else "fp32"


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA allocator peak on GPU; peak resident set size of the process on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_cpu_threads() -> None:
    """Use every core we are allowed on, unless the user set OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
