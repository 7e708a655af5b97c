"""Learning rate: linear warmup from 0, then half a cosine down to 0.

The same formula as the common `get_cosine_schedule_with_warmup`: the value at
step s is what the update numbered s (1-based) uses, so step 0 is 0, step
`warmup_steps` is the peak and step `max_steps` is 0 again.
"""

from __future__ import annotations

import math


def lr_factor(step: int, *, warmup_steps: int, max_steps: int, schedule: str = "cosine") -> float:
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def lr_at(step: int, *, peak_lr: float, warmup_steps: int, max_steps: int, schedule: str = "cosine") -> float:
    return peak_lr * lr_factor(step, warmup_steps=warmup_steps, max_steps=max_steps, schedule=schedule)


def planned_curve(
    *, peak_lr: float, warmup_steps: int, max_steps: int, schedule: str = "cosine", points: int = 512
) -> tuple[list[int], list[float]]:
    """The whole planned schedule at up to `points` steps, for drawing."""
    if max_steps + 1 <= points:
        steps = list(range(max_steps + 1))
    else:
        steps = sorted({round(i * max_steps / (points - 1)) for i in range(points)} | {warmup_steps})
    return steps, [
        lr_at(s, peak_lr=peak_lr, warmup_steps=warmup_steps, max_steps=max_steps, schedule=schedule) for s in steps
    ]
