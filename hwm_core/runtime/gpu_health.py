"""The GPUs' own health, read through NVIDIA's NVML (nvidia-ml-py) about once a second.

Utilisation, memory used/total, power and temperature of every GPU the run trains
on, read in a thread of its own (never the training thread) and published as a
`GpuEvent`: the status bar shows it and metrics.jsonl keeps it. Where NVML or an
NVIDIA GPU is missing, nothing is read, shown or written, and nothing fails.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any

import torch

from ..events.types import GpuEvent

SAMPLE_INTERVAL_S = 1.0


def open_nvml() -> Any | None:
    """The NVML bindings, initialised; None where there is no NVML or no driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound, _DriverNotLoaded, ...: no NVIDIA GPU here
        return None
    return pynvml


def run_gpus(device: torch.device) -> list[int]:
    """The CUDA devices this run's processes on this host train on: rank 0 reports them all."""
    if device.type != "cuda":
        return []
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return list(range(local)) if local > 1 else [device.index or 0]


def nvml_handle(nvml: Any, cuda_index: int) -> Any:
    """NVML numbers GPUs in PCI order, CUDA (by default) fastest first: match them by UUID."""
    try:
        uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # noqa: BLE001 - an older torch or driver: fall back to the index
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        ids = [int(x) for x in visible.split(",") if x.strip().isdigit()]
        return nvml.nvmlDeviceGetHandleByIndex(ids[cuda_index] if cuda_index < len(ids) else cuda_index)


def nvml_read(query: Callable[..., Any], *args: Any) -> Any | None:
    """One NVML query; None if this GPU does not answer it."""
    try:
        return query(*args)
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported, _NoPermission, ...: this field, not the others
        return None


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def process_memory_bytes(device: torch.device) -> int | None:
    """What this process holds on `device` as NVML sees it (its CUDA context included);
    None where NVML cannot say: no NVML, a MIG slice or vGPU (no per-process figure), or
    a container whose process ids NVML does not share."""
    if device.type != "cuda":
        return None
    nvml = open_nvml()
    if nvml is None:
        return None
    try:
        handle = nvml_handle(nvml, device.index or 0)
        for process in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            used = getattr(process, "usedGpuMemory", None)
            if process.pid == os.getpid() and isinstance(used, int):
                return used
        return None
    except Exception:  # noqa: BLE001 - any NVML error: the caller estimates instead
        return None
    finally:
        close_nvml(nvml)


def close_nvml(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML going away must not fail the caller
        pass


class GpuSampler:
    """Publishes a GpuEvent for `cuda_indices` every SAMPLE_INTERVAL_S until stopped."""

    def __init__(
        self,
        nvml: Any,
        cuda_indices: list[int],
        publish: Callable[[GpuEvent], None],
        step: Callable[[], int],
        interval_s: float = SAMPLE_INTERVAL_S,
    ):
        self.nvml, self.indices = nvml, list(cuda_indices)
        self.handles = [nvml_handle(nvml, i) for i in self.indices]
        self.publish, self.step, self.interval_s = publish, step, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hwm-gpu-health", daemon=True)

    @classmethod
    def start_for(
        cls, device: torch.device, publish: Callable[[GpuEvent], None], step: Callable[[], int]
    ) -> GpuSampler | None:
        indices = run_gpus(device)
        nvml = open_nvml() if indices else None
        if nvml is None:
            return None
        try:
            sampler = cls(nvml, indices, publish, step)
        except Exception:  # noqa: BLE001 - a GPU NVML cannot name: show nothing rather than fail the run
            return None
        sampler._thread.start()
        return sampler

    def sample(self) -> GpuEvent:
        """One reading of every GPU. Each field is read on its own: a field this GPU does
        not report (power or utilisation on a MIG slice or a vGPU: NVMLError_NotSupported)
        is NaN, written as null, and the others are still read."""
        n = self.nvml
        util, used, total, power, temp = [], [], [], [], []
        for h in self.handles:
            memory = nvml_read(n.nvmlDeviceGetMemoryInfo, h)
            utilization = nvml_read(n.nvmlDeviceGetUtilizationRates, h)
            util.append(_number(getattr(utilization, "gpu", None)))
            used.append(_number(getattr(memory, "used", None)))
            total.append(_number(getattr(memory, "total", None)))
            milliwatts = _number(nvml_read(n.nvmlDeviceGetPowerUsage, h))
            power.append(milliwatts / 1000.0)
            temp.append(_number(nvml_read(n.nvmlDeviceGetTemperature, h, n.NVML_TEMPERATURE_GPU)))
        return GpuEvent(
            step=self.step(),
            index=list(self.indices),
            utilization=util,
            memory_used=used,
            memory_total=total,
            power_w=power,
            temperature_c=temp,
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.publish(self.sample())
            except Exception:  # noqa: BLE001 - a GPU fell off the bus, say: stop reporting, keep training
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval_s)
        close_nvml(self.nvml)
