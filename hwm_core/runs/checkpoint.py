"""Checkpoints: safetensors files, written atomically, checksummed, never unpickled.

One file per checkpoint, `step_00001000.safetensors`: the model, the optimizer
state and the RNG states as tensors; everything else (step, data position, the
model's shape, optimizer hyper-parameters, python/numpy RNG) as JSON in the
safetensors header. The file is written to a temporary name, fsync'd, then
renamed, so a reader only ever sees whole checkpoints; a checksum over the
tensors and the JSON header catches damage after the fact, and a written file is
read back and verified before it takes the real name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

if TYPE_CHECKING:  # torch is imported where tensors are handled: listing runs needs only headers
    import torch

from ..errors import CheckpointError
from ..runtime.atomic import fsync_dir

FORMAT_VERSION = 2  # 2: the checksum covers the JSON header too
CHECKPOINT_RE = re.compile(r"^step_(\d{8,})\.safetensors$")
META_KEY = "hwm"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def checkpoint_checksum(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """sha256 over the header (canonical JSON, less the checksum itself) and every tensor."""
    return _digest(meta, ((name, tensors[name]) for name in sorted(tensors)))


def _digest(meta: dict[str, Any], named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    import torch

    digest = hashlib.sha256()
    header = {k: v for k, v in meta.items() if k != "checksum"}
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for name, tensor in named_tensors:
        t = tensor.contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(str(t.dtype).encode())
        # Raw bytes whatever the dtype (bf16 has no numpy equivalent).
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _write_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """The one place bytes hit the disk, so tests can make it fail like a full disk."""
    try:
        from safetensors.torch import save_file

        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as exc:  # its own type for I/O errors (disk full, file too large)
        raise OSError(errno.EIO, str(exc)) from None
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    directory: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> tuple[Path, int]:
    """Write atomically and verify; returns (path, bytes). On any error, a file that
    does not read back intact included, the temp file is removed and the checkpoints
    already there are untouched."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    # Through JSON and back, so the checksum sees exactly what a reader will parse.
    meta = json.loads(json.dumps({**meta, "format": FORMAT_VERSION, "step": step, "time": time.time()}))
    meta["checksum"] = checkpoint_checksum(tensors, meta)
    final = directory / checkpoint_name(step)
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        _write_file(tmp, tensors, {META_KEY: json.dumps(meta)})
        _verify_written(tmp, meta["checksum"])
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return final, final.stat().st_size


def _verify_written(path: Path, checksum: str) -> None:
    """Read the new file back in full, one tensor at a time (the rename keeps its
    bytes): a checkpoint that would fail on resume must count as a failed save now,
    not be kept as the good one."""
    try:
        meta = read_meta(path)
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            names = sorted(fh.keys())
            intact = (
                meta.get("checksum") == checksum
                and _digest(meta, ((name, fh.get_tensor(name)) for name in names)) == checksum
                and resume_state_problem(meta, names) is None
            )
    except Exception:  # noqa: BLE001 - CheckpointError, or safetensors' own error types
        intact = False
    if not intact:
        raise OSError(errno.EIO, "the checkpoint just written does not read back intact; check the disk")


@dataclass
class Checkpoint:
    path: Path
    step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON header alone, without reading the tensors; raises CheckpointError."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("file too short")
            (length,) = struct.unpack("<Q", head)
            if length > 100 * 1024 * 1024:
                raise ValueError("header length out of range")
            header = json.loads(fh.read(length))
            data_end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
            if os.fstat(fh.fileno()).st_size < 8 + length + data_end:
                raise ValueError("file is truncated")
        meta = json.loads(header["__metadata__"][META_KEY])
        if not isinstance(meta, dict) or "step" not in meta:
            raise ValueError("no hwm-tui metadata")
        return meta
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({exc}): it is damaged or not an "
            "hwm-tui checkpoint; resume from an older one or start a new run"
        ) from None


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify a checkpoint. Tensors only go through safetensors: nothing is
    unpickled, so a crafted file cannot run code."""
    meta = read_meta(path)
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open is no dict: keys() is its API
                tensors[name] = fh.get_tensor(name)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({exc}): resume from an older one or start a new run"
        ) from None
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {meta.get('format')}, this hwm-tui "
            f"reads format {FORMAT_VERSION}: use the hwm-tui version that wrote it"
        )
    if checkpoint_checksum(tensors, meta) != meta.get("checksum"):
        raise CheckpointError(f"checkpoint {path} fails its checksum: the file is damaged; resume from an older one")
    problem = resume_state_problem(meta, list(tensors))
    if problem:
        raise CheckpointError(f"checkpoint {path} {problem}: it cannot be resumed; resume from an older one")
    return Checkpoint(path=path, step=meta["step"], tensors=tensors, meta=meta)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_rng(value: Any, length: int, kind: type) -> bool:
    """[kind, [state words], ...], as random.getstate / np.random.get_state give them."""
    return (
        isinstance(value, list) and len(value) == length and isinstance(value[0], kind) and isinstance(value[1], list)
    )


# What TrainingSession.load_state_dict and _resume_locked read from the header, and the test each must pass.
RESUME_FIELDS: dict[str, tuple[str, Any]] = {
    "step": ("a step count", _is_count),
    "samples_seen": ("a sample count", _is_count),
    "model_shape": ("the model's shape", lambda v: isinstance(v, dict)),
    "optimizer": (
        "the optimizer's param_groups",
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("param_groups"), list)
            and all(isinstance(g, dict) for g in v["param_groups"])
        ),
    ),
    "rng": (
        "the python and numpy RNG states",
        lambda v: isinstance(v, dict) and _is_rng(v.get("python"), 3, int) and _is_rng(v.get("numpy"), 5, str),
    ),
}
OPTIONAL_COUNTS = ("consecutive_nonfinite", "global_batch")


def resume_state_problem(meta: dict[str, Any], tensor_names: list[str]) -> str | None:
    """What a resume would trip over in a checksum-valid file; None if nothing."""
    for key, (what, valid) in RESUME_FIELDS.items():
        if key not in meta:
            return f"has no '{key}' ({what}) in its header"
        if not valid(meta[key]):
            return f"has a malformed '{key}' ({what}) in its header"
    for key in OPTIONAL_COUNTS:
        if meta.get(key) is not None and not _is_count(meta[key]):
            return f"has a malformed '{key}' in its header"
    if "rng.torch" not in tensor_names:
        return "has no torch RNG state"
    return None


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint file, newest first."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = CHECKPOINT_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found, reverse=True)


def latest_readable(directory: Path) -> tuple[int, Path] | None:
    """The newest checkpoint whose header and size are whole (cheap, for listings)."""
    for step, path in list_checkpoints(directory):
        if _readable(path):
            return step, path
    return None


def load_latest_good(directory: Path) -> tuple[Checkpoint | None, list[tuple[Path, str]]]:
    """The newest checkpoint that fully verifies, and the newer ones passed over (with why)."""
    problems: list[tuple[Path, str]] = []
    for _step, path in list_checkpoints(directory):
        try:
            return load_checkpoint(path), problems
        except CheckpointError as exc:
            problems.append((path, str(exc)))
    return None, problems


def newest_good(
    directory: Path, run_id: str, *, purpose: str = "", to_do: str
) -> tuple[Checkpoint, list[tuple[Path, str]]]:
    """load_latest_good, or one line saying the run has none (for `purpose`) and what `to_do`."""
    checkpoint, damaged = load_latest_good(directory)
    if checkpoint is None:
        why = f" ({damaged[0][1]})" if damaged else ""
        raise CheckpointError(f"run {run_id} has no readable checkpoint{purpose}{why}: {to_do}")
    return checkpoint, damaged


def remove_partial_writes(directory: Path) -> list[Path]:
    """Temp files of checkpoint writes that never finished (a killed process).
    Only for the holder of the run lock: nobody else can be writing them."""
    removed = []
    for path in directory.glob(".step_*.tmp"):
        path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        fsync_dir(directory)
    return removed


def set_aside(path: Path) -> Path:
    """Rename a checkpoint that failed verification, so it never counts as a kept
    one again but stays on disk for a human to look at; an earlier one set aside
    under the same name is kept too."""
    target = path.with_name(path.name + ".damaged")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{n}")
    os.replace(path, target)
    fsync_dir(path.parent)  # else a crash could bring the damaged file back as a kept one
    return target


def newest_verified(directory: Path) -> Path | None:
    """The newest checkpoint that fully verifies (reads every file until one does)."""
    checkpoint, _ = load_latest_good(directory)
    return checkpoint.path if checkpoint is not None else None


def prune_checkpoints(directory: Path, keep: int, *, just_written: Path | None = None) -> list[Path]:
    """Keep the newest fully verified checkpoint (`just_written`, which save_checkpoint
    has verified, or else the newest that verifies) and the `keep` - 1 newest readable
    ones before it; delete the older ones. Files newer than it, or unreadable, are
    left for a human to look at; with no verified checkpoint nothing is deleted."""
    anchor = just_written if just_written is not None else newest_verified(directory)
    if anchor is None:
        return []
    anchor_step = _step_of(anchor)
    older = [path for step, path in list_checkpoints(directory) if step < anchor_step and _readable(path)]
    doomed = older[max(1, keep) - 1 :]
    for path in doomed:
        path.unlink(missing_ok=True)
    if doomed:
        fsync_dir(directory)
    return doomed


def _readable(path: Path) -> bool:
    try:
        read_meta(path)
    except CheckpointError:
        return False
    return True


def _step_of(path: Path) -> int:
    match = CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else -1
