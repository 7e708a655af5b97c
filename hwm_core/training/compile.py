"""The step's forward and loss, compiled with torch.compile when the preset asks.

`train.compile` = off | on | reduce-overhead | max-autotune: on is torch.compile's
default mode; reduce-overhead also captures the step in CUDA graphs (fewer kernel
launches, where a step is launch-bound); max-autotune searches kernel configurations
(longer to compile) and captures CUDA graphs as well (torch._inductor's
`list_mode_options` turns `triton.cudagraphs` on for both). The function is compiled,
never the module, so checkpoints hold the model's own parameter names (no
`_orig_mod.` prefix) and compiled and eager runs load each other's checkpoints. Every
micro-batch of a run has the same shapes, so it compiles once.

CUDA graphs and gradient accumulation: a compiled backward's outputs (the gradients)
live in the CUDA graph pool and are overwritten by the next replay. If `p.grad` is
None when the first backward runs, autograd's AccumulateGrad *steals* that output as
`p.grad`; the next micro-batch's replay overwrites it and the next accumulation fails
("accessing gradient tensor output of CUDAGraphs that has been overwritten",
torch/_inductor/cudagraph_trees.py, whose own message gives the cure). So under CUDA
graphs every `.grad` is allocated once, zeroed, before the first backward, and zeroed
in place between steps (`zero_grad(set_to_none=False)`): AccumulateGrad then adds
each graph output into that persistent buffer (`variable_grad += new_grad`) and
never keeps the output itself. Only a GPU run shows the failure this prevents.

Under DDP the compiled function takes the DDP wrapper; how dynamo compiles through it
(and keeps DDP's bucketed all-reduce overlap) is said at runtime/distributed.wrap_ddp.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable

import torch

from ..config.schema import COMPILE_CHOICES
from ..runtime.failures import is_out_of_memory

# train.compile's choices (config/schema.py) as torch.compile's modes: on is "default", the
# others are torch's own names, so a mode added to the schema alone compiles as itself
_TORCH_MODES = {choice: "default" if choice == "on" else choice for choice in COMPILE_CHOICES if choice != "off"}
CUDA_GRAPH_SETTINGS = frozenset({"reduce-overhead", "max-autotune"})
# Steps in which a failure still falls back to eager: dynamo and inductor compile in the
# first call, CUDA graph trees warm up in the first and record in the second call of a
# shape, which with one micro-batch a step is step 2.
FALLBACK_STEPS = 2


def release_compiled_memory() -> None:
    """Forget every compiled graph and give back the CUDA graph pools and cached blocks.

    Called when a compiled run falls back to eager (the pool of the graphs it no longer
    replays would otherwise stay reserved for the rest of the run), when a compiled run
    ends (the next run of a bench or a sweep in this process starts with its whole
    memory and dynamo's recompile limit untouched), and after the auto micro-batch probe.
    torch._dynamo.reset() also resets the CUDA graph trees when CUDA is available."""
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class CompiledStep:
    """`fn`, compiled on its first call when `setting` is not off; eager after a failure.

    The first FALLBACK_STEPS optimizer steps are the window in which a failure (a
    compiler error, a CUDA graph capture error, an out-of-memory while compiling or
    capturing) turns the run eager instead of failing it: the caller wraps each of
    them in `open_step()` ... `step_ok()` or `failed(exc)`."""

    def __init__(self, fn: Callable, setting: str):
        self.eager = fn
        self.setting = setting
        self.seconds: float | None = None  # how long the first, compiling step took
        self.error: str | None = None
        self.out_of_memory = False  # the failure was an out-of-memory
        self._compiled = torch.compile(fn, mode=_TORCH_MODES[setting], dynamic=False) if setting != "off" else None
        self._cuda_graphs = setting in CUDA_GRAPH_SETTINGS
        self._steps_ok = 0
        self._started: float | None = None

    @property
    def pending(self) -> bool:
        """Still in the fallback window: compiling or capturing may yet fail."""
        return self._compiled is not None and self._steps_ok < FALLBACK_STEPS

    @property
    def compiling(self) -> bool:
        """The next step is the first, compiling one."""
        return self._compiled is not None and self._steps_ok == 0

    @property
    def active(self) -> bool:
        return self._compiled is not None

    @property
    def keeps_grad_buffers(self) -> bool:
        """Gradients must live in persistent buffers (CUDA graphs; see the module's doc)."""
        return self._compiled is not None and self._cuda_graphs

    def __call__(self, *args, **kwargs):
        if self._compiled is None:
            return self.eager(*args, **kwargs)
        if self._cuda_graphs:
            # A new iteration for CUDA graph trees: the previous call's outputs were used
            # (its loss summed, its gradients added into the persistent .grad buffers).
            torch.compiler.cudagraph_mark_step_begin()
        return self._compiled(*args, **kwargs)

    def open_step(self) -> None:
        if self._steps_ok == 0:
            self._started = time.perf_counter()

    def step_ok(self) -> None:
        if self._steps_ok == 0:
            self.seconds = time.perf_counter() - (self._started or time.perf_counter())
        self._steps_ok += 1

    def failed(self, exc: BaseException) -> None:
        """Fall back to eager for the rest of the run, with the compiled graphs' memory given back."""
        first = str(exc).strip().splitlines()
        self.error = f"{type(exc).__name__}: {first[0] if first else ''}"[:300]
        self.out_of_memory = is_out_of_memory(exc)
        self._compiled = None
        release_compiled_memory()


def allocate_grad_buffers(parameters: Iterable[torch.nn.Parameter]) -> None:
    """A zeroed `.grad` for every parameter that has none, allocated outside any CUDA
    graph, so that backward accumulates into it (see the module's doc)."""
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
