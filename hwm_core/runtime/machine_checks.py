"""What `hwm-tui doctor` finds out about this machine before a long run, as data.

In the spirit of `python -m torch.utils.collect_env`, `accelerate env` and DeepSpeed's
`ds_report`: versions, each GPU as NVML sees it (and who else is on it), bf16 and TF32,
whether torch.compile has a backend with its toolchain, torchrun, the runs folder's
free space and write access, /dev/shm for several ranks. Each check is one `Check`:
ok, a notice (worth knowing, not in the way) or a failure with what to do. The UI only
prints them; the preset's own trial is training/doctor.py's.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..figures import format_bytes
from .device import GIB
from .gpu_health import close_nvml, nvml_handle, nvml_read, open_nvml

OK, NOTICE, FAIL = "ok", "notice", "fail"
SHM_FOR_RANKS = GIB  # below this, NCCL's shared-memory transport between ranks can fail (docker gives 64 MiB)
LOW_DISK = 10 * GIB  # a notice below this much free space, without a preset to size checkpoints by


@dataclass
class Check:
    name: str
    status: str  # ok, notice, fail
    detail: str
    fix: str = ""  # what to do, for a notice or a failure
    data: dict[str, Any] = field(default_factory=dict)  # the figures, for --json

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def versions() -> list[Check]:
    cuda = torch.version.cuda
    detail = f"Python {platform.python_version()} · torch {torch.__version__}"
    data: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cuda": cuda}
    if cuda:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        nccl = _nccl_version()
        detail += f" · CUDA {cuda} · cuDNN {cudnn or '-'} · NCCL {nccl or '-'}"
        data.update(cudnn=cudnn, nccl=nccl)
    else:
        detail += " (a CPU build: no CUDA)"
    ok = sys.version_info >= (3, 10)
    return [Check("versions", OK if ok else FAIL, detail, "" if ok else "use Python 3.10 or newer", data)]


def _nccl_version() -> str | None:
    try:
        version = torch.cuda.nccl.version()
    except Exception:  # noqa: BLE001 - a build without NCCL
        return None
    return ".".join(str(v) for v in version) if isinstance(version, tuple) else str(version)


def gpus() -> list[Check]:
    """Every GPU NVML sees: name, memory, utilisation now, other processes on it. Without
    an NVIDIA GPU: one notice, and nothing else about GPUs."""
    nvml = open_nvml()
    visible = torch.cuda.is_available()
    if nvml is None and not visible:
        return [
            Check(
                "gpu",
                NOTICE,
                "no GPU: no NVIDIA driver or GPU visible; the GPU checks are skipped (the cpu preset trains here)",
                "on a GPU machine: check `nvidia-smi` and CUDA_VISIBLE_DEVICES",
            )
        ]
    if not visible:
        return [
            Check(
                "gpu",
                FAIL,
                f"NVML sees a GPU but torch cannot (torch {torch.__version__}, CUDA build: {torch.version.cuda})",
                "install a CUDA build of torch that this driver supports, and check CUDA_VISIBLE_DEVICES",
            )
        ]
    checks = []
    driver = nvml_read(nvml.nvmlSystemGetDriverVersion) if nvml is not None else None
    for index in range(torch.cuda.device_count()):
        checks.append(_gpu(nvml, index, driver))
    if nvml is not None:
        close_nvml(nvml)
    return checks


def _gpu(nvml: Any, index: int, driver: Any) -> Check:
    props = torch.cuda.get_device_properties(index)
    data: dict[str, Any] = {
        "index": index,
        "name": props.name,
        "memory_total": int(props.total_memory),
        "capability": f"{props.major}.{props.minor}",
        "driver": str(driver) if driver else None,
    }
    detail = f"cuda:{index} {props.name} · {props.total_memory / GIB:.0f} GiB · sm {props.major}.{props.minor}"
    if driver:
        detail += f" · driver {driver}"
    others: list[dict[str, Any]] = []
    if nvml is not None:
        handle = nvml_read(nvml_handle, nvml, index)
        memory = nvml_read(nvml.nvmlDeviceGetMemoryInfo, handle) if handle is not None else None
        util = nvml_read(nvml.nvmlDeviceGetUtilizationRates, handle) if handle is not None else None
        if memory is not None:
            data["memory_used"] = int(memory.used)
            detail += f" · {memory.used / GIB:.1f} GiB used"
        if util is not None:
            data["utilization"] = int(util.gpu)
            detail += f" · {util.gpu}% busy now"
        processes = nvml_read(nvml.nvmlDeviceGetComputeRunningProcesses, handle) if handle is not None else None
        for p in processes or []:
            if p.pid != os.getpid():
                used = getattr(p, "usedGpuMemory", None)
                others.append({"pid": int(p.pid), "memory": int(used) if isinstance(used, int) else None})
    data["other_processes"] = others
    if others:
        held = sum(o["memory"] or 0 for o in others)
        return Check(
            f"gpu {index}",
            NOTICE,
            detail + f" · {len(others)} other process(es) on it ({held / GIB:.1f} GiB)",
            "they share its memory and time: a run's memory budget and speed assume the GPU to itself",
            data,
        )
    return Check(f"gpu {index}", OK, detail, data=data)


def precision() -> list[Check]:
    """bf16 (the GPU presets' precision) and TF32 (fp32 matmuls on tensor cores)."""
    if not torch.cuda.is_available():
        return []
    major, _ = torch.cuda.get_device_capability(0)
    bf16 = torch.cuda.is_bf16_supported()
    tf32 = major >= 8
    return [
        Check(
            "bf16",
            OK if bf16 else FAIL,
            "bf16 autocast supported" if bf16 else "this GPU has no bf16",
            "" if bf16 else "set train.precision = fp32 (slower), or use an Ampere or newer GPU",
            {"bf16": bf16},
        ),
        Check(
            "tf32",
            OK if tf32 else NOTICE,
            "TF32 tensor cores: fp32 matmuls use them (enabled for every CUDA run)"
            if tf32
            else "no TF32 before Ampere: fp32 matmuls run in full fp32",
            "" if tf32 else "bf16 is where this GPU's speed is: keep train.precision = bf16",
            {"tf32": tf32},
        ),
    ]


def compile_backend() -> list[Check]:
    """torch.compile's inductor and the compiler it needs: Triton for CUDA, a C++ compiler
    for the CPU. (The preset trial compiles for real when its preset compiles.)"""
    backends = torch._dynamo.list_backends()
    if "inductor" not in backends:
        return [Check("torch.compile", NOTICE, "no inductor backend", "train.compile falls back to eager: set it off")]
    if torch.cuda.is_available():
        try:
            import triton

            return [Check("torch.compile", OK, f"inductor with Triton {triton.__version__}", data={"triton": True})]
        except ImportError:
            return [
                Check(
                    "torch.compile",
                    NOTICE,
                    "inductor without Triton: compiled presets fall back to eager",
                    "install triton (it comes with CUDA wheels of torch), or set train.compile = off",
                )
            ]
    cc = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    if cc is None:
        return [
            Check("torch.compile", NOTICE, "no C++ compiler for inductor on the CPU", "the cpu preset does not compile")
        ]
    return [Check("torch.compile", OK, f"inductor, C++ compiler {cc} (CPU)", data={"cxx": cc})]


def launcher() -> list[Check]:
    """What `train --nproc N` needs: torch.distributed (NCCL on GPUs) and torchrun."""
    if not torch.distributed.is_available():
        return [Check("torchrun", NOTICE, "torch.distributed is not in this build", "one process only: no --nproc")]
    nccl = torch.distributed.is_nccl_available()
    beside = Path(sys.executable).parent / "torchrun"  # a virtual environment not on PATH
    path = shutil.which("torchrun") or (str(beside) if beside.exists() else None)
    detail = f"torchrun {'at ' + path if path else 'not on PATH (--nproc runs python -m torch.distributed.run)'}"
    detail += f" · NCCL {'available' if nccl else 'not available (gloo only)'}"
    status = OK if nccl or not torch.cuda.is_available() else NOTICE
    fix = "" if status == OK else "a CUDA build of torch with NCCL is needed for --nproc on GPUs"
    return [Check("torchrun", status, detail, fix, {"torchrun": path, "nccl": nccl})]


def runs_folder(path: Path, need_bytes: int = 0) -> list[Check]:
    """The runs folder: writable (tried for real), and free space for the run's checkpoints."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    data: dict[str, Any] = {"path": str(path)}
    if existing.exists() and not existing.is_dir():
        return [Check("runs folder", FAIL, f"{existing} is a file, not a folder", "pass another --runs-dir", data)]
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hwm-doctor-"):
            pass
    except OSError as exc:
        return [
            Check(
                "runs folder",
                FAIL,
                f"cannot write in {existing} ({exc.strerror or exc})",
                "pass a writable --runs-dir or set HWM_RUNS_DIR",
                data,
            )
        ]
    free = shutil.disk_usage(existing).free
    data.update(free_bytes=free, need_bytes=need_bytes)
    where = f"{path}{'' if existing == path else f' (to be made in {existing})'}"
    detail = f"{where}: writable, {free / GIB:.1f} GiB free"
    if need_bytes and free < need_bytes:
        return [
            Check(
                "runs folder",
                FAIL,
                detail + f", the preset's checkpoints need ~{format_bytes(need_bytes)}",
                "free disk space, lower checkpoint.keep_checkpoints, or pass another --runs-dir",
                data,
            )
        ]
    if not need_bytes and free < LOW_DISK:
        return [Check("runs folder", NOTICE, detail, "a long run's checkpoints may need more", data)]
    return [
        Check(
            "runs folder", OK, detail + (f" (checkpoints ~{format_bytes(need_bytes)})" if need_bytes else ""), data=data
        )
    ]


def shared_memory(path: Path = Path("/dev/shm")) -> list[Check]:
    """/dev/shm: NCCL between ranks on one host goes through it; a container's default
    64 MiB is not enough for several ranks."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return [Check("/dev/shm", NOTICE, "no /dev/shm here", "several ranks on one host need shared memory")]
    size = stat.f_frsize * stat.f_blocks
    data = {"size_bytes": size}
    if size < SHM_FOR_RANKS:
        return [
            Check(
                "/dev/shm",
                NOTICE,
                f"/dev/shm is {size / 2**20:.0f} MiB: enough for one process, tight for several ranks",
                "in docker: --shm-size=8g or --ipc=host",
                data,
            )
        ]
    return [Check("/dev/shm", OK, f"/dev/shm {size / GIB:.1f} GiB (several ranks fit)", data=data)]


def machine_checks(runs_dir: Path, checkpoint_bytes: int = 0) -> list[Check]:
    return [
        *versions(),
        *gpus(),
        *precision(),
        *compile_backend(),
        *launcher(),
        *runs_folder(runs_dir, checkpoint_bytes),
        *shared_memory(),
    ]
