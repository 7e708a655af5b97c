"""Validation during training: the val loss and token accuracy on one fixed set of val
samples, and the samples view's predictions for the first of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..config.schema import Config
from ..data.batches import BatchBuilder
from ..events.types import EvalEvent, Event, SamplesEvent, WarningEvent
from ..model.masked_hwm import MaskedHWM, masked_token_loss
from ..predictions.inference import TrainedModel
from ..predictions.predict import predict_samples
from ..predictions.samples import save_samples
from ..runs.folder import RunFolder
from ..runtime.device import autocast
from ..runtime.distributed import DistInfo, all_reduce_sum


class Validation:
    def __init__(
        self,
        model: MaskedHWM,
        builder: BatchBuilder,
        config: Config,
        dist: DistInfo,
        device: torch.device,
        folder: RunFolder | None,  # where the samples view's predictions go; None: not written
        micro_batch: int,  # the val samples go through the model this many at a time
    ):
        self.model = model
        self.builder = builder
        self.config = config
        self.dist = dist
        self.device = device
        self.folder = folder
        self.micro_batch = micro_batch

    @torch.no_grad()
    def validate(self, step: int) -> EvalEvent:
        """The model on the val samples, summed over ranks."""
        model, device = self.model, self.device
        # A fixed set of eval_samples val samples striped over the ranks: the same set
        # however many processes train and however the batch is split.
        mine = list(range(self.dist.rank, self.config.eval.eval_samples, self.dist.world_size))
        totals = torch.zeros(4, device=device)  # loss sum, samples, correct tokens, tokens
        assert self.builder.val_set is not None, "validate needs a val split (has_validation)"
        model.eval()
        for first in range(0, len(mine), self.micro_batch):
            batch = self.builder.val_batch(mine[first : first + self.micro_batch]).to(device)
            with autocast(device, self.config.train.precision):
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
        loss_sum, samples, correct, tokens = all_reduce_sum(totals, self.dist).tolist()
        return EvalEvent(step=step, val_loss=loss_sum / max(samples, 1), val_token_acc=correct / max(tokens, 1))

    def predict_for_samples_view(self, step: int, publish: Callable[[Event], None]) -> None:
        """The samples view's predictions, for the first val samples validation takes."""
        val_set, val_order = self.builder.val_set, self.builder.val_order
        if self.folder is None or val_set is None or val_order is None:
            return
        trained = TrainedModel(
            model=self.model,
            config=self.config,
            stats=val_set.stats,
            step=step,
            checkpoint=None,
            folder=self.folder,
            device=self.device,
        )
        count = min(self.config.eval.sample_count, len(val_set))
        indices = [int(i) for i in val_order[:count]]
        record = predict_samples(
            trained, val_set, indices, step=step, maskgit_steps=self.config.eval.maskgit_steps, temperature=0.0
        )
        try:
            path: Path = save_samples(self.folder, record)
        except OSError as exc:  # the samples view misses one refresh; training goes on
            publish(
                WarningEvent(
                    step=step,
                    kind="disk",
                    value=0.0,
                    message=f"cannot write the samples view's predictions ({exc.strerror})",
                )
            )
            return
        publish(SamplesEvent(step=step, path=str(path), count=count))
