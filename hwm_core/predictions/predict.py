"""A trained model's predictions of the target latent frames: teacher-forced (each
frame from the true frames before it) and generated (MaskGIT, frame after frame)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import WindowDataset
from ..data.batches import val_sample_order
from ..model.masked_hwm import token_cross_entropy
from ..runs.folder import RunFolder
from ..runtime.device import autocast
from .controllability import paired_sample
from .inference import TrainedModel, load_trained, open_samples, sample_batch, split_path
from .maskgit import generate
from .samples import SampleRecord, save_samples


@torch.no_grad()
def teacher_forced(trained: TrainedModel, ids: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each target frame predicted from the true frames before it, itself fully masked.
    Returns (joint CE [B, Tf, S], argmax factor ids [B, Tf, S, F], per factor right [B, Tf, S, F])."""
    t, target = ids.shape[1], trained.config.data.future_latents
    mask = torch.tensor(trained.factors.mask_ids(), device=ids.device)
    ce, argmax, right = [], [], []
    for frame in range(t - target, t):
        inputs = ids[:, : frame + 1].clone()
        inputs[:, frame] = mask
        with autocast(trained.device, trained.precision):
            logits = trained.model(inputs, states, 1)
        truth = ids[:, frame]
        token_ce, _ = token_cross_entropy(logits, truth)
        picks = torch.stack([factor.float().argmax(dim=-1) for factor in logits], dim=-1)
        ce.append(token_ce)
        argmax.append(picks)
        right.append(picks == truth)
    return torch.stack(ce, 1), torch.stack(argmax, 1), torch.stack(right, 1)


def maskgit_sample(
    trained: TrainedModel, ids: torch.Tensor, states: torch.Tensor, *, steps: int, temperature: float, seed: int
) -> torch.Tensor:
    generator = torch.Generator(device=trained.device).manual_seed(seed)
    return generate(
        trained.model,
        ids,
        states,
        trained.config.data.future_latents,
        mask_ids=trained.factors.mask_ids(),
        steps=steps,
        temperature=temperature,
        generator=generator,
        precision=trained.precision,
    )


@torch.no_grad()
def predict_samples(
    trained: TrainedModel,
    samples: WindowDataset,
    indices: list[int],
    *,
    step: int,
    maskgit_steps: int,
    temperature: float,
    seed: int = 0,
) -> SampleRecord:
    """The samples view's codes for `indices`: context, truth, argmax and MaskGIT, and
    MaskGIT under the states of the sample evaluate pairs each with (same seed)."""
    was_training = trained.model.training
    trained.model.eval()
    other_indices: list[int] | None = None
    other_generated = None
    try:
        ids, states = sample_batch(trained, samples, indices)
        _, argmax, _ = teacher_forced(trained, ids, states)
        generated = maskgit_sample(trained, ids, states, steps=maskgit_steps, temperature=temperature, seed=seed)
        if len(samples) >= 2:
            other_indices = [paired_sample(i, len(samples)) for i in indices]
            _, other_states = sample_batch(trained, samples, other_indices)
            other_generated = maskgit_sample(
                trained, ids, other_states, steps=maskgit_steps, temperature=temperature, seed=seed
            )
    finally:
        trained.model.train(was_training)
    target = trained.config.data.future_latents

    def codes(factor_ids: torch.Tensor):
        return trained.factors.factors_to_codes(factor_ids).view(*factor_ids.shape[:2], 32, 32).cpu().numpy()

    return SampleRecord(
        step=step,
        indices=list(indices),
        context=codes(ids[:, :-target]),
        truth=codes(ids[:, -target:]),
        argmax=codes(argmax),
        maskgit=codes(generated),
        maskgit_steps=maskgit_steps,
        temperature=temperature,
        maskgit_other=codes(other_generated) if other_generated is not None else None,
        other_indices=other_indices,
    )


def predict_from_checkpoint(folder: RunFolder, *, count: int | None = None) -> Path:
    """The samples view's predictions made now from the run's newest good checkpoint,
    written to its samples/ folder as training would at an evaluation."""
    trained = load_trained(str(folder.path), folder.path.parent)
    val = open_samples(trained, split_path(trained, None, "val"))
    count = count or trained.config.eval.sample_count or 4
    indices = [int(i) for i in val_sample_order(len(val), trained.config.train.seed)[:count]]
    record = predict_samples(
        trained, val, indices, step=trained.step, maskgit_steps=trained.config.eval.maskgit_steps, temperature=0.0
    )
    return save_samples(folder, record)
