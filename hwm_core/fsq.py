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
        self._lookup = None  # codes -> factors, built on first use
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
            return self._table()[codes.long()]  # one gather: the data path builds these for every sample
        return self._arithmetic(codes)

    def _table(self) -> torch.Tensor:
        """[64000, F] factor ids of every code, made once."""
        if self._lookup is None:
            import torch

            self._lookup = self._arithmetic(torch.arange(CODEBOOK_SIZE))
        return self._lookup

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
