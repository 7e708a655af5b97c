"""The 1X compression track's score: the Top-K cross-entropy (K = 500), as the winning
report describes it (Revontuli, arXiv 2510.07092, first place at 6.6386 nats).

The model's pmf over the 64,000 codes is the product of its factor distributions.
Per token it is cut to the K likeliest codes and renormalised over them, and the
true code is scored under that: -log(p(code) / Σ_topK p).

A true code outside the K has probability 0 under the cut, and 1X's scorer, which
would say what it costs, is not public. Here it is given

    min(q_K, 1/64,000),   q_K: the renormalised probability of the K-th likeliest code,

so a miss never costs less than any code inside the K, nor less than a uniform
guess (ln 64,000 = 11.07 nats). Scored as the K-th code alone, a miss would let a
uniform guess score ln 500 = 6.21, better than the published first place.

Ties at the cut: a true code exactly as likely as the K-th counts as inside only
when the (K+1)-th is less likely; where codes of its probability lie on both sides
of the cut, which ones the cut keeps is arbitrary, and it counts as outside. A
uniform guess, every code tied, so scores ln 64,000. With float32 logits such ties
do not happen; bf16 logits can make a few.

Exact without the 64,000 joint probabilities: the top K of a product of independent
factors is found factor by factor. If a code is among the K likeliest, so is its
prefix (its first factors) among the prefixes' K likeliest: were K prefixes
likelier, each with the code's own remaining factors would be a likelier code.
So the K best prefixes are kept, joined with the next factor's values and cut to K
again (K+1 throughout, to see the tie rule's (K+1)-th). A pair whose ranks i, j
(from 1) have i·j > K has at least K pairs above it (every i' ≤ i, j' ≤ j), so only
the pairs with i·j ≤ K are formed: about K·ln(size) per token (2,100 for 500 × 40)
instead of 20,000. Only values are kept: the true code is found by its own
log-probability, summed in the same order, so it compares equal to its entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TOP_K = 500
_TOKENS_AT_ONCE = 2048
PUBLISHED_FIRST_PLACE_NATS = 6.6386
PUBLISHED_FIRST_PLACE = (
    "Revontuli, first place of the 1X World Model Challenge compression track (arXiv 2510.07092), "
    "on 1X's real test split under 1X's scorer"
)
DEFINITION = (
    "the joint pmf over the 64,000 codes (the product of the factor distributions) cut to each "
    "token's {k} likeliest codes and renormalised; a true code outside them is given "
    "min(q_{k}, 1/64,000), q_{k} the renormalised probability of the {k}th code, so a miss never "
    "costs less than a code inside nor less than a uniform guess (11.07 nats); a true code tied "
    "with codes on both sides of the cut counts as outside. 1X's scorer is not public: this rule "
    "is hwm-tui's"
)


@dataclass(frozen=True)
class TopKCut:
    """What scoring a token under its K likeliest codes needs, per token."""

    log_mass: torch.Tensor  # log Σ of the K likeliest codes' probabilities: the renormaliser
    log_kth: torch.Tensor  # log-probability of the K-th likeliest code
    log_next: torch.Tensor  # of the (K+1)-th; -inf where there are only K codes
    codes: int  # the size of the joint space: the uniform floor is 1/codes

    def cross_entropy(self, true_log_prob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The true codes' joint log-probabilities -> (Top-K CE in nats, whether each is inside)."""
        inside = (true_log_prob > self.log_kth) | ((true_log_prob == self.log_kth) & (self.log_next < self.log_kth))
        miss = torch.clamp(self.log_mass - self.log_kth, min=math.log(self.codes))
        return torch.where(inside, self.log_mass - true_log_prob, miss), inside


def top_k_cut(log_probs: list[torch.Tensor], k: int = TOP_K) -> TopKCut:
    """Per token the K likeliest codes of the product of the factors' pmfs.
    log_probs: per factor [..., size], normalised; the result's fields are [...]."""
    keep = k + 1
    kept = log_probs[0].topk(min(keep, log_probs[0].shape[-1]), dim=-1).values  # sorted, likeliest first
    for f, factor in enumerate(log_probs[1:], start=2):
        best = factor.topk(min(keep, factor.shape[-1]), dim=-1).values
        # The factor's value of rank j joins the prefixes of rank up to keep / j: slices
        # of the sorted prefixes, each plus one number (three times faster than a gather).
        joined = torch.cat([kept[..., : keep // j] + best[..., j - 1 : j] for j in range(1, best.shape[-1] + 1)], -1)
        # Only the next join needs them in order: the last cut is read as a sum and its ends.
        kept = joined.topk(min(keep, joined.shape[-1]), dim=-1, sorted=f < len(log_probs)).values
    codes = math.prod(factor.shape[-1] for factor in log_probs)
    if kept.shape[-1] <= k:  # no more codes than K: nothing is cut
        log_kth = kept.min(dim=-1).values
        return TopKCut(kept.logsumexp(dim=-1), log_kth, torch.full_like(log_kth, -math.inf), codes)
    ends = kept.topk(2, dim=-1, largest=False)  # the (K+1)-th, then the K-th
    top = kept.scatter(-1, ends.indices[..., :1], -math.inf)  # the K likeliest
    return TopKCut(top.logsumexp(dim=-1), ends.values[..., 1], ends.values[..., 0], codes)


def top_k_cross_entropy(
    logits: list[torch.Tensor], targets: torch.Tensor, k: int = TOP_K
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Top-K CE of every token: logits per factor [..., size], targets [..., F]
    factor ids -> (CE in nats [...], true code among the K [...])."""
    shape = targets.shape[:-1]
    flat_logits = [factor.reshape(-1, factor.shape[-1]) for factor in logits]
    flat_targets = targets.reshape(-1, targets.shape[-1])
    ce, inside = [], []
    # In pieces of a few thousand tokens: their ~2,000 candidates each stay in a CPU's
    # cache (a third faster here) and a GPU's large batches in bounded memory.
    for first in range(0, max(flat_targets.shape[0], 1), _TOKENS_AT_ONCE):  # one piece when empty
        part = slice(first, first + _TOKENS_AT_ONCE)
        log_probs = [F.log_softmax(factor[part].float(), dim=-1) for factor in flat_logits]
        part_ce, part_inside = top_k_cut(log_probs, k).cross_entropy(joint_log_prob(log_probs, flat_targets[part]))
        ce.append(part_ce)
        inside.append(part_inside)
    return torch.cat(ce).view(shape), torch.cat(inside).view(shape)


def joint_log_prob(log_probs: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """log p(code) under the product of the factors, summed in the order `top_k_cut`
    sums: per factor [..., size], targets [..., F] -> [...]."""
    total = log_probs[0].gather(-1, targets[..., :1]).squeeze(-1)
    for f, factor in enumerate(log_probs[1:], start=1):
        total = total + factor.gather(-1, targets[..., f : f + 1]).squeeze(-1)
    return total


def copy_last_ce(accuracy: float, codes: int, k: int = TOP_K) -> tuple[float, float]:
    """Copy-last as a pmf: the last context code with probability p = copy-last's own
    accuracy on these tokens (the best such p in hindsight), the rest spread evenly
    over the other codes. A copy names one code, so some spread is needed to score
    it at all. -> (full CE, Top-K CE), in nats.

    Under the cut the copied code is inside; every other code ties with codes on
    both sides of the cut, so a wrong copy is a miss."""
    if accuracy >= 1:
        return 0.0, 0.0
    if accuracy <= 1 / codes:  # the copied code no likelier than the rest: a uniform guess
        return math.log(codes), math.log(codes)
    other = (1 - accuracy) / (codes - 1)
    full = -accuracy * math.log(accuracy) - (1 - accuracy) * math.log(other)
    mass = accuracy + (k - 1) * other
    kth = other if k > 1 else accuracy
    miss = max(math.log(mass / kth), math.log(codes))
    return full, accuracy * math.log(mass / accuracy) + (1 - accuracy) * miss
