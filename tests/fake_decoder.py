"""A stand-in for the Cosmos DV8x8x8 decoder.jit: a scripted module with its interface.

Integer codes [B, 3, h, w] in, [B, 3, 17, 8h, 8w] in [-1, 1] out, every frame of a latent
grid (frame 0 for grid 0, 1-8 for grid 1, 9-16 for grid 2) painted with that grid's codes,
each code an 8 x 8 block of a colour known in advance: 17 x (code mod 16, code / 16 mod 16,
code / 256 mod 16) in 8-bit RGB (so every value decodes exactly, no rounding).

Run as a script to write one: python -m tests.fake_decoder PATH.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

SCALE = 8  # pixels a token, a side


class FakeDecoder(torch.nn.Module):
    def __init__(self, frames: int = 17):
        super().__init__()
        grid_of_frame = [0] + [1] * 8 + [2] * 8
        self.register_buffer("grid_of_frame", torch.tensor(grid_of_frame[:frames], dtype=torch.long))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        c = codes.long()
        rgb = torch.stack([c % 16, (c // 16) % 16, (c // 256) % 16], dim=1).float() * (2.0 / 15.0) - 1.0
        frames = rgb.index_select(2, self.grid_of_frame)  # [B, 3, 17, h, w]
        return frames.repeat_interleave(8, dim=3).repeat_interleave(8, dim=4)  # SCALE


class FailingDecoder(torch.nn.Module):
    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.dtype == torch.int32:
            raise RuntimeError("expected float latents")
        return codes


def write_fake_decoder(path: Path, kind: str = "good") -> Path:
    """kind: good; frames16 (one frame short: [B, 3, 16, H, W]); fails (raises on int codes)."""
    module = {"good": FakeDecoder(), "frames16": FakeDecoder(frames=16), "fails": FailingDecoder()}[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def code_colour(codes: np.ndarray) -> np.ndarray:
    """codes [...] -> the fake's uint8 RGB [..., 3]."""
    codes = np.asarray(codes, dtype=np.int64)
    return (np.stack([codes % 16, (codes // 16) % 16, (codes // 256) % 16], axis=-1) * 17).astype(np.uint8)


def expected_frames(window: np.ndarray) -> np.ndarray:
    """What the fake decodes a window [3, 32, 32] to: uint8 [17, 256, 256, 3]."""
    colours = code_colour(window).repeat(SCALE, axis=1).repeat(SCALE, axis=2)  # [3, 256, 256, 3]
    return colours[[0] + [1] * 8 + [2] * 8]


if __name__ == "__main__":
    print(write_fake_decoder(Path(sys.argv[1]), *(sys.argv[2:3] or ["good"])))
