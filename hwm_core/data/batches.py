"""Which samples a step sees, and how they become model inputs.

The data order is a fixed function of the seed and of a sample's position in the
stream of samples (an epoch-by-epoch permutation), so a resumed run, or one with
another number of ranks, reads exactly the samples an uninterrupted run would.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..config.schema import Config
from ..fsq import FactorSpec
from .dataset import WindowDataset
from .masking import TRAIN, VALIDATION, corrupt_sample, sample_rng


@dataclass
class MicroBatch:
    """Model inputs of the same shapes at every step of a run (N = future_latents x 1024)."""

    factor_ids: torch.Tensor  # [B, T, S, F] int64, mask id where masked
    states: torch.Tensor  # [B, 17*W, 25] float32, normalised
    targets: torch.Tensor  # [B, N, F] int64: the true factor ids of the target latent frames
    target_mask: torch.Tensor  # [B, N] bool: which of them were masked (only those are scored)

    def to(self, device: torch.device) -> MicroBatch:
        non_blocking = device.type == "cuda"
        return MicroBatch(*(t.to(device, non_blocking=non_blocking) for t in self.tensors()))

    def pin_memory(self) -> MicroBatch:
        return MicroBatch(*(t.pin_memory() for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.factor_ids, self.states, self.targets, self.target_mask

    @property
    def num_samples(self) -> int:
        return int(self.factor_ids.shape[0])

    @property
    def target_frames(self) -> int:
        return int(self.targets.shape[1]) // int(self.factor_ids.shape[2])


class DataOrder:
    """Position in the sample stream -> dataset index; a new permutation each epoch."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples, self.seed = num_samples, seed
        self._epoch, self._perm = -1, np.zeros(0, dtype=np.int64)

    def index(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_samples)
        if epoch != self._epoch:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x0DA7A, epoch]))
            self._epoch, self._perm = epoch, rng.permutation(self.num_samples)
        return int(self._perm[offset])


@dataclass(frozen=True)
class DataCursor:
    """Where in the sample stream each step of a session reads. Steps are 1-based:
    step s of a session that started after `start_step` steps, at `start_position`,
    reads the `global_batch` samples from first_position(s) on."""

    start_step: int
    start_position: int
    global_batch: int

    def first_position(self, step: int) -> int:
        return self.start_position + (step - 1 - self.start_step) * self.global_batch


def val_sample_order(num_samples: int, seed: int) -> np.ndarray:
    """The val samples in the fixed order validation (and the samples view) takes them."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0x7A1])).permutation(num_samples)


def micro_batch_samples(micro: int, rank: int, world_size: int, batch_size: int) -> list[int]:
    """Indices within the step's global batch that this rank's micro-batch holds."""
    first = (micro * world_size + rank) * batch_size
    return list(range(first, first + batch_size))


class BatchBuilder:
    def __init__(self, config: Config, train: WindowDataset, val: WindowDataset | None):
        self.config = config
        self.train_set, self.val_set = train, val
        self.factors = FactorSpec(config.model.factor_groups)
        self.seed = config.train.seed
        self.order = DataOrder(len(train), self.seed)
        self.val_order = val_sample_order(len(val), self.seed) if val is not None else None

    def train_batch(self, step: int, first_position: int, samples: list[int]) -> MicroBatch:
        """Samples `samples` of step `step`, whose global batch starts at stream
        position `first_position`."""
        items = []
        for g in samples:
            tokens, states = self.train_set.get(self.order.index(first_position + g))
            items.append((tokens, states, sample_rng(self.seed, TRAIN, step, g)))
        masking = self.config.masking
        return self._assemble(items, max_corrupt_rate=masking.max_corrupt_rate, full_mask_rate=masking.full_mask_rate)

    def val_batch(self, samples: list[int]) -> MicroBatch:
        """The same fixed val samples and masks at every evaluation, so val losses compare."""
        assert self.val_set is not None and self.val_order is not None
        items = []
        for g in samples:
            tokens, states = self.val_set.get(int(self.val_order[g % len(self.val_order)]))
            items.append((tokens, states, sample_rng(self.seed, VALIDATION, 0, g)))
        # Masked but not corrupted: validation measures prediction from the true context,
        # so runs with different corruption rates compare.
        return self._assemble(items, max_corrupt_rate=0.0)

    def _assemble(
        self,
        items: list[tuple[np.ndarray, np.ndarray, np.random.Generator]],
        *,
        max_corrupt_rate: float,
        full_mask_rate: float = 0.0,
    ) -> MicroBatch:
        codes_in, masks, originals, states = [], [], [], []
        for tokens, sample_states, rng in items:
            flat = tokens.reshape(tokens.shape[0], -1)
            corrupted, mask = corrupt_sample(
                flat,
                rng,
                future_latents=self.config.data.future_latents,
                max_corrupt_rate=max_corrupt_rate,
                full_mask_rate=full_mask_rate,
                per_frame=self.config.masking.per_frame,
                visible_prefix=self.config.masking.visible_prefix,
            )
            codes_in.append(corrupted)
            masks.append(mask)
            originals.append(flat)
            states.append(sample_states)
        # numpy only, no torch ops: this runs in the prefetch thread (see FactorSpec.factor_array).
        mask = np.stack(masks)
        factor_ids = self.factors.factor_array(np.stack(codes_in))
        factor_ids[mask] = self.factors.mask_ids()
        future = self.config.data.future_latents
        target_codes = np.stack(originals)[:, -future:].reshape(len(items), -1)
        return MicroBatch(
            factor_ids=torch.from_numpy(factor_ids),
            states=torch.from_numpy(np.stack(states)),
            targets=torch.from_numpy(self.factors.factor_array(target_codes)),
            target_mask=torch.from_numpy(np.ascontiguousarray(mask[:, -future:].reshape(len(items), -1))),
        )


class Prefetcher:
    """Builds the next micro-batches in a background thread while the current step
    computes. Order is kept, so the result is the same as building them inline."""

    _DONE = object()

    def __init__(self, jobs: Iterator[Callable[[], MicroBatch]], depth: int = 2, *, pin: bool = False):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pin = pin
        self._thread = threading.Thread(target=self._run, args=(jobs,), name="hwm-prefetch", daemon=True)
        self._thread.start()

    def _run(self, jobs: Iterator[Callable[[], MicroBatch]]) -> None:
        try:
            for job in jobs:
                batch = job()
                if self._pin:
                    batch = batch.pin_memory()
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - surfaced in the training thread by next()
            self._queue.put(exc)
            return
        self._queue.put(self._DONE)

    def next(self) -> MicroBatch:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is self._DONE:
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
