"""The Top-500 cross-entropy, checked against every one of the 64,000 codes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hwm_core.fsq import CODEBOOK_SIZE, FactorSpec
from hwm_core.model.masked_hwm import token_cross_entropy
from hwm_core.predictions.top_k_ce import copy_last_ce, top_k_cross_entropy

CPU_GROUPS = [[0, 3], [1, 4], [2, 5]]  # the presets' three factors of 40
DIGITS = [[i] for i in range(6)]  # six factors, one FSQ digit each


def brute_force(logits: list[torch.Tensor], targets: torch.Tensor, groups: list[list[int]], k: int):
    """The definition, over all 64,000 codes of each token: the joint pmf, sorted."""
    spec = FactorSpec(groups)
    table = torch.from_numpy(spec.factor_array(torch.arange(CODEBOOK_SIZE).numpy()))  # code -> factor ids
    log_probs = [F.log_softmax(factor, dim=-1) for factor in logits]
    joint = log_probs[0][:, table[:, 0]]
    for f in range(1, len(log_probs)):
        joint = joint + log_probs[f][:, table[:, f]]  # [N, 64000], summed factor after factor
    true = joint.gather(1, spec.factors_to_codes(targets)[:, None]).squeeze(1)
    ranked = joint.sort(dim=-1, descending=True).values
    mass, kth = ranked[:, :k].logsumexp(-1), ranked[:, k - 1]
    after = ranked[:, k] if k < CODEBOOK_SIZE else torch.full_like(kth, -math.inf)
    inside = (true > kth) | ((true == kth) & (after < kth))
    miss = torch.clamp(mass - kth, min=math.log(CODEBOOK_SIZE))
    return torch.where(inside, mass - true, miss), inside


def random_case(groups: list[list[int]], tokens: int, seed: int, step: float | None = None):
    """Logits and true codes drawn from them: some inside the cut, some not. With a
    step the logits are rounded to it, so many codes tie."""
    generator = torch.Generator().manual_seed(seed)
    sizes = FactorSpec(groups).sizes
    logits = [torch.randn(tokens, size, generator=generator) * 1.5 for size in sizes]
    if step is not None:
        logits = [(factor / step).round() * step for factor in logits]
    targets = torch.stack(
        [torch.multinomial(factor.softmax(-1), 1, generator=generator)[:, 0] for factor in logits], -1
    )
    return logits, targets


@pytest.mark.parametrize("groups", [CPU_GROUPS, DIGITS], ids=["3x40", "6 digits"])
@pytest.mark.parametrize("k", [1, 7, 500])
@pytest.mark.parametrize("step", [None, 0.5], ids=["float", "tied"])
def test_top_k_ce_equals_the_brute_force_over_all_64000_codes(groups, k, step):
    logits, targets = random_case(groups, tokens=48, seed=k, step=step)
    ce, inside = top_k_cross_entropy(logits, targets, k)
    want_ce, want_inside = brute_force(logits, targets, groups, k)
    assert torch.equal(inside, want_inside)
    assert torch.allclose(ce, want_ce, atol=1e-5)
    if k == 500:  # both branches of the rule are exercised
        assert 0 < inside.float().mean() < 1


def test_with_every_code_kept_it_is_the_full_cross_entropy():
    logits, targets = random_case(CPU_GROUPS, tokens=64, seed=3)
    ce, inside = top_k_cross_entropy(logits, targets, CODEBOOK_SIZE)
    full, _ = token_cross_entropy([factor[None] for factor in logits], targets[None])
    assert inside.all() and torch.allclose(ce, full[0], atol=1e-4)


def test_with_the_true_code_among_a_peaked_models_500_it_is_the_full_cross_entropy():
    logits, targets = random_case(CPU_GROUPS, tokens=64, seed=4)
    peaked = [factor + 12 * F.one_hot(targets[:, f], factor.shape[-1]) for f, factor in enumerate(logits)]
    ce, inside = top_k_cross_entropy(peaked, targets)
    full, _ = token_cross_entropy([factor[None] for factor in peaked], targets[None])
    assert inside.all()
    assert torch.all(ce <= full[0] + 1e-6)  # renormalising over the 500 only raises the true code's share
    assert torch.allclose(ce, full[0], atol=1e-4)  # and the 500 hold all but a sliver of the mass


def test_a_uniform_guess_scores_ln_64000_and_the_cut_keeps_the_logits_shape():
    zeros = [torch.zeros(2, 3, 40) for _ in CPU_GROUPS]
    ce, inside = top_k_cross_entropy(zeros, torch.zeros(2, 3, 3, dtype=torch.long))
    assert ce.shape == (2, 3) and not inside.any()  # every code ties with codes beyond the cut
    assert torch.allclose(ce, torch.full((2, 3), math.log(CODEBOOK_SIZE)))


@pytest.mark.parametrize("right", [0, 1, 3, 4])
def test_copy_last_as_a_pmf_is_scored_as_the_cut_scores_it(right):
    """Copy-last's closed form against the cut of its own pmf over all 64,000 codes
    (one factor of 64,000): p on the copied code, the rest even."""
    accuracy = right / 4
    full, top = copy_last_ce(accuracy, CODEBOOK_SIZE)
    copied = 7
    targets = torch.tensor([copied] * right + [100, 2000, 40000, 63999][right:])[:, None]
    p = max(accuracy, 1 / CODEBOOK_SIZE)  # never copied right: the even pmf
    pmf = torch.full((4, CODEBOOK_SIZE), (1 - p) / (CODEBOOK_SIZE - 1), dtype=torch.float64)
    pmf[:, copied] = p
    ce, _ = top_k_cross_entropy([pmf.log()], targets)
    assert ce.double().mean().item() == pytest.approx(top, abs=1e-4)
    assert -pmf.log().gather(1, targets).mean().item() == pytest.approx(full, abs=1e-4)
