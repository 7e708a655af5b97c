"""Finite Scalar Quantization codes of the Cosmos DV8x8x8 tokenizer, and their factors.

A code is Σ dᵢ·bᵢ with digits dᵢ < levelᵢ. The model predicts a code as F
independent factors, each factor one group of digits, so a 64,000-way softmax
becomes e.g. three 40-way ones.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where tensors are made: config and data commands start without torch
    import torch

FSQ_LEVELS: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
FSQ_BASES: tuple[int, ...] = tuple(int(np.prod(FSQ_LEVELS[:i])) for i in range(len(FSQ_LEVELS)))
CODEBOOK_SIZE: int = int(np.prod(FSQ_LEVELS))  # 64,000


def random_guess_loss() -> float:
    """Cross-entropy of a uniform guess over the codebook: the loss at step 0."""
    return math.log(CODEBOOK_SIZE)


def codes_to_digits(codes: np.ndarray) -> np.ndarray:
    """[...] codes -> [..., 6] digits."""
    codes = np.asarray(codes, dtype=np.int64)
    return np.stack([(codes // b) % n for b, n in zip(FSQ_BASES, FSQ_LEVELS)], axis=-1)


def digits_to_codes(digits: np.ndarray) -> np.ndarray:
    """[..., 6] digits -> [...] codes."""
    digits = np.asarray(digits, dtype=np.int64)
    return (digits * np.asarray(FSQ_BASES, dtype=np.int64)).sum(axis=-1)


class FactorSpec:
    """How codes split into factors for a given grouping of FSQ digits."""

    def __init__(self, groups: list[list[int]]):
        self.groups = [list(g) for g in groups]
        self.sizes = [int(np.prod([FSQ_LEVELS[i] for i in g])) for g in self.groups]
        self._lookup: np.ndarray | None = None  # codes -> factors, built on first use
        # Mixed-radix place value of each digit inside its factor.
        self._radix: list[list[int]] = []
        for g in self.groups:
            place, radix = 1, []
            for i in g:
                radix.append(place)
                place *= FSQ_LEVELS[i]
            self._radix.append(radix)

    @property
    def num_factors(self) -> int:
        return len(self.groups)

    def mask_ids(self) -> list[int]:
        """The extra embedding row of each factor that stands for 'masked'."""
        return list(self.sizes)

    def codes_to_factors(self, codes: torch.Tensor) -> torch.Tensor:
        """[...] int codes -> [..., F] int64 factor indices."""
        if codes.device.type == "cpu":
            import torch

            return torch.from_numpy(self.factor_array(codes.numpy()))
        return self._arithmetic(codes)

    def factor_array(self, codes: np.ndarray) -> np.ndarray:
        """codes_to_factors in numpy: one gather from a table made once. The data path
        builds batches with this in the prefetch thread, and numpy keeps that thread off
        torch's intra-op pool, whose sharing with the training thread made CPU steps
        differ in the last bits from one process to the next."""
        if self._lookup is None:
            all_codes = np.arange(CODEBOOK_SIZE, dtype=np.int64)
            table = np.zeros((CODEBOOK_SIZE, self.num_factors), dtype=np.int64)
            for f, (g, radix) in enumerate(zip(self.groups, self._radix)):
                for i, r in zip(g, radix):
                    table[:, f] += ((all_codes // FSQ_BASES[i]) % FSQ_LEVELS[i]) * r
            self._lookup = table
        return self._lookup[np.asarray(codes, dtype=np.int64)]

    def _arithmetic(self, codes: torch.Tensor) -> torch.Tensor:
        import torch

        codes = codes.long()
        out = []
        for g, radix in zip(self.groups, self._radix):
            idx = torch.zeros_like(codes)
            for i, r in zip(g, radix):
                idx += ((codes // FSQ_BASES[i]) % FSQ_LEVELS[i]) * r
            out.append(idx)
        return torch.stack(out, dim=-1)

    def factors_to_codes(self, factors: torch.Tensor) -> torch.Tensor:
        """[..., F] factor indices -> [...] codes."""
        import torch

        codes = torch.zeros(factors.shape[:-1], dtype=torch.long, device=factors.device)
        for f, (g, radix) in enumerate(zip(self.groups, self._radix)):
            idx = factors[..., f].long()
            for i, r in zip(g, radix):
                codes += ((idx // r) % FSQ_LEVELS[i]) * FSQ_BASES[i]
        return codes
