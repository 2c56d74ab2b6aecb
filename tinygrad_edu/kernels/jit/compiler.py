"""How the fused kernels are compiled: numba's ``njit``, cached on disk, exact arithmetic.

``fastmath`` stays off: it would let the compiler reorder sums and assume no NaN, and the
kernels must give the NumPy path's results (the same sums in the same order, NaN where NumPy
gives NaN).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import numba

Function = TypeVar("Function", bound=Callable)


def fused(kernel: Function) -> Function:
    """Compile ``kernel`` lazily (at its first call per argument types) with numba.

    The machine code is cached on disk (``cache=True``): beside the package, or in the user's
    cache directory when the package directory is read-only (``NUMBA_CACHE_DIR`` overrides
    both). When numba finds no writable place at all it refuses to cache; the kernel is then
    compiled in every process, with a ``RuntimeWarning`` saying so.

    The kernels run on one thread each (``nogil``, so the worker threads of :mod:`..fast.threads`
    run them side by side). numba's own parallel loops (``parallel=True``, ``prange``) did not pay
    on the shared 2-core machine: every loop is a fork and a join, and a join waits for the
    slowest thread -- with the OpenMP layer about 12 ms per loop while other processes held the
    cores, 30x the loop itself (docs/performance.md, "What fusion buys").
    """
    options = {"nogil": True, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(kernel)
    except RuntimeError as error:  # "cannot cache function ...: no locator available"
        warnings.warn(
            f"numba cannot cache {kernel.__qualname__} on disk ({error}); it is compiled "
            "again in every process (set NUMBA_CACHE_DIR to a writable directory)",
            RuntimeWarning,
            stacklevel=2,
        )
        return numba.njit(cache=False, **options)(kernel)
