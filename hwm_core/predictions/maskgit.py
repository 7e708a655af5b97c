"""MaskGIT generation of the target latent frames, as GENIE's sampler does it.

Target frames are generated one after another (a later frame sees the frames
generated before it, never the truth). Each frame starts fully masked; over
`steps` rounds the model predicts every masked token, a token's confidence is its
probability under the factorised pmf (the product of its factors'), and the most
confident are kept so that after round i a share γ((i+1)/steps) = cos(π(i+1)/2steps)
of the frame is still masked: none after the last round. Temperature 0 takes each
factor's argmax; otherwise each factor is sampled at that temperature.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..runtime.device import autocast


def masked_share(step: int, steps: int) -> float:
    """γ(u) = cos(πu/2) of MaskGIT: the share still masked after round `step` (1-based)."""
    return math.cos(math.pi / 2 * step / steps)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    factor_ids: torch.Tensor,
    states: torch.Tensor,
    target_frames: int,
    *,
    mask_ids: list[int],
    steps: int,
    temperature: float,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    first_round: Callable[[int, list[torch.Tensor]], None] | None = None,
) -> torch.Tensor:
    """factor_ids [B, T, S, F], the context true (the target frames' values are ignored).
    Returns [B, target_frames, S, F], the generated factor ids of the last target frames.
    `first_round(k, logits)`, when given, gets target frame k's (0-based) first-round
    logits, per factor [B, S, size]."""
    ids = factor_ids.clone()
    b, t, s, f = ids.shape
    mask = torch.tensor(mask_ids, device=ids.device)
    for frame in range(t - target_frames, t):
        ids[:, frame] = mask
        still_masked = torch.ones(b, s, dtype=torch.bool, device=ids.device)
        for round_ in range(1, steps + 1):
            with autocast(ids.device, precision):
                logits = model(ids[:, : frame + 1], states, 1)
            if round_ == 1 and first_round is not None:
                first_round(frame - (t - target_frames), logits)
            chosen, confidence = _choose(logits, temperature, generator)  # [B, S, F], [B, S]
            confidence = confidence.masked_fill(~still_masked, -math.inf)  # already decided: kept
            left = math.floor(masked_share(round_, steps) * s)  # masked after this round
            keep = still_masked.sum(dim=1) - left  # tokens decided now, per sample
            order = confidence.argsort(dim=1, descending=True)
            rank = torch.empty_like(order).scatter_(1, order, torch.arange(s, device=ids.device).expand(b, s))
            decide = still_masked & (rank < keep[:, None])
            ids[:, frame][decide] = chosen[decide]
            still_masked &= ~decide
    return ids[:, t - target_frames :]


def _choose(
    logits: list[torch.Tensor], temperature: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per factor an argmax (temperature 0) or a sample, and each token's confidence:
    the log-probability of its chosen factors, summed (the factorised pmf's)."""
    picks, log_likelihoods = [], []
    for factor_logits in logits:
        factor_logits = factor_logits.float()  # [B, S, size]
        log_probs = factor_logits.log_softmax(dim=-1)
        if temperature <= 0:
            pick = factor_logits.argmax(dim=-1)
        else:
            probs = (factor_logits / temperature).softmax(dim=-1)
            pick = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(probs.shape[:2])
        picks.append(pick)
        log_likelihoods.append(log_probs.gather(-1, pick[..., None]).squeeze(-1))
    return torch.stack(picks, dim=-1), torch.stack(log_likelihoods).sum(dim=0)
