"""Getting a run ready to train: config, data, model, optimizer, run folder, resume.

Everything a user can get wrong is checked here, before the run folder is created
or touched, so a bad preset, a broken split or an unfit checkpoint ends with one
line and leaves the disk as it was.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from .batches import BatchBuilder
from .config import (RESUME_SAFE_KEYS, Config, apply_overrides, config_from_toml_file, load_config)
from .data import SYNTHETIC, Split, StateStats, WindowDataset, synthetic_split
from .device import configure_cpu_threads, describe_device, resolve_device, seed_everything
from .distributed import DistInfo
from .errors import CheckpointError, ConfigError, RunError
from .events import parse_line
from .model import MaskedHWM
from .atomic import append_bytes_durable, write_bytes_atomic, write_text_atomic
from .run_folder import RUNNING, RunFolder, RunLock, create_run_folder, default_runs_dir, new_meta
from .run_history import resolve_run

# What must match between a checkpoint and the model it is loaded into.
SHAPE_KEYS = ("d_model", "n_layers", "n_heads", "mlp_ratio", "shared_from", "factor_groups")


@dataclass
class TrainRequest:
    preset: str | None = None
    data: str | None = None
    val_data: str | None = None
    overrides: list[str] = field(default_factory=list)
    runs_dir: str | None = None
    max_steps: int | None = None
    resume: str | None = None
    run_id: str | None = None  # chosen by a launcher that must find the run afterwards


@dataclass
class TrainingState:
    step: int = 0                  # optimizer steps completed
    samples_seen: int = 0          # position in the sample stream
    consecutive_nonfinite: int = 0


@dataclass
class TrainingSession:
    config: Config
    device: torch.device
    dist: DistInfo
    model: MaskedHWM
    optimizer: torch.optim.Optimizer
    builder: BatchBuilder
    state: TrainingState
    folder: RunFolder | None
    lock: RunLock | None
    meta: dict[str, Any]
    notices: list[str]
    resumed_from: int | None = None
    train_model: torch.nn.Module | None = None  # what forward/backward go through (DDP wrapper)

    def __post_init__(self) -> None:
        if self.train_model is None:
            self.train_model = self.model

    @property
    def global_batch(self) -> int:
        t = self.config.train
        return t.batch_size * t.grad_accum_steps * self.dist.world_size

    @property
    def has_validation(self) -> bool:
        return self.builder.val_set is not None and self.config.eval.eval_steps > 0

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _request_overrides(request: TrainRequest) -> list[str]:
    """--data, --val-data and --max-steps are overrides like any --set, so they are
    validated the same way and recorded in config.toml."""
    out = list(request.overrides)
    if request.data is not None:
        out.append(f"data.train={json.dumps(request.data)}")
    if request.val_data is not None:
        out.append(f"data.val={json.dumps(request.val_data)}")
    if request.max_steps is not None:
        out.append(f"train.max_steps={request.max_steps}")
    return out


def open_splits(config: Config, *, notices: list[str]) -> tuple[Split, Split | None]:
    d = config.data
    if not d.train:
        raise ConfigError(f"preset {config.preset} names no training data: pass --data DIR "
                          "(a 1X v2.0 split such as train_v2.0) or --data synthetic")
    seed = config.train.seed
    if d.train == SYNTHETIC:
        train_dir = synthetic_split("train", shards=d.synthetic_shards, frames=d.synthetic_frames, seed=seed)
    else:
        train_dir = Path(d.train)
    if d.val == SYNTHETIC or (d.train == SYNTHETIC and not d.val):
        val_dir: Path | None = synthetic_split("val", shards=d.synthetic_shards,
                                               frames=d.synthetic_frames, seed=seed)
    elif d.val:
        val_dir = Path(d.val)
    else:
        val_dir = None
        if config.eval.eval_steps > 0:
            notices.append("no val split given (--val-data): validation is skipped for this run")
    train = Split.open(train_dir, role="train")
    train.check_contents()
    val = None
    if val_dir is not None:
        val = Split.open(val_dir, role="val")
        val.check_contents()
    for split in (train, val):
        notices.extend(split.notices if split is not None else [])
    return train, val


def build_model_and_optimizer(config: Config, device: torch.device) -> tuple[MaskedHWM, torch.optim.Optimizer]:
    torch.manual_seed(config.train.seed)
    model = MaskedHWM(config.model, config.latent_frames).to(device)
    t = config.train
    # Weight decay on the weight matrices of linear layers only: decay on embeddings, positions,
    # norms and biases only shrinks what is rarely updated.
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            (decay if isinstance(module, torch.nn.Linear) and name == "weight" else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": t.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(groups, lr=0.0, betas=(t.beta1, t.beta2), eps=t.eps, fused=fused)
    return model, optimizer


def model_shape(config: Config) -> dict[str, Any]:
    shape = {k: getattr(config.model, k) for k in SHAPE_KEYS}
    shape["latent_frames"] = config.latent_frames
    shape["future_latents"] = config.data.future_latents
    return shape


def prepare(request: TrainRequest, dist: DistInfo | None = None, *, create_run: bool = True) -> TrainingSession:
    """A session ready to train. `create_run=False` (benchmarks) writes no run folder."""
    dist = dist or DistInfo()
    configure_cpu_threads()
    if request.resume:
        return _prepare_resume(request, dist)
    return _prepare_new(request, dist, create_run=create_run)


def request_config(request: TrainRequest) -> Config:
    """The configuration a request trains with, fully checked; the same on every rank."""
    if request.resume:
        return resumed_config(request, resolve_run(default_runs_dir(request.runs_dir), request.resume))
    return load_config(request.preset or "cpu", _request_overrides(request))


def resumed_config(request: TrainRequest, folder: RunFolder) -> Config:
    """The run's own config.toml with the overrides a resume may make."""
    if not folder.config_toml.is_file():
        raise RunError(f"run {folder.id} has no config.toml: it cannot be resumed; start a new run")
    config = config_from_toml_file(folder.config_toml)
    if request.preset and request.preset not in (config.preset, Path(config.preset).stem):
        raise ConfigError(f"--resume continues run {folder.id} with its own preset ({config.preset}): "
                          "drop --preset; --set may change only safe keys such as train.max_steps")
    apply_overrides(config, _request_overrides(request), allowed=RESUME_SAFE_KEYS)
    return config


def _prepare_new(request: TrainRequest, dist: DistInfo, *, create_run: bool) -> TrainingSession:
    config = request_config(request)
    device = resolve_device(config.train, dist.local_rank)
    notices: list[str] = []
    train_split, val_split = open_splits(config, notices=notices)
    stats = StateStats.from_split(train_split)
    train_set = WindowDataset(train_split, config.data.windows, stats, role="train")
    val_set = WindowDataset(val_split, config.data.windows, stats, role="val") if val_split else None
    seed_everything(config.train.seed)
    model, optimizer = build_model_and_optimizer(config, device)
    builder = BatchBuilder(config, train_set, val_set)
    folder = lock = None
    meta: dict[str, Any] = {}
    if dist.is_main and create_run:
        folder = create_run_folder(default_runs_dir(request.runs_dir), config.preset, request.run_id)
        lock = RunLock(folder)
        lock.acquire()
        try:
            # run.json first: a process killed from here on leaves a run that lists.
            meta = new_meta(folder.id, config.preset, describe_device(device), config.train.max_steps,
                            dist.world_size)
            meta["data"] = {"train": str(train_split.root), "val": str(val_split.root) if val_split else None}
            folder.write_meta(meta)
            write_text_atomic(folder.config_toml, config.to_toml())
            stats.save(folder.state_stats)
        except OSError as exc:
            lock.release()
            shutil.rmtree(folder.path, ignore_errors=True)  # ours, new and empty of any work
            raise RunError(f"cannot write the run folder {folder.path} ({exc.strerror}): "
                           "free disk space or pass another --runs-dir") from None
    return TrainingSession(config=config, device=device, dist=dist, model=model, optimizer=optimizer,
                           builder=builder, state=TrainingState(), folder=folder, lock=lock,
                           meta=meta, notices=notices)


def _prepare_resume(request: TrainRequest, dist: DistInfo) -> TrainingSession:
    folder = resolve_run(default_runs_dir(request.runs_dir), request.resume)
    lock = RunLock(folder) if dist.is_main else None
    if lock is not None:
        lock.acquire()
    try:
        return _resume_locked(request, dist, folder, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _resume_locked(request: TrainRequest, dist: DistInfo, folder: RunFolder,
                   lock: RunLock | None) -> TrainingSession:
    meta = folder.read_meta()
    config = resumed_config(request, folder)
    checkpoint, problems = ckpt.load_latest_good(folder.checkpoints)
    if checkpoint is None:
        why = f" ({problems[0][1]})" if problems else ""
        raise CheckpointError(f"run {folder.id} has no readable checkpoint to resume from{why}: "
                              "start a new run with the same preset")
    if checkpoint.meta.get("model_shape") != model_shape(config):
        raise CheckpointError(
            f"checkpoint {checkpoint.path.name} is from another model shape "
            f"({_shape_text(checkpoint.meta.get('model_shape'))}) than run {folder.id}'s config "
            f"({_shape_text(model_shape(config))}): resume with the config it was trained with")
    if config.train.max_steps <= checkpoint.step:
        raise ConfigError(f"run {folder.id} has done {checkpoint.step} of train.max_steps = "
                          f"{config.train.max_steps} steps: resume with --max-steps above {checkpoint.step} "
                          "to train further")
    device = resolve_device(config.train, dist.local_rank)
    notices = [f"resuming run {folder.id} from step {checkpoint.step}"
               + (f"; set aside newer damaged checkpoints: {'; '.join(why for _, why in problems)}"
                  if problems else "")]
    before = checkpoint.meta.get("global_batch")
    now = config.train.batch_size * config.train.grad_accum_steps * dist.world_size
    if before and before != now:
        notices.append(f"the global batch changes from {before} to {now} samples a step: keep batch_size x "
                       "grad_accum_steps x processes equal to continue the same run")
    train_split, val_split = open_splits(config, notices=notices)
    stats = StateStats.load(folder.state_stats)
    train_set = WindowDataset(train_split, config.data.windows, stats, role="train")
    val_set = WindowDataset(val_split, config.data.windows, stats, role="val") if val_split else None
    model, optimizer = build_model_and_optimizer(config, device)
    restore(checkpoint, model, optimizer, device)
    state = TrainingState(step=checkpoint.step, samples_seen=int(checkpoint.meta["samples_seen"]),
                          consecutive_nonfinite=int(checkpoint.meta.get("consecutive_nonfinite", 0)))
    builder = BatchBuilder(config, train_set, val_set)
    if dist.is_main:
        try:
            ckpt.remove_partial_writes(folder.checkpoints)
            for path, _ in problems:  # so keep-last-K never counts them as kept checkpoints
                ckpt.set_aside(path)
            rewind_metrics(folder, checkpoint.step)
            write_text_atomic(folder.config_toml, config.to_toml())
        except OSError as exc:
            raise RunError(f"cannot update run {folder.id} for the resume ({exc.strerror}): free disk "
                           "space or check permissions; its files are as they were") from None
        meta["status"] = RUNNING
        meta["ended"] = None
        meta.pop("error", None)
        meta["max_steps"] = config.train.max_steps
        meta["device"] = describe_device(device)
        meta["world_size"] = dist.world_size
        meta.pop("summary", None)  # metrics were rewound; the cache no longer matches
        meta.setdefault("resumes", []).append({"time": time.time(), "from_step": checkpoint.step})
    return TrainingSession(config=config, device=device, dist=dist, model=model, optimizer=optimizer,
                           builder=builder, state=state, folder=folder if dist.is_main else None,
                           lock=lock, meta=meta, notices=notices, resumed_from=checkpoint.step)


def _shape_text(shape: Any) -> str:
    if not isinstance(shape, dict):
        return "unknown"
    return ", ".join(f"{k}={shape[k]}" for k in sorted(shape))


def rewind_metrics(folder: RunFolder, step: int) -> int:
    """Keep the events up to the checkpoint's step, so the resumed run's metrics
    continue without duplicated steps; later lines (and a torn last line) move to
    metrics.rolled_back.jsonl rather than vanish. Returns how many lines moved."""
    try:
        raw = folder.metrics.read_bytes()
    except FileNotFoundError:
        return 0
    keep, moved = [], []
    for line in raw.splitlines(keepends=True):
        event = parse_line(line)
        if event is not None and line.endswith(b"\n") and getattr(event, "step", 0) <= step:
            keep.append(line)
        elif line.strip():
            moved.append(line if line.endswith(b"\n") else line + b"\n")
    if moved:  # on disk before metrics.jsonl loses them
        append_bytes_durable(folder.rolled_back_metrics, b"".join(moved))
    write_bytes_atomic(folder.metrics, b"".join(keep))
    return len(moved)


def restore(checkpoint: ckpt.Checkpoint, model: MaskedHWM, optimizer: torch.optim.Optimizer,
            device: torch.device) -> None:
    tensors, meta = checkpoint.tensors, checkpoint.meta
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"checkpoint {checkpoint.path.name} does not fit this model "
                              f"({first[1].strip() if len(first) > 1 else first[0]}): resume with "
                              "the config it was trained with") from None
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    rng = meta["rng"]
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    np_state = rng["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda":
        cuda_states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def checkpoint_payload(session: TrainingSession) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything a resume needs, split into tensors and JSON."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in session.model.state_dict().items()}
    opt = session.optimizer.state_dict()
    for pid, values in opt["state"].items():
        for key, value in values.items():
            tensors[f"optim.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    if session.device.type == "cuda":
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py_state = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "samples_seen": session.state.samples_seen,
        "consecutive_nonfinite": session.state.consecutive_nonfinite,
        "model_shape": model_shape(session.config),
        "config": session.config.to_dict(),
        "world_size": session.dist.world_size,
        "global_batch": session.global_batch,
        "run_id": session.folder.id if session.folder else None,
        "optimizer": {"param_groups": opt["param_groups"]},
        "rng": {"python": [py_state[0], list(py_state[1]), py_state[2]],
                "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                          float(np_state[4])]},
    }
    return tensors, meta
