"""The step's forward and loss, compiled with torch.compile when the preset asks.

`train.compile` = off | on | reduce-overhead | max-autotune: on is torch.compile's
default mode; reduce-overhead also captures the step in CUDA graphs (fewer kernel
launches, where a step is launch-bound); max-autotune searches kernel configurations
(longer to compile). The function is compiled, never the module, so checkpoints
hold the model's own parameter names (no `_orig_mod.` prefix) and compiled and
eager runs load each other's checkpoints. Every micro-batch of a run has the same
shapes, so it compiles once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

_TORCH_MODES = {"on": "default", "reduce-overhead": "reduce-overhead", "max-autotune": "max-autotune"}


class CompiledStep:
    """`fn`, compiled on its first call when `setting` is not off; eager after a failure.

    The first call (forward, then the caller's backward) is when compiling happens:
    the caller marks it with `first_call()` ... `compiled()` or `failed(exc)`."""

    def __init__(self, fn: Callable, setting: str):
        self.eager = fn
        self.setting = setting
        self.seconds: float | None = None  # how long the first, compiling step took
        self.error: str | None = None
        self._compiled = torch.compile(fn, mode=_TORCH_MODES[setting], dynamic=False) if setting != "off" else None
        self._cuda_graphs = setting == "reduce-overhead"
        self._started: float | None = None

    @property
    def pending(self) -> bool:
        """Compiling is still to happen (the first call has not succeeded yet)."""
        return self._compiled is not None and self.seconds is None

    @property
    def active(self) -> bool:
        return self._compiled is not None

    def __call__(self, *args, **kwargs):
        if self._compiled is None:
            return self.eager(*args, **kwargs)
        if self._cuda_graphs:
            # A new iteration for CUDA graph trees: the previous call's outputs were used.
            torch.compiler.cudagraph_mark_step_begin()
        return self._compiled(*args, **kwargs)

    def first_call(self) -> None:
        self._started = time.perf_counter()

    def compiled(self) -> None:
        self.seconds = time.perf_counter() - (self._started or time.perf_counter())

    def failed(self, exc: BaseException) -> None:
        """Fall back to eager for the rest of the run."""
        first = str(exc).strip().splitlines()
        self.error = f"{type(exc).__name__}: {first[0] if first else ''}"[:300]
        self._compiled = None
