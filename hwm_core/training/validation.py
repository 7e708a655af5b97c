"""Validation during training: the val loss and token accuracy on one fixed set of val
samples, and the samples view's predictions for the first of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..events.types import EvalEvent, Event, SamplesEvent, WarningEvent
from ..model.masked_hwm import masked_token_loss
from ..predictions.inference import TrainedModel
from ..predictions.predict import predict_samples
from ..predictions.samples import save_samples
from ..runtime.device import autocast
from ..runtime.distributed import all_reduce_sum
from .session import TrainingSession


@torch.no_grad()
def validate(session: TrainingSession, micro_batch: int) -> EvalEvent:
    """The model on the val samples, in batches of `micro_batch`, summed over ranks."""
    s = session
    model = s.model
    # A fixed set of eval_samples val samples striped over the ranks: the same set
    # however many processes train and however the batch is split.
    mine = list(range(s.dist.rank, s.config.eval.eval_samples, s.dist.world_size))
    totals = torch.zeros(4, device=s.device)  # loss sum, samples, correct tokens, tokens
    val_set = s.builder.val_set
    assert val_set is not None, "validate needs a val split (has_validation)"
    model.eval()
    for first in range(0, len(mine), micro_batch):
        batch = s.builder.val_batch(mine[first : first + micro_batch]).to(s.device)
        with autocast(s.device, s.config.train.precision):
            logits = model(batch.factor_ids, batch.states, batch.target_frames)
        per_sample, correct = masked_token_loss(logits, batch.targets, batch.target_mask)
        # all on the device: read back once, after the loop
        totals += torch.stack(
            [
                per_sample.sum(),
                totals.new_full((), float(batch.num_samples)),
                (correct & batch.target_mask).sum().float(),
                batch.target_mask.sum().float(),
            ]
        )
    model.train()
    loss_sum, samples, correct, tokens = all_reduce_sum(totals, s.dist).tolist()
    return EvalEvent(step=s.state.step, val_loss=loss_sum / max(samples, 1), val_token_acc=correct / max(tokens, 1))


def predict_for_samples_view(session: TrainingSession, publish: Callable[[Event], None]) -> None:
    """The samples view's predictions, for the first val samples validation takes."""
    s = session
    val_set, val_order = s.builder.val_set, s.builder.val_order
    if s.folder is None or val_set is None or val_order is None:
        return
    trained = TrainedModel(
        model=s.model,
        config=s.config,
        stats=val_set.stats,
        step=s.state.step,
        checkpoint=None,
        folder=s.folder,
        device=s.device,
    )
    count = min(s.config.eval.sample_count, len(val_set))
    indices = [int(i) for i in val_order[:count]]
    record = predict_samples(
        trained, val_set, indices, step=s.state.step, maskgit_steps=s.config.eval.maskgit_steps, temperature=0.0
    )
    try:
        path: Path = save_samples(s.folder, record)
    except OSError as exc:  # the samples view misses one refresh; training goes on
        publish(
            WarningEvent(
                step=s.state.step,
                kind="disk",
                value=0.0,
                message=f"cannot write the samples view's predictions ({exc.strerror})",
            )
        )
        return
    publish(SamplesEvent(step=s.state.step, path=str(path), count=count))
