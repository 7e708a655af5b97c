"""The GPUs' own health, read through NVIDIA's NVML (nvidia-ml-py) about once a second.

Utilisation, memory used/total, power and temperature of every GPU the run trains
on, read in a thread of its own (never the training thread) and published as a
`GpuEvent`: the status bar shows it and metrics.jsonl keeps it. Where NVML or an
NVIDIA GPU is missing, nothing is read, shown or written, and nothing fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import torch

from ..events.types import GpuEvent

SAMPLE_INTERVAL_S = 1.0


def _nvml() -> Any | None:
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


def _handle(nvml: Any, cuda_index: int) -> Any:
    """NVML numbers GPUs in PCI order, CUDA (by default) fastest first: match them by UUID."""
    try:
        uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # noqa: BLE001 - an older torch or driver: fall back to the index
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        ids = [int(x) for x in visible.split(",") if x.strip().isdigit()]
        return nvml.nvmlDeviceGetHandleByIndex(ids[cuda_index] if cuda_index < len(ids) else cuda_index)


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
        self.handles = [_handle(nvml, i) for i in self.indices]
        self.publish, self.step, self.interval_s = publish, step, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hwm-gpu-health", daemon=True)

    @classmethod
    def start_for(
        cls, device: torch.device, publish: Callable[[GpuEvent], None], step: Callable[[], int]
    ) -> GpuSampler | None:
        indices = run_gpus(device)
        nvml = _nvml() if indices else None
        if nvml is None:
            return None
        try:
            sampler = cls(nvml, indices, publish, step)
        except Exception:  # noqa: BLE001 - a GPU NVML cannot name: show nothing rather than fail the run
            return None
        sampler._thread.start()
        return sampler

    def sample(self) -> GpuEvent:
        n = self.nvml
        util, used, total, power, temp = [], [], [], [], []
        for handle in self.handles:
            memory = n.nvmlDeviceGetMemoryInfo(handle)
            util.append(float(n.nvmlDeviceGetUtilizationRates(handle).gpu))
            used.append(int(memory.used))
            total.append(int(memory.total))
            power.append(n.nvmlDeviceGetPowerUsage(handle) / 1000.0)  # milliwatts
            temp.append(float(n.nvmlDeviceGetTemperature(handle, n.NVML_TEMPERATURE_GPU)))
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
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - NVML going away at the end must not fail the run
            pass
