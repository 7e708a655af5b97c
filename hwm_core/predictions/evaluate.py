"""`hwm-tui evaluate`: a checkpoint scored on every valid sample of a split, next to
the trivial predictors a reader needs to judge the figures.

- Teacher-forced cross-entropy of each target latent frame: the frame predicted
  from the true frames before it with itself fully masked (temporal attention is
  causal, so later frames play no part), in nats summed over the factors: the joint
  CE under the factorised pmf, the form of the 1X compression metric, comparable
  with a 64,000-way CE. Token accuracy (every factor right) and per factor.
- Baselines on the same tokens: uniform (ln 64,000), the unigram CE of each
  factor's code frequencies in the train split (add-one smoothed), and the accuracy
  of copying the last context latent frame.
- The compression track's own score, the Top-500 CE (top_k_ce.py), of the same
  teacher-forced logits, with its uniform, unigram and copy-last baselines and the
  published first place beside it.
- MaskGIT generation of the target frames (maskgit.py): accuracy against the truth.
- Controllability: the same teacher-forced figures with each sample's states
  replaced by another sample's (controllability.py), and the difference: how much
  the prediction follows the actions (Genie's Δ PSNR, in token space).
- On a synthetic split, what the actions make predictable: the last context latent
  frame moved by the shift the states encode (the generator's rule, synth.py).
- With a decoder (pixels/decoder.py), PSNR of the decoded MaskGIT generation against the
  decoded truth, per target grid, beside copy-last's (pixel_figures.py).

The same command gives the same figures: samples in split order, generation
seeded per batch. Results are kept in the run folder (evaluation_store.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import Split, WindowDataset
from ..data.synth import is_synthetic, shifted_view, view_shifts
from ..fsq import CODEBOOK_SIZE, FactorSpec
from ..pixels.frames import WindowPixels
from ..runtime.device import describe_device
from .controllability import paired_sample
from .inference import TrainedModel, sample_batch
from .pixel_figures import pixel_section, target_psnr
from .predict import maskgit_sample, teacher_forced
from .top_k_ce import (
    DEFINITION,
    PUBLISHED_FIRST_PLACE,
    PUBLISHED_FIRST_PLACE_NATS,
    TOP_K,
    TopKCut,
    copy_last_ce,
    top_k_cross_entropy,
    top_k_cut,
)


@dataclass
class EvalOptions:
    batch_size: int = 16
    limit: int | None = None  # the first N valid samples; None: all
    maskgit_steps: int = 8
    temperature: float = 0.0
    seed: int = 0


def factor_unigram(split: Split, factors: FactorSpec) -> list[torch.Tensor]:
    """Per factor, the log-frequency of each of its values over every token of the
    split (add-one smoothed, so an unseen value costs a finite amount)."""
    counts = [np.ones(size, dtype=np.float64) for size in factors.sizes]
    table = factors.factor_array(np.arange(CODEBOOK_SIZE))  # code -> factor ids
    for shard in split.shards:
        per_code = np.bincount(np.asarray(shard.video, dtype=np.int64).ravel(), minlength=CODEBOOK_SIZE)
        for f, size in enumerate(factors.sizes):
            counts[f] += np.bincount(table[:, f], weights=per_code, minlength=size)
    return [torch.from_numpy(np.log(c / c.sum())).float() for c in counts]


class _Totals:
    """Sums per target frame, turned into means at the end."""

    def __init__(self, frames: int, factors: int, *, paired: bool, synthetic: bool):
        self.paired, self.synthetic = paired, synthetic
        self.other_ce = np.zeros(frames)
        self.other_correct = np.zeros(frames)
        self.shift_correct = np.zeros(frames)
        self.tokens = np.zeros(frames)
        self.ce = np.zeros(frames)
        self.correct = np.zeros(frames)
        self.factor_correct = np.zeros((frames, factors))
        self.unigram_ce = np.zeros(frames)
        self.copy_correct = np.zeros(frames)
        self.maskgit_correct = np.zeros(frames)
        self.top_k_ce = np.zeros(frames)
        self.top_k_inside = np.zeros(frames)
        self.unigram_top_k_ce = np.zeros(frames)
        self.psnr = np.zeros(frames)  # sums of video frames' PSNR, per target grid
        self.copy_psnr = np.zeros(frames)
        self.video_frames = np.zeros(frames, dtype=np.int64)

    def figures(self) -> dict[str, Any]:
        n = np.maximum(self.tokens, 1)
        per_frame = lambda x: [float(v) for v in x / n]  # noqa: E731
        overall = lambda x: float(x.sum() / max(self.tokens.sum(), 1))  # noqa: E731
        extra: dict[str, Any] = {}
        if self.paired:
            extra["controllability"] = {
                "pairing": "each sample under the states of the sample half the split away",
                "other_states_ce_nats": overall(self.other_ce),
                "other_states_token_accuracy": overall(self.other_correct),
                "other_states_token_accuracy_per_frame": per_frame(self.other_correct),
                # Both read so that larger means the model follows its actions more.
                "delta_ce_nats": overall(self.other_ce) - overall(self.ce),
                "delta_token_accuracy": overall(self.correct) - overall(self.other_correct),
            }
        reference = {}
        if self.synthetic:
            reference = {
                "states_shift_accuracy": overall(self.shift_correct),
                "states_shift_accuracy_per_frame": per_frame(self.shift_correct),
            }
        return {
            **extra,
            **{
                "teacher_forced": {
                    "ce_nats": overall(self.ce),
                    "ce_nats_per_frame": per_frame(self.ce),
                    "token_accuracy": overall(self.correct),
                    "token_accuracy_per_frame": per_frame(self.correct),
                    "factor_accuracy": [float(v) for v in self.factor_correct.sum(0) / max(self.tokens.sum(), 1)],
                },
                "baselines": {
                    "uniform_ce_nats": math.log(CODEBOOK_SIZE),
                    "unigram_ce_nats": overall(self.unigram_ce),
                    "unigram_ce_nats_per_frame": per_frame(self.unigram_ce),
                    "copy_last_accuracy": overall(self.copy_correct),
                    "copy_last_accuracy_per_frame": per_frame(self.copy_correct),
                    **reference,
                },
                "maskgit": {
                    "token_accuracy": overall(self.maskgit_correct),
                    "token_accuracy_per_frame": per_frame(self.maskgit_correct),
                },
                "top_k_ce": self._top_k_figures(per_frame, overall),
            },
        }

    def _top_k_figures(self, per_frame: Callable, overall: Callable) -> dict[str, Any]:
        # Copy-last's pmf takes its p from the accuracy of the same tokens, per frame
        # and overall alike, so the overall figure is not the mean of the frames'.
        copy = [copy_last_ce(a, CODEBOOK_SIZE) for a in [overall(self.copy_correct), *per_frame(self.copy_correct)]]
        return {
            "k": TOP_K,
            "ce_nats": overall(self.top_k_ce),
            "ce_nats_per_frame": per_frame(self.top_k_ce),
            "inside_fraction": overall(self.top_k_inside),
            "inside_fraction_per_frame": per_frame(self.top_k_inside),
            "definition": DEFINITION.format(k=TOP_K),
            "baselines": {
                # Every code ties with codes beyond the cut: each true code is a miss.
                "uniform_ce_nats": math.log(CODEBOOK_SIZE),
                "unigram_ce_nats": overall(self.unigram_top_k_ce),
                "unigram_ce_nats_per_frame": per_frame(self.unigram_top_k_ce),
                "copy_last_ce_nats": copy[0][1],
                "copy_last_ce_nats_per_frame": [top for _, top in copy[1:]],
                "copy_last_full_ce_nats": copy[0][0],
                "copy_last_definition": "the last context code with p = copy-last's accuracy on these "
                "tokens, the rest spread evenly (tied across the cut: a wrong copy is a miss)",
            },
            "published_first_place_ce_nats": PUBLISHED_FIRST_PLACE_NATS,
            "published_first_place": PUBLISHED_FIRST_PLACE,
        }


def _shift_correct(samples: WindowDataset, indices: list[int], codes: np.ndarray, target: int) -> np.ndarray:
    """The generator's predictor scored: codes [B, T, 32, 32] -> right tokens per target frame [Tf]."""
    right = np.zeros(target)
    for row, i in enumerate(indices):
        shifts = view_shifts(samples.raw_states(i))
        t = codes.shape[1]
        for f, frame in enumerate(range(t - target, t)):
            moved = shifted_view(codes[row, frame - 1], shifts[frame])
            right[f] += float((moved == codes[row, frame]).sum())
    return right


@contextmanager
def _logits_of_each_forward(model: torch.nn.Module) -> Iterator[list[list[torch.Tensor]]]:
    """The factor logits of every forward inside, in call order: teacher_forced's
    target frames, one forward each, scored again for the Top-K CE without a second
    forward, and so of exactly the predictions its CE scores."""
    calls: list[list[torch.Tensor]] = []
    handle = model.register_forward_hook(lambda _module, _inputs, logits: calls.append(logits))
    try:
        yield calls
    finally:
        handle.remove()


def _top_k_per_frame(frame_logits: list[list[torch.Tensor]], truth: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each target frame's logits [B, S, size] per factor, truth [B, Tf, S, F] -> Top-K CE and inside, [B, Tf, S]."""
    if len(frame_logits) != truth.shape[1]:  # teacher_forced no longer one forward per target frame
        raise RuntimeError(f"{len(frame_logits)} forwards for {truth.shape[1]} target frames: fix _top_k_per_frame")
    scored = [top_k_cross_entropy(logits, truth[:, f]) for f, logits in enumerate(frame_logits)]
    return torch.stack([ce for ce, _ in scored], 1), torch.stack([inside for _, inside in scored], 1)


def evaluate(
    trained: TrainedModel,
    samples: WindowDataset,
    unigram: list[torch.Tensor],
    options: EvalOptions,
    progress: Callable[[int, int], None] | None = None,
    pixels: WindowPixels | None = None,
) -> dict[str, Any]:
    """Every figure of the module's note; "pixels" (PSNR) is there when `pixels` decodes, else null."""
    count = len(samples) if options.limit is None else min(options.limit, len(samples))
    target = trained.config.data.future_latents
    paired = len(samples) >= 2
    synthetic = is_synthetic(samples.split.metadata)
    totals = _Totals(target, trained.factors.num_factors, paired=paired, synthetic=synthetic)
    unigram = [u.to(trained.device) for u in unigram]
    # The unigram is one pmf for every token: its cut is made once.
    unigram_cut: TopKCut = top_k_cut([u[None] for u in unigram])
    started = time.time()
    for first in range(0, count, options.batch_size):
        indices = list(range(first, min(first + options.batch_size, count)))
        ids, states = sample_batch(trained, samples, indices)
        truth = ids[:, -target:]  # [B, Tf, S, F]
        with _logits_of_each_forward(trained.model) as frame_logits:
            ce, _, right = teacher_forced(trained, ids, states)
        top_k_ce, top_k_inside = _top_k_per_frame(frame_logits, truth)
        del frame_logits  # the logits of a whole batch's frames: freed before MaskGIT runs
        generated = maskgit_sample(
            trained,
            ids,
            states,
            steps=options.maskgit_steps,
            temperature=options.temperature,
            seed=options.seed + first,
        )
        last_context = ids[:, -target - 1 : -target]  # [B, 1, S, F]
        unigram_ce = -sum(u[truth[..., f]] for f, u in enumerate(unigram))  # [B, Tf, S]
        per_frame = lambda x: x.float().sum(dim=(0, 2)).cpu().numpy()  # noqa: E731 - [B, Tf, S] -> [Tf]
        totals.tokens += truth.shape[0] * truth.shape[2]
        totals.ce += per_frame(ce)
        totals.correct += per_frame(right.all(-1))
        totals.factor_correct += right.float().sum(dim=(0, 2)).cpu().numpy()
        totals.unigram_ce += per_frame(unigram_ce)
        totals.copy_correct += per_frame((last_context == truth).all(-1))
        totals.maskgit_correct += per_frame((generated == truth).all(-1))
        totals.top_k_ce += per_frame(top_k_ce)
        totals.top_k_inside += per_frame(top_k_inside)
        totals.unigram_top_k_ce += per_frame(unigram_cut.cross_entropy(torch.as_tensor(-unigram_ce))[0])
        if paired:
            _, other_states = sample_batch(trained, samples, [paired_sample(i, len(samples)) for i in indices])
            other_ce, _, other_right = teacher_forced(trained, ids, other_states)
            totals.other_ce += per_frame(other_ce)
            totals.other_correct += per_frame(other_right.all(-1))
        if synthetic or pixels is not None:
            codes = np.stack([samples.get(i)[0] for i in indices])
        if synthetic:
            totals.shift_correct += _shift_correct(samples, indices, codes, target)
        if pixels is not None:
            shape = (*generated.shape[:2], 32, 32)
            generated_codes = trained.factors.factors_to_codes(generated).view(shape).cpu().numpy()
            scored = target_psnr(pixels, codes, generated_codes)
            totals.psnr += [p.sum() for p in scored.predicted]
            totals.copy_psnr += [p.sum() for p in scored.copy_last]
            totals.video_frames += [p.size for p in scored.predicted]
        if progress is not None:
            progress(indices[-1] + 1, count)
    return {
        "checkpoint": str(trained.checkpoint),
        "step": trained.step,
        "run": trained.folder.id if trained.folder is not None else None,
        "split": str(samples.split.root),
        "samples": count,
        "tokens_per_frame": 1024,
        "target_frames": target,
        "windows": trained.config.data.windows,
        "factor_groups": trained.config.model.factor_groups,
        "maskgit_steps": options.maskgit_steps,
        "temperature": options.temperature,
        "seed": options.seed,
        **totals.figures(),
        "pixels": (
            pixel_section(pixels, list(totals.psnr), list(totals.copy_psnr), list(totals.video_frames))
            if pixels is not None
            else None
        ),
        "device": describe_device(trained.device),
        "seconds": round(time.time() - started, 1),
    }


def deterministic(result: dict[str, Any]) -> dict[str, Any]:
    """The figures alone: what two runs of the same command agree on (not time, not device)."""
    return {k: v for k, v in result.items() if k not in ("seconds", "device", "evaluated_at")}
