"""The training loop: micro-batches, accumulation, clipping, health, events.

A step is one optimizer step. Commands (pause, checkpoint, stop) are applied
between steps (controls.py). The loop publishes every figure as an event and never
prints: the headless line and the dashboard are both just readers of those events.
Validation, checkpoints and the run.json record are parts of their own
(validation.py, checkpointing.py, bookkeeping.py); this module is the step.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch.nn.parallel import DistributedDataParallel

from ..data.batches import DataCursor, MicroBatch, Prefetcher, micro_batch_samples
from ..events.bus import EventBus
from ..events.on_track import LossBand
from ..events.types import CompileEvent, Event, StartEvent, StateEvent, StepEvent, WarningEvent
from ..fsq import CODEBOOK_SIZE
from ..model.masked_hwm import SPATIAL_POSITIONS, forward_loss
from ..runs.inbox import CommandInbox, decode_commands
from ..runtime.device import describe_device, peak_memory_bytes
from ..runtime.distributed import all_reduce_sum, barrier
from ..runtime.failures import FailureKind, classify
from ..runtime.gpu_health import GpuSampler
from ..status import COMPILING, COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING
from .bookkeeping import RunBookkeeping
from .checkpointing import Checkpointer
from .compile import CompiledStep, allocate_grad_buffers, release_compiled_memory
from .controls import Controls
from .divergence import Divergence, DivergenceGuard
from .expected import expected_band
from .grad_health import grad_stats, judge
from .schedule import lr_at
from .session import TrainingSession
from .validation import Validation


@dataclass
class StepFigures:
    """What one optimizer step measured, read back from the device at once."""

    loss: float  # mean over the global batch of the per-sample loss
    grad_norm_pre_clip: float
    grad_norm_post_clip: float
    grad_max_abs: float
    grad_min_abs: float
    commands: list[str]  # rank 0's commands, for every rank's next boundary

    @property
    def finite(self) -> bool:
        return math.isfinite(self.grad_norm_pre_clip) and math.isfinite(self.loss)


class Trainer:
    def __init__(self, session: TrainingSession, bus: EventBus, inbox: CommandInbox):
        self.session = session
        self.config = session.config
        self.bus = bus
        self.inbox = inbox
        self.model = session.model
        # what forward and backward go through: the DDP wrapper when distributed
        self.train_model: torch.nn.Module = session.train_model or session.model
        self.parameters = [p for p in session.model.parameters() if p.requires_grad]
        self.status: str = INTERRUPTED
        self.error: str | None = None
        # what kind of failure ended a failed run (runtime.failures): read this, never `error`'s words
        self.failure: FailureKind | None = None
        # The parts below the loop, each given what it uses of the session.
        self.checkpoints = Checkpointer(
            session.state,
            session.state_dict,
            folder=session.folder,
            keep=session.config.checkpoint.keep_checkpoints,
            device=session.device,
            dist=session.dist,
            bus=bus,
            publish=self._publish,
            resumed_from=session.resumed_from,
        )
        self.controls = Controls(
            inbox,
            session.state,
            dist=session.dist,
            device=session.device,
            publish=self._publish,
            checkpoint=self._checkpoint,
        )
        self.bookkeeping = RunBookkeeping(session.folder, session.meta, session.state, bus)
        self.validation = Validation(
            session.model,
            session.builder,
            session.config,
            dist=session.dist,
            device=session.device,
            folder=session.folder,
            micro_batch=session.batch.micro_batch,
        )
        self.tokens_per_sample = session.config.latent_frames * SPATIAL_POSITIONS
        self.cursor = DataCursor(session.state.step, session.state.samples_seen, session.global_batch)
        self.step_fn = CompiledStep(forward_loss, session.config.train.compile)
        self.guard = DivergenceGuard(session.config.health, session.config.train.warmup_steps)
        self.divergence: Divergence | None = None  # the guard's verdict, acted on at the step's end

    # ------------------------------------------------------------------ public

    def run(self) -> str:
        """Train to max_steps, a stop command or a failure; returns the final status."""
        s = self.session
        prefetcher: Prefetcher | None = None
        gpus: GpuSampler | None = None
        try:
            self.guard.replay(self.bookkeeping.open())
            prefetcher = self._start_prefetch()
            if s.dist.is_main:
                gpus = GpuSampler.start_for(s.device, self._publish, lambda: s.state.step)
            self._publish(
                StartEvent(
                    run_id=s.folder.id if s.folder else "",
                    run_dir=str(s.folder.path) if s.folder else "",
                    preset=self.config.preset,
                    device=describe_device(s.device),
                    start_step=s.state.step,
                    max_steps=self.config.train.max_steps,
                    peak_lr=self.config.train.lr,
                    warmup_steps=self.config.train.warmup_steps,
                    schedule=self.config.train.schedule,
                    max_grad_norm=self.config.train.max_grad_norm,
                    global_batch=s.global_batch,
                    world_size=s.dist.world_size,
                    num_parameters=self.model.num_parameters(),
                    tokens_per_sample=self.tokens_per_sample,
                    codebook_size=CODEBOOK_SIZE,
                    resumed=s.resumed_from is not None,
                    micro_batch=s.batch.micro_batch,
                    grad_accum_steps=s.batch.grad_accum_steps,
                    compile=self.config.train.compile,
                    expected=_band_json(expected_band(self.config, s.builder.train_set.split.metadata)),
                )
            )
            self._publish(StateEvent(RUNNING, s.state.step))
            self.status = self._loop(prefetcher)
            if self.status == FAILED:
                self.failure = FailureKind.ERROR  # non-finite steps, a final checkpoint not written
            # No rank leaves before rank 0 has written its last checkpoint: torchrun
            # tears down every rank once one of them exits.
            barrier(s.dist)
        except KeyboardInterrupt:
            # Only where the trainer runs on the main thread under Python's own SIGINT handler
            # (`bench train`): a Ctrl-C lands here and the run ends interrupted at once, its last
            # checkpoint the resume point. Under TrainingRunner's thread (`train`, headless or on
            # the dashboard) none reaches this thread: hwm_tui/signals.py sends a stop instead.
            self.status = INTERRUPTED
        except torch.OutOfMemoryError:
            self.status, self.failure = FAILED, FailureKind.OUT_OF_MEMORY
            self.error = (
                f"out of GPU memory at step {self.session.state.step + 1}: lower train.batch_size and "
                "raise train.grad_accum_steps to keep the effective batch (or set train.batch_size = "
                "auto), or use a smaller model"
            )
        except Exception as exc:
            self.status, self.failure = FAILED, classify(exc)
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if gpus is not None:
                gpus.stop()
            if prefetcher is not None:
                prefetcher.close()
            if self.step_fn.setting != "off" or self.session.device.type == "cuda":
                # The next run in this process (a bench's next preset, a sweep's next
                # point) starts without this one's graphs, pools, recompile count or
                # cached CUDA blocks.
                release_compiled_memory()
            self._finish()
        return self.status

    # ------------------------------------------------------------------ the loop

    def _loop(self, prefetcher: Prefetcher) -> str:
        s, t = self.session, self.config.train
        while s.state.step < t.max_steps:
            self.controls.apply_at_boundary()
            if self.controls.stop_requested:
                self.checkpoints.save_if_new(paused=self.controls.paused)
                return INTERRUPTED
            finite = self._train_step(prefetcher)
            step = s.state.step
            if not finite and s.state.consecutive_nonfinite >= t.max_nonfinite_steps:
                if self.config.health.divergence_guard:
                    return self._diverged(self.guard.nonfinite(step, s.state.consecutive_nonfinite))
                self.error = (
                    f"{s.state.consecutive_nonfinite} non-finite steps in a row: lower "
                    f"train.lr or check the data; the last good checkpoint is kept"
                )
                return FAILED
            if self.divergence is not None:
                return self._diverged(self.divergence)
            if s.has_validation and step % self.config.eval.eval_steps == 0:
                self._evaluate()
                if self.divergence is not None:
                    return self._diverged(self.divergence)
            if step == t.max_steps:
                return self._final_checkpoint()
            if step % self.config.checkpoint.save_steps == 0:
                self._checkpoint()
        return COMPLETED

    def _diverged(self, divergence: Divergence) -> str:
        """Stopped by the guard. Its weights are not checkpointed: they have gone wrong,
        and a resume goes on from the last checkpoint before."""
        s = self.session
        resume = (
            f"; `hwm-tui train --resume {s.folder.id} --set train.lr=...` goes on from step "
            f"{self.checkpoints.last_step}"
            if s.folder is not None and self.checkpoints.last_step
            else "; no checkpoint was written before: start a new run with a lower train.lr"
        )
        self.error = divergence.message + resume
        self._publish(
            WarningEvent(
                step=divergence.step,
                kind="divergence",
                value=float(divergence.step),
                message=f"[{divergence.rule}] {self.error}",
            )
        )
        return DIVERGED

    def _final_checkpoint(self) -> str:
        """A run is only completed once its final weights are on disk."""
        if self._checkpoint():
            return COMPLETED
        s = self.session
        resume_step = self.checkpoints.last_step or 0
        run = s.folder.id if s.folder else ""
        self.error = (
            f"the final checkpoint (step {s.state.step}) could not be written: free disk space, "
            f"then `hwm-tui train --resume {run}` continues from step {resume_step}"
        )
        return FAILED

    def _micro_batch_jobs(self) -> Iterator[Callable[[], MicroBatch]]:
        s, t = self.session, self.config.train
        for step in range(s.state.step + 1, t.max_steps + 1):
            position = self.cursor.first_position(step)
            for micro in range(s.batch.grad_accum_steps):
                samples = micro_batch_samples(micro, s.dist.rank, s.dist.world_size, s.batch.micro_batch)
                yield partial(s.builder.train_batch, step, position, samples)

    def _start_prefetch(self) -> Prefetcher:
        return Prefetcher(
            self._micro_batch_jobs(),
            depth=2 * self.session.batch.grad_accum_steps,
            pin=self.session.device.type == "cuda",
        )

    def _train_step(self, prefetcher: Prefetcher) -> bool:
        """One optimizer step; returns whether its loss and gradients were finite."""
        started = time.perf_counter()
        step = self.session.state.step + 1
        lr = self._set_learning_rate(step)
        batches = self._next_batches(prefetcher)
        data_wait = time.perf_counter() - started
        loss_sum = self._accumulate_gradients(batches, step)
        figures = self._measure(loss_sum)
        self.controls.agreed.extend(figures.commands)
        self._update_weights(figures.finite)
        self._advance_to(step)
        self._report(step, lr, figures, time.perf_counter() - started, data_wait)
        return figures.finite

    def _set_learning_rate(self, step: int) -> float:
        t = self.config.train
        lr = lr_at(step, peak_lr=t.lr, warmup_steps=t.warmup_steps, max_steps=t.max_steps, schedule=t.schedule)
        for group in self.session.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _next_batches(self, prefetcher: Prefetcher) -> list[MicroBatch]:
        """The step's micro-batches, on the device (copies from pinned memory overlap)."""
        device = self.session.device
        return [prefetcher.next().to(device) for _ in range(self.session.batch.grad_accum_steps)]

    def _accumulate_gradients(self, batches: list[MicroBatch], step: int) -> torch.Tensor:
        """Forward and backward over the step's micro-batches; returns the sum of their
        per-sample losses, on the device. The first step of a compiled run compiles and
        the second captures CUDA graphs (compile.FALLBACK_STEPS); if either fails, out of
        memory included, the run says so once and goes on eager, from the same batches."""
        step_fn = self.step_fn
        if step_fn.keeps_grad_buffers:
            allocate_grad_buffers(self.parameters)  # once: outside any CUDA graph capture
        if not step_fn.pending:
            return self._forward_backward(batches)
        compiling = step_fn.compiling
        if compiling:
            self._publish(StateEvent(COMPILING, step - 1))
        step_fn.open_step()
        try:
            loss_sum = self._forward_backward(batches)
        except Exception as exc:  # noqa: BLE001 - any compiler or capture error, or OOM in it: eager still trains
            self._fall_back_to_eager(exc, step)
            loss_sum = self._forward_backward(batches)
        else:
            step_fn.step_ok()
            if compiling:
                self._publish(CompileEvent(step=step, mode=step_fn.setting, seconds=step_fn.seconds or 0.0, ok=True))
        if compiling:
            self._publish(StateEvent(RUNNING, step - 1))
        return loss_sum

    def _fall_back_to_eager(self, exc: Exception, step: int) -> None:
        """The compiled step failed inside its window: its graphs and their memory are
        released (CompiledStep.failed), the half-accumulated gradients dropped."""
        step_fn = self.step_fn
        step_fn.failed(exc)
        self.session.optimizer.zero_grad(set_to_none=True)
        self._publish(CompileEvent(step=step, mode=step_fn.setting, seconds=0.0, ok=False, message=step_fn.error or ""))
        what = "ran out of memory compiling or capturing CUDA graphs" if step_fn.out_of_memory else "failed"
        self._publish(
            WarningEvent(
                step=step,
                kind="compile",
                value=0.0,
                message=f"train.compile = {step_fn.setting} {what} ({step_fn.error}); "
                "its graphs' memory was released and training goes on eager: set train.compile = off to skip it",
            )
        )

    def _forward_backward(self, batches: list[MicroBatch]) -> torch.Tensor:
        s, t = self.session, self.config.train
        self.train_model.train()
        loss_sum = torch.zeros((), device=s.device)
        # Scale so that after DDP averages over ranks the gradient is the mean over the global batch.
        scale = s.dist.world_size / s.global_batch
        for micro, batch in enumerate(batches):
            last = micro == len(batches) - 1
            wrapped = self.train_model if isinstance(self.train_model, DistributedDataParallel) else None
            sync = contextlib.nullcontext() if last or wrapped is None else wrapped.no_sync()
            with sync:
                per_sample = self.step_fn(
                    self.train_model,
                    batch.factor_ids,
                    batch.states,
                    batch.targets,
                    batch.target_mask,
                    s.device,
                    t.precision,
                )
                (per_sample.sum() * scale).backward()
            loss_sum += per_sample.detach().sum()
        return loss_sum

    def _measure(self, loss_sum: torch.Tensor) -> StepFigures:
        """Clip, and read the step's figures back in the one host sync of the step: the
        global loss, rank 0's commands (riding along with the loss, so every rank learns
        them here) and every gradient figure together."""
        s = self.session
        command_code = self.controls.outgoing_code()
        # new_full fills on the device; torch.tensor(..., device=cuda) would copy from the host and sync.
        shared = all_reduce_sum(torch.stack([loss_sum, loss_sum.new_full((), command_code)]), s.dist)
        health = grad_stats(self.parameters, self.config.train.max_grad_norm)
        loss_sum_all, code, pre, post, max_abs, min_abs = torch.cat([shared.float(), health]).tolist()
        return StepFigures(
            loss=loss_sum_all / s.global_batch,
            grad_norm_pre_clip=pre,
            grad_norm_post_clip=post,
            grad_max_abs=max_abs,
            grad_min_abs=min_abs,
            commands=decode_commands(int(code)),
        )

    def _update_weights(self, finite: bool) -> None:
        """A finite step updates the weights; a non-finite one leaves weights and optimizer
        state as they were, and counts towards the run's limit."""
        s = self.session
        if finite:
            s.optimizer.step()
            s.state.consecutive_nonfinite = 0
        else:
            s.state.consecutive_nonfinite += 1
        # Under CUDA graphs the .grad buffers stay and are zeroed in place (compile.py).
        s.optimizer.zero_grad(set_to_none=not self.step_fn.keeps_grad_buffers)

    def _advance_to(self, step: int) -> None:
        """The one place the step and the position in the sample stream move."""
        self.session.state.step = step
        self.session.state.samples_seen = self.cursor.first_position(step + 1)

    def _report(self, step: int, lr: float, figures: StepFigures, elapsed: float, data_wait: float) -> None:
        s, t = self.session, self.config.train
        self._publish(
            StepEvent(
                step=step,
                loss=figures.loss,
                lr=lr,
                grad_norm_pre_clip=figures.grad_norm_pre_clip,
                grad_norm_post_clip=figures.grad_norm_post_clip,
                grad_max_abs=figures.grad_max_abs,
                grad_min_abs=figures.grad_min_abs,
                clipped=figures.finite and figures.grad_norm_pre_clip > t.max_grad_norm,
                samples_per_s=s.global_batch / elapsed,
                tokens_per_s=s.global_batch * self.tokens_per_sample / elapsed,
                step_time_s=elapsed,
                memory_bytes=peak_memory_bytes(s.device),
                skipped=not figures.finite,
                data_wait_s=data_wait,
            )
        )
        if figures.finite and self.divergence is None:
            self.divergence = self.guard.step(step, figures.loss)
        verdict = judge(figures.grad_norm_pre_clip, figures.loss, self.config.health)
        if verdict is not None:
            message = verdict.message
            if not figures.finite:
                message += f" ({s.state.consecutive_nonfinite}/{t.max_nonfinite_steps} in a row)"
            self._publish(WarningEvent(step=step, kind=verdict.kind, value=verdict.value, message=message))

    # ------------------------------------------------------------------ between steps

    def _evaluate(self) -> None:
        step = self.session.state.step
        evaluation = self.validation.validate(step)
        self._publish(evaluation)
        if self.divergence is None:
            self.divergence = self.guard.evaluation(evaluation.step, evaluation.val_loss)
        if self.config.eval.sample_count:
            self.validation.predict_for_samples_view(step, self._publish)

    def _checkpoint(self) -> bool:
        return self.checkpoints.save(paused=self.controls.paused)

    @property
    def last_checkpoint_step(self) -> int | None:
        return self.checkpoints.last_step

    def _publish(self, event: Event) -> None:
        self.bus.publish(event)

    def _finish(self) -> None:
        s = self.session
        final = StateEvent(self.status, s.state.step, message=self.error or "")
        self._publish(final)
        self.bookkeeping.close(self.status, self.error)


def _band_json(band: LossBand | None) -> dict | None:
    return band.to_json() if band is not None else None
