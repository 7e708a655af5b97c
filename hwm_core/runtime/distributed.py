"""Several processes, one run: torch.distributed as torchrun sets it up.

Rank 0 alone writes the run folder, metrics and checkpoints; every rank trains
on its own share of each step's global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_env() -> DistInfo:
    """What torchrun put in the environment; one process when it did not."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(
        rank=int(os.environ.get("RANK", "0")), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )


def init_process_group(info: DistInfo, device: torch.device) -> None:
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None
    )


def bind_thread_to_device(device: torch.device) -> None:
    """Make `device` the current CUDA device of the calling thread.

    The current device is per host thread (cudaSetDevice): `init_process_group` sets it
    on the main thread, but training runs on the `hwm-trainer` thread, which would start
    on GPU 0. There, on ranks above 0, anything that takes "the current device"
    (a `torch.cuda.*` call without a device, a new stream, an `empty_cache`, a kernel
    library's handle) would land on GPU 0. Only several GPUs show it."""
    if device.type == "cuda":
        torch.cuda.set_device(device)


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_agree(ok: bool, info: DistInfo, device: torch.device) -> bool:
    """True only if every rank says ok: one rank failing to start stops them all
    instead of leaving the others waiting forever in the first collective."""
    if not info.enabled:
        return ok
    flag = torch.tensor([0 if ok else 1], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.SUM)
    return int(flag.item()) == 0


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """What forward and backward go through: DistributedDataParallel over several
    processes (it all-reduces the gradients), the model itself in one.

    DDP and train.compile: the compiled function (training/compile.py) takes this
    wrapper. Read against torch's sources (not yet run on several GPUs): dynamo does not
    trace into DDP's forward (`_inside_ddp_forward` is `_disable_dynamo`), so the graph
    breaks there and the inner model's forward is compiled as a frame of its own while
    `DistributedDataParallel._active_ddp_module` is set; convert_frame then compiles it
    with DDPOptimizer, which splits the graph at DDP's bucket boundaries so the
    all-reduce of each bucket still overlaps the rest of backward. What it costs: the
    loss is a graph of its own, and under CUDA graphs a step is several graphs. A
    profile on several GPUs is what shows whether the overlap holds."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def gather_cuda_rng_states(device: torch.device, info: DistInfo) -> list[torch.Tensor]:
    """Every rank's CUDA RNG state (of its own GPU), in rank order, on the CPU; [] off
    CUDA. A collective: every rank calls it at the same point (each checkpoint)."""
    if device.type != "cuda":
        return []
    own = torch.cuda.get_rng_state(device)
    if not info.enabled:
        return [own]
    gathered = [torch.empty_like(own, device=device) for _ in range(info.world_size)]
    dist.all_gather(gathered, own.to(device))
    return [state.cpu() for state in gathered]


def agree_min(value: int, info: DistInfo, device: torch.device) -> int:
    """The smallest of every rank's value (the same on all of them after)."""
    if not info.enabled:
        return value
    tensor = torch.tensor([value], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())
