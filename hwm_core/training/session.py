"""Getting a run ready to train: a new run, or a resumed one, on one process or several.

Everything a user can get wrong is checked here, before the run folder is created
or touched, so a bad preset, a broken split or an unfit checkpoint ends with one
line and leaves the disk as it was. New and resumed runs are assembled by the
same `_assemble` and made a session in the same `_session`; they differ only in
where the state statistics come from, and a resumed one loads its checkpoint
(`TrainingSession.load_state_dict`, the counterpart of what checkpoints write).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from ..config.batch import BatchSplit, recorded
from ..config.schema import AUTO, Config
from ..data import StateStats, WindowDataset
from ..data.batches import BatchBuilder
from ..data.sources import open_splits
from ..errors import RunError, UserError
from ..mirrors.base import check_installed
from ..model.masked_hwm import MaskedHWM, forward_loss
from ..runs.checkpoint import Checkpoint
from ..runs.checkpoint_contents import checkpoint_payload, restore
from ..runs.folder import RunFolder, create_run_folder
from ..runs.history import resolve_run
from ..runs.lock import RunLock
from ..runs.record import new_meta, resumed_meta
from ..runtime import distributed
from ..runtime.atomic import write_text_atomic
from ..runtime.device import configure_cpu_threads, describe_device, limit_memory, resolve_device, seed_everything
from ..runtime.distributed import DistInfo
from ..runtime.failures import does_not_fit
from .compile import CompiledStep, allocate_grad_buffers, release_compiled_memory
from .micro_batch import cuda_memory_probe, resolve_auto_batch
from .optimizer import build_optimizer
from .request import TrainRequest, request_config
from .resume import find_resume_point, rewind_folder

__all__ = ["CheckpointState", "TrainRequest", "TrainingSession", "TrainingState", "prepare", "prepare_distributed"]


@dataclass
class TrainingState:
    """Where the run stands: the trainer moves it, its parts read it."""

    step: int = 0  # optimizer steps completed
    samples_seen: int = 0  # position in the sample stream
    consecutive_nonfinite: int = 0


@dataclass(frozen=True)
class CheckpointState:
    """What a checkpoint of a step holds, as checkpoint_contents.py lays it out."""

    step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


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
    batch: BatchSplit  # the micro-batch and accumulation resolved (train.batch_size may say auto)
    resumed_from: int | None = None
    train_model: torch.nn.Module | None = None  # what forward/backward go through (DDP wrapper)

    def __post_init__(self) -> None:
        if self.train_model is None:
            self.train_model = self.model

    @property
    def global_batch(self) -> int:
        return self.batch.global_batch(self.dist.world_size)

    @property
    def has_validation(self) -> bool:
        return self.builder.val_set is not None and self.config.eval.eval_steps > 0

    def state_dict(self, cuda_rng_states: list[torch.Tensor] | None = None) -> CheckpointState:
        """Everything a resume needs: the weights, the optimizer, the RNGs, the step, the
        data position and the count of non-finite steps; `load_state_dict` puts it back.
        `cuda_rng_states`: every rank's, in rank order (gathered to the rank that writes)."""
        tensors, meta = checkpoint_payload(
            self.model,
            self.optimizer,
            self.device,
            config=self.config,
            samples_seen=self.state.samples_seen,
            consecutive_nonfinite=self.state.consecutive_nonfinite,
            world_size=self.dist.world_size,
            global_batch=self.global_batch,
            run_id=self.folder.id if self.folder is not None else None,
            cuda_rng_states=cuda_rng_states,
        )
        return CheckpointState(self.state.step, tensors, meta)

    def load_state_dict(self, checkpoint: Checkpoint) -> None:
        """The session as it was when `checkpoint` (what `state_dict` gave, written and read
        back) was written: it resumes from its step."""
        restore(checkpoint, self.model, self.optimizer, self.device, rank=self.dist.rank)
        header = checkpoint.meta
        self.state.step = checkpoint.step
        self.state.samples_seen = int(header["samples_seen"])
        self.state.consecutive_nonfinite = int(header.get("consecutive_nonfinite", 0))
        self.resumed_from = checkpoint.step

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def prepare(request: TrainRequest, dist: DistInfo | None = None, *, create_run: bool = True) -> TrainingSession:
    """A session ready to train. `create_run=False` (benchmarks) writes no run folder."""
    dist = dist or DistInfo()
    configure_cpu_threads()
    if request.resume:
        return _prepare_resume(request, request.resume, dist)
    return _prepare_new(request, dist, create_run=create_run)


def prepare_distributed(request: TrainRequest, dist: DistInfo) -> TrainingSession:
    """Under torchrun: every rank prepares the same session, rank 0 alone creates the
    run folder, and each wraps its model for DDP. If any rank fails (bad data on one
    node, say), all stop with its message."""
    # Config errors are the same on every rank (same files, same flags): each says so
    # and stops, before any rank waits for another.
    device = resolve_device(request_config(request).train, dist.local_rank)
    distributed.init_process_group(dist, device)
    session, error = None, None
    try:
        session = prepare(request, dist)
    except UserError as exc:
        error = exc
    if not distributed.all_agree(error is None, dist, device):
        if session is not None:
            session.close()
        if error is not None:
            raise error
        raise RunError(
            f"another rank failed to start (rank {dist.rank} of {dist.world_size} was ready): "
            "see that rank's message above"
        )
    assert session is not None
    session.train_model = distributed.wrap_ddp(session.model, dist, session.device)
    if dist.is_main:
        b = session.batch
        session.notices.append(
            f"{dist.world_size} processes: global batch {session.global_batch} "
            f"= {b.micro_batch} x {b.grad_accum_steps} x {dist.world_size}"
        )
    return session


@dataclass
class _Parts:
    device: torch.device
    model: MaskedHWM
    optimizer: torch.optim.Optimizer
    builder: BatchBuilder
    stats: StateStats
    data: dict[str, str | None]  # the split folders, as run.json records them
    batch: BatchSplit


def _assemble(config: Config, dist: DistInfo, notices: list[str], stats: StateStats | None = None) -> _Parts:
    """Splits -> datasets -> model and optimizer -> batch builder -> the micro-batch, if
    auto. Statistics come from the train split unless given (a resume uses the ones it
    started with)."""
    if dist.is_main:
        check_installed(config.log.mirrors)  # before any work: a missing package is one line
    device = resolve_device(config.train, dist.local_rank)
    memory = limit_memory(config.train, device)
    train_split, val_split = open_splits(config, notices=notices)
    stats = stats if stats is not None else StateStats.from_split(train_split)
    train_set = WindowDataset(train_split, config.data.windows, stats, role="train")
    val_set = WindowDataset(val_split, config.data.windows, stats, role="val") if val_split else None
    seed_everything(config.train.seed)  # the same initial weights for the same seed
    model = MaskedHWM(config.model, config.latent_frames).to(device)
    optimizer = build_optimizer(model, config.train, device)
    builder = BatchBuilder(config, train_set, val_set)
    fits = None
    if config.train.batch_size == AUTO and memory is not None:
        param_bytes = sum(p.numel() * 4 for p in model.parameters())
        # Adam's two fp32 moments; under DDP also its gradient buckets (one more copy of the
        # gradients), since the probe runs before the model is wrapped.
        extra = 2 * param_bytes + (param_bytes if dist.enabled else 0)
        step = CompiledStep(forward_loss, config.train.compile)  # the step training runs
        fits = cuda_memory_probe(partial(_try_micro_batch, step, model, builder, config, device), device, extra, memory)
    batch = resolve_auto_batch(
        config,
        fits,
        agree=lambda m: distributed.agree_min(m, dist, device),
        notices=notices,
        device_name=describe_device(device),
    )
    if fits is not None:
        # The probe's graphs and pools given back, and its peak forgotten: the run's (and
        # a bench's) peak memory is the training's own.
        release_compiled_memory()
        torch.cuda.reset_peak_memory_stats(device)
    return _Parts(
        device,
        model,
        optimizer,
        builder,
        stats,
        {"train": str(train_split.root), "val": str(val_split.root) if val_split else None},
        batch,
    )


def _try_micro_batch(
    step: CompiledStep, model: MaskedHWM, builder: BatchBuilder, config: Config, device: torch.device, m: int
) -> None:
    """Real forward and backward passes of m samples through `step`, the step training
    runs (compiled, and in CUDA graphs, as the preset says), leaving no trace: no
    gradients, and the RNGs as they were. Under CUDA graphs it runs three times (graph
    trees warm up, record, then replay), so the graph pool is in the peak; each try
    starts with no earlier try's graphs (no pool of another size held, no recompile
    limit reached). A compiler error that is not a size's doing makes the probe go on
    eager, as training will. Only a GPU shows the compiled peak."""
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    if step.active:
        release_compiled_memory()
    try:
        batch = builder.train_batch(1, 0, list(range(m))).to(device)
        calls = 3 if step.keeps_grad_buffers else 1
        if step.keeps_grad_buffers:
            allocate_grad_buffers(model.parameters())
        done = 0
        while done < calls:
            try:
                step(model, *batch.tensors(), device, config.train.precision).sum().backward()
            except Exception as exc:  # re-raised unless it is the compiler's own failure
                if not step.active or does_not_fit(exc):
                    raise
                step.failed(exc)  # training meets the same error and goes on eager: probe eager
                model.zero_grad(set_to_none=True)
                calls, done = 1, 0
                continue
            done += 1
    finally:
        model.zero_grad(set_to_none=True)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, device)


def _prepare_new(request: TrainRequest, dist: DistInfo, *, create_run: bool) -> TrainingSession:
    requested = request_config(request)
    notices: list[str] = []
    parts = _assemble(requested, dist, notices)
    config = recorded(requested, parts.batch)
    folder = lock = None
    meta: dict[str, Any] = {}
    if dist.is_main and create_run:
        folder = create_run_folder(request.runs_path, config.preset, request.run_id)
        lock = RunLock(folder)
        lock.acquire()
        try:
            # run.json first: a process killed from here on leaves a run that lists.
            meta = new_meta(
                folder.id, config.preset, describe_device(parts.device), config.train.max_steps, dist.world_size
            )
            meta["data"] = parts.data
            if request.sweep is not None:
                meta["sweep"] = request.sweep
            folder.write_meta(meta)
            write_text_atomic(folder.config_toml, config.to_toml())
            parts.stats.save(folder.state_stats)
        except OSError as exc:
            lock.release()
            shutil.rmtree(folder.path, ignore_errors=True)  # ours, new and empty of any work
            raise RunError(
                f"cannot write the run folder {folder.path} ({exc.strerror}): "
                "free disk space or pass another --runs-dir"
            ) from None
    return _session(parts, config, dist, folder=folder, lock=lock, meta=meta, notices=notices)


def _prepare_resume(request: TrainRequest, run: str, dist: DistInfo) -> TrainingSession:
    folder = resolve_run(request.runs_path, run)
    lock = RunLock(folder) if dist.is_main else None
    if lock is not None:
        lock.acquire()
    try:
        return _resume_locked(request, dist, folder, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _resume_locked(request: TrainRequest, dist: DistInfo, folder: RunFolder, lock: RunLock | None) -> TrainingSession:
    meta = folder.read_meta()
    point = find_resume_point(request, folder)
    notices: list[str] = []
    parts = _assemble(point.config, dist, notices, stats=StateStats.load(folder.state_stats))
    config = recorded(point.config, parts.batch)
    notices[:0] = point.notices(parts.batch.global_batch(dist.world_size))
    session = _session(
        parts, config, dist, folder=folder if dist.is_main else None, lock=lock, meta=meta, notices=notices
    )
    # before the folder is touched: a checkpoint that does not fit is one line
    session.load_state_dict(point.checkpoint)
    if dist.is_main:
        rewind_folder(point, config)
        session.meta = resumed_meta(
            meta,
            from_step=point.step,
            max_steps=config.train.max_steps,
            device=describe_device(parts.device),
            world_size=dist.world_size,
        )
    return session


def _session(
    parts: _Parts,
    config: Config,
    dist: DistInfo,
    *,
    folder: RunFolder | None,
    lock: RunLock | None,
    meta: dict[str, Any],
    notices: list[str],
) -> TrainingSession:
    """A new run's session, or a resumed one's before it loads its checkpoint."""
    return TrainingSession(
        config=config,
        device=parts.device,
        dist=dist,
        model=parts.model,
        optimizer=parts.optimizer,
        builder=parts.builder,
        state=TrainingState(),
        folder=folder,
        lock=lock,
        meta=meta,
        notices=notices,
        batch=parts.batch,
    )
