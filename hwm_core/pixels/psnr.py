"""PSNR of decoded frames: the sampling track's figure, on 8-bit RGB.

A frame's PSNR is 10 log10(255^2 / MSE), the MSE over all H x W x 3 values of the two
uint8 frames (as 0..255 numbers). An exact match has no finite PSNR: a frame whose MSE
is below MSE_FLOOR counts as PSNR_CAP_DB (100 dB; a 256 x 256 frame one value off by 1
would score 101.1 dB, so every nearly exact frame reads as the cap). A figure over many
frames is the mean of their PSNRs: each frame weighs the same, as the video-prediction
literature averages, not the PSNR of the pooled MSE.
"""

from __future__ import annotations

import numpy as np

PEAK = 255.0
PSNR_CAP_DB = 100.0
MSE_FLOOR = PEAK**2 * 10 ** (-PSNR_CAP_DB / 10)  # the MSE at which PSNR reaches the cap
DEFINITION = (
    "per frame 10 log10(255^2 / MSE), the MSE over all H x W x 3 values of the decoded uint8 RGB "
    f"frames (round((x + 1) x 127.5) of the decoder's [-1, 1]), capped at {PSNR_CAP_DB:g} dB (an exact "
    "match); a figure over frames is the mean of their PSNRs"
)


def frame_psnr(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """uint8 frames [..., H, W, 3] -> PSNR in dB per frame [...], capped at PSNR_CAP_DB."""
    if predicted.shape != truth.shape:
        raise ValueError(f"frames of shape {predicted.shape} and {truth.shape}")
    diff = predicted.astype(np.float64) - truth.astype(np.float64)
    mse = (diff * diff).mean(axis=(-3, -2, -1))
    return 10.0 * np.log10(PEAK**2 / np.maximum(mse, MSE_FLOOR))
