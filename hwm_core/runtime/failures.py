"""What kind of failure an exception is: the one place that decides it.

The trainer, the compile fallback, the auto micro-batch probe, bench and the CLI all ask
`classify`; none reads an exception's message, and none reads another's sentence. The
signs of out-of-memory under another name (cuBLAS's, cuDNN's allocation failures) and of
a launch past a kernel's grid limits are torch's and CUDA's own words; they are read here
only, through the whole cause chain, as a compiler wraps the error it met in its own.
"""

from __future__ import annotations

import sys
from enum import StrEnum


class FailureKind(StrEnum):
    OUT_OF_MEMORY = "out of memory"  # torch.OutOfMemoryError, or an allocation failure under another name
    DOES_NOT_FIT = "does not fit"  # a launch past a kernel's grid limits: this size cannot run on this device
    COMPILER = "compiler"  # torch.compile / dynamo / inductor failed (and not for memory)
    ERROR = "error"  # anything else: the run's own error, a bug


class DoesNotFitError(Exception):
    """Raised where a size was tried and nothing fits (the auto micro-batch found none).
    Mixed into a UserError there, so the user still sees its one line."""


# Out of memory in other words: cuBLAS and cuDNN report their allocation failures as statuses.
_OUT_OF_MEMORY_SIGNS = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")
_DOES_NOT_FIT_SIGNS = ("invalid configuration argument",)  # CUDA: a launch's grid beyond the kernel's limits
_CHAIN = 10  # causes followed at most


def _torch_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # not imported: the exception cannot be torch's (the CLI starts without it)
    return torch is not None and isinstance(exc, torch.OutOfMemoryError)


def _compiler_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("torch._dynamo", "torch._inductor")) or type(exc).__name__ in (
        "BackendCompilerFailed",
        "InductorError",
    )


def classify(exc: BaseException | None) -> FailureKind:
    """The kind of `exc`, read through its cause chain: memory first (a compiler error that
    ran out of memory is out of memory), then the device's limits, then the compiler."""
    chain: list[BaseException] = []
    seen = exc
    while seen is not None and len(chain) < _CHAIN:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for link in chain:
        if _torch_out_of_memory(link) or any(sign in str(link).lower() for sign in _OUT_OF_MEMORY_SIGNS):
            return FailureKind.OUT_OF_MEMORY
    for link in chain:
        if isinstance(link, DoesNotFitError) or any(sign in str(link).lower() for sign in _DOES_NOT_FIT_SIGNS):
            return FailureKind.DOES_NOT_FIT
    if any(_compiler_error(link) for link in chain):
        return FailureKind.COMPILER
    return FailureKind.ERROR


def is_out_of_memory(exc: BaseException | None) -> bool:
    return classify(exc) is FailureKind.OUT_OF_MEMORY


def does_not_fit(exc: BaseException | None) -> bool:
    """Out of memory, or past the device's limits: this size does not run here (not a bug)."""
    return classify(exc) in (FailureKind.OUT_OF_MEMORY, FailureKind.DOES_NOT_FIT)
