"""runtime.failures: the one classifier of failures, through a compiler's wrapping."""

from __future__ import annotations

import pytest
import torch

from hwm_core.errors import ConfigError
from hwm_core.runtime.failures import FailureKind, classify, does_not_fit, is_out_of_memory
from hwm_core.training.micro_batch import NothingFitsError


def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    outer.__cause__ = inner  # as inductor and dynamo wrap what they met
    return outer


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), FailureKind.OUT_OF_MEMORY),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"), FailureKind.OUT_OF_MEMORY),
        (wrapped(torch.OutOfMemoryError("x"), RuntimeError("backend compiler failed")), FailureKind.OUT_OF_MEMORY),
        (RuntimeError("CUDA error: invalid configuration argument"), FailureKind.DOES_NOT_FIT),
        (NothingFitsError("train.batch_size = auto: not even a micro-batch of 1 fits"), FailureKind.DOES_NOT_FIT),
        (
            wrapped(
                ValueError("bad op"),
                torch._dynamo.exc.BackendCompilerFailed.__new__(torch._dynamo.exc.BackendCompilerFailed),
            ),
            FailureKind.COMPILER,
        ),
        (ValueError("shape mismatch: a bug"), FailureKind.ERROR),
        (None, FailureKind.ERROR),
    ],
    ids=["oom", "cublas", "wrapped-oom", "launch", "auto-batch", "compiler", "bug", "none"],
)
def test_each_failure_has_one_kind(exc, kind):
    assert classify(exc) is kind
    assert does_not_fit(exc) == (kind in (FailureKind.OUT_OF_MEMORY, FailureKind.DOES_NOT_FIT))
    assert is_out_of_memory(exc) == (kind is FailureKind.OUT_OF_MEMORY)


def test_the_auto_batch_failure_is_still_the_users_one_line():
    assert issubclass(NothingFitsError, ConfigError)
