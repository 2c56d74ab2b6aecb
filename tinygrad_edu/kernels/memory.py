"""Keeping freed memory in the process: glibc's allocator told not to hand large blocks back.

NumPy asks the C library's ``malloc`` for every array. glibc serves a request above its *mmap
threshold* (128 KiB at first, rising to at most 32 MiB as large blocks are freed) with fresh
pages from the kernel, and gives them back at ``free``. The next array of that size then gets
fresh pages again, and the kernel must zero every one of them at its first touch: a page fault
per 4 KiB page (per 2 MiB where NumPy's transparent huge pages apply) and a pass of zeros over the
whole array, before the array is written at all. A gradient-ascent step at batch 16 allocates and
frees about 0.5 GB of activations and gradients this way, and every step pays for it again.

:func:`keep_freed_memory` tells glibc (``mallopt``) to serve every block from its heaps
(``M_MMAP_MAX = 0``) and to keep freed memory there for the next request (``M_TRIM_THRESHOLD``
of 2 GiB), the policy of a caching allocator, for the whole process. The command line sets it:
its process runs one workload. A library leaves it to the program that imports it, which can
call :func:`keep_freed_memory` itself (``docs/performance.md`` has the measurements, for our
kernels and for PyTorch's in the same process). The price: the process keeps its high-water mark
of memory until it exits.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: ``mallopt`` parameters (glibc's ``malloc.h``)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
#: free memory at the top of the heap kept for reuse before glibc returns it (the largest
#: ``int``)
KEEP_UP_TO = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep the memory of freed arrays for the next ones, process-wide.

    Returns whether the policy is in force: ``True`` on Linux with glibc, ``False`` elsewhere
    (another C library or operating system: nothing is changed). Calling it again changes
    nothing more.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library the process already runs on
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO))
