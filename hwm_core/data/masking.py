"""Training corruption: MaskGIT cosine masking of the target plus Copilot-4D noise.

Each sample's randomness comes from its own generator seeded by (seed, purpose,
step, sample index), so a sample is corrupted the same way however the batch is
split across micro-batches, ranks or a resume.
"""

from __future__ import annotations

import math

import numpy as np

from ..fsq import CODEBOOK_SIZE

TRAIN, VALIDATION = 0, 1


def sample_rng(seed: int, purpose: int, step: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, purpose, step, index]))


def cosine_mask_ratio(u: float) -> float:
    """MaskGIT's schedule γ(u) = cos(πu/2): most draws mask a large share."""
    return math.cos(math.pi / 2 * u)


def corrupt_sample(
    codes: np.ndarray,
    rng: np.random.Generator,
    *,
    future_latents: int,
    max_corrupt_rate: float,
    full_mask_rate: float = 0.0,
    per_frame: bool = False,
    visible_prefix: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """codes int64 [T, S] -> (corrupted codes [T, S], mask bool [T, S]).

    A cosine-drawn share of the last `future_latents` frames is masked (at least
    one token); of all other tokens a share r ~ U(0, max_corrupt_rate) becomes
    random codes, which teaches the model not to trust its context blindly. With
    `full_mask_rate`, that share of samples has its target masked whole: the case
    evaluate scores and MaskGIT's first round meets, where no target token can be
    copied from a neighbour and the context and states must carry the prediction.
    With `per_frame`, each target frame draws its own share (and its own full mask):
    a target frame then often sees the frame before it, as evaluate's teacher forcing
    and a rollout's later frames do, where one draw for all would hide it as often.
    With `visible_prefix` as well, the first k target frames (k uniform in 0..Tf-1) are
    not masked at all: the frame after them sees the frame before it whole, as it is
    when teacher forcing or MaskGIT predicts it (each draws a grid after the grid before).
    """
    t, s = codes.shape
    mask = np.zeros((t, s), dtype=bool)
    if per_frame:
        visible = int(rng.integers(future_latents)) if visible_prefix else 0
        for frame in range(t - future_latents + visible, t):
            mask[frame] = _masked_share(rng, s, full_mask_rate)
    else:
        mask[t - future_latents :] = _masked_share(rng, future_latents * s, full_mask_rate).reshape(future_latents, s)
    rate = rng.uniform(0.0, max_corrupt_rate) if max_corrupt_rate > 0 else 0.0
    noisy = (rng.random((t, s)) < rate) & ~mask
    corrupted = codes.copy()
    corrupted[noisy] = rng.integers(0, CODEBOOK_SIZE, size=int(noisy.sum()))
    return corrupted, mask


def _masked_share(rng: np.random.Generator, tokens: int, full_mask_rate: float) -> np.ndarray:
    """Which of `tokens` target tokens are masked: a cosine-drawn share, at least one, or
    with probability `full_mask_rate` all of them."""
    ratio = cosine_mask_ratio(rng.random())
    # Drawn only when asked for, so a run without it keeps the same random stream as before.
    if full_mask_rate > 0 and rng.random() < full_mask_rate:
        ratio = 1.0
    n_masked = min(tokens, max(1, math.ceil(ratio * tokens)))
    mask = np.zeros(tokens, dtype=bool)
    mask[rng.permutation(tokens)[:n_masked]] = True
    return mask
