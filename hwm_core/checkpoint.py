"""Checkpoints: safetensors files, written atomically, checksummed, never unpickled.

One file per checkpoint, `step_00001000.safetensors`: the model, the optimizer
state and the RNG states as tensors; everything else (step, data position, the
model's shape, optimizer hyper-parameters, python/numpy RNG) as JSON in the
safetensors header. The file is written to a temporary name, fsync'd, then
renamed, so a reader only ever sees whole checkpoints; a checksum over the
tensors catches damage after the fact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import CheckpointError
from .atomic import fsync_dir

FORMAT_VERSION = 1
CHECKPOINT_RE = re.compile(r"^step_(\d{8,})\.safetensors$")
META_KEY = "hwm"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(str(t.dtype).encode())
        # Raw bytes whatever the dtype (bf16 has no numpy equivalent).
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _write_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """The one place bytes hit the disk, so tests can make it fail like a full disk."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as exc:  # its own type for I/O errors (disk full, file too large)
        raise OSError(errno.EIO, str(exc)) from None
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(directory: Path, step: int, tensors: dict[str, torch.Tensor],
                    meta: dict[str, Any]) -> tuple[Path, int]:
    """Write atomically; returns (path, bytes). On any error the temp file is
    removed and the checkpoints already there are untouched."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {**meta, "format": FORMAT_VERSION, "step": step, "time": time.time(),
            "checksum": tensors_checksum(tensors)}
    final = directory / checkpoint_name(step)
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        _write_file(tmp, tensors, {META_KEY: json.dumps(meta)})
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return final, final.stat().st_size


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
            data_end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                           default=0)
            if os.fstat(fh.fileno()).st_size < 8 + length + data_end:
                raise ValueError("file is truncated")
        meta = json.loads(header["__metadata__"][META_KEY])
        if not isinstance(meta, dict) or "step" not in meta:
            raise ValueError("no hwm-tui metadata")
        return meta
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({exc}): it is damaged or not an "
                              "hwm-tui checkpoint; resume from an older one or start a new run") from None


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify a checkpoint. Tensors only go through safetensors: nothing is
    unpickled, so a crafted file cannot run code."""
    meta = read_meta(path)
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for name in fh.keys():
                tensors[name] = fh.get_tensor(name)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"checkpoint {path} is unreadable ({exc}): resume from an older one "
                              "or start a new run") from None
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')}, this hwm-tui "
                              f"reads format {FORMAT_VERSION}: use the hwm-tui version that wrote it")
    if tensors_checksum(tensors) != meta.get("checksum"):
        raise CheckpointError(f"checkpoint {path} fails its checksum: the file is damaged; "
                              "resume from an older one")
    return Checkpoint(path=path, step=int(meta["step"]), tensors=tensors, meta=meta)


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
        try:
            read_meta(path)
        except CheckpointError:
            continue
        return step, path
    return None


def load_latest_good(directory: Path) -> tuple[Checkpoint | None, list[tuple[Path, str]]]:
    """The newest checkpoint that fully verifies, and the newer ones passed over (with why)."""
    problems: list[tuple[Path, str]] = []
    for step, path in list_checkpoints(directory):
        try:
            return load_checkpoint(path), problems
        except CheckpointError as exc:
            problems.append((path, str(exc)))
    return None, problems


def remove_partial_writes(directory: Path) -> list[Path]:
    """Temp files of checkpoint writes that never finished (a killed process).
    Only for the holder of the run lock: nobody else can be writing them."""
    removed = []
    for path in directory.glob(".step_*.tmp"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def set_aside(path: Path) -> Path:
    """Rename a checkpoint that failed verification, so it never counts as a kept
    one again but stays on disk for a human to look at."""
    target = path.with_name(path.name + ".damaged")
    os.replace(path, target)
    return target


def prune_checkpoints(directory: Path, keep: int, *, just_written: Path | None = None) -> list[Path]:
    """Delete all but the `keep` newest readable checkpoints. Unreadable files are
    left for a human to look at; the one just written is never deleted."""
    readable = []
    for step, path in list_checkpoints(directory):
        try:
            read_meta(path)
        except CheckpointError:
            continue
        readable.append(path)
    if just_written is not None and just_written in readable:
        readable.remove(just_written)
        readable.insert(0, just_written)
    doomed = readable[max(1, keep):]
    for path in doomed:
        path.unlink(missing_ok=True)
    if doomed:
        fsync_dir(directory)
    return doomed
