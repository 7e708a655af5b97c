"""One malloc arena for every thread of the process, so CPU training repeats bitwise.

glibc gives each new thread its own malloc arena; which one a thread (the trainer,
the prefetcher, OpenMP's workers) gets, and so where its tensors land in memory,
depends on timing. MKL's matrix products take alignment-dependent code paths that
round differently, so the same run could differ in the last bits from one process
to the next, and a resumed run would not repeat the uninterrupted one exactly.
With a single arena the placement follows the program alone (measured: 16 of 16
processes identical, where 2-3 in 14 differed; no change in CPU step time).

It also keeps freed memory for reuse: glibc hands blocks above its mmap threshold
(128 KiB, rising as it goes) straight back to the kernel and trims the heap's top,
so a CPU step's activations and gradients (the previous-frame tiles' 20 MB buffers,
the MLP's 12 MB) landed on fresh pages every step, each page a fault on first
touch, expensive in a VM: 5,000-11,000 faults a cpu-preset step. With blocks up to
32 MiB (glibc's ceiling for the threshold) from the heap and the heap never trimmed,
a step after the first faults on none, and the step took 12-16 % less time
(median 542 -> 454 ms, n_heads = 1). A process's resident memory then stays at its
peak, which a training process reaches anyway at every step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: larger is refused
_NEVER_TRIM = 2**31 - 1


def use_one_malloc_arena() -> bool:
    """Ask glibc for one arena, and to keep freed memory for reuse (see above);
    returns whether the arena was set. Must run before the
    process starts threads that allocate, so it is called on importing hwm_core.
    Elsewhere (macOS, musl) nothing happens."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
    return bool(mallopt(_M_ARENA_MAX, 1))
