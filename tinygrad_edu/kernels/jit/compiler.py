"""How the fused kernels are compiled: numba's ``njit``, cached on disk, exact arithmetic.

``fastmath`` stays off: it would let the compiler reorder sums and assume no NaN, and the
kernels must give the NumPy path's results (the same sums in the same order, NaN where NumPy
gives NaN). numba itself is imported at the first call of a kernel, so every module of the
package imports without it.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import TypeVar

from ..fast import threads

Function = TypeVar("Function", bound=Callable)

_lock = threading.Lock()
_blas_rescanned = False


def fused(kernel: Function) -> Function:
    """``kernel`` compiled with numba at its first call (per argument types, as numba does).

    The machine code is cached on disk (``cache=True``): beside the package, or in the user's
    cache directory when the package directory is read-only (``NUMBA_CACHE_DIR`` overrides
    both). When numba finds no writable place at all it refuses to cache; the kernel is then
    compiled in every process, with a ``RuntimeWarning`` saying so.

    The kernels run on one thread each (``nogil``, so the worker threads of :mod:`..fast.threads`
    run them side by side). numba's own parallel loops (``parallel=True``, ``prange``) were
    measured against that on a quiet 2-core machine and made the VGG16 iteration 1.35-12.9x
    slower with every threading layer: between two loops of a chunk come the BLAS products,
    whose threads and numba's take the two cores from each other at every join
    (docs/performance.md, "What fusion buys", Threads).
    """
    compiled = None

    @functools.wraps(kernel)
    def run(*args: object) -> object:
        nonlocal compiled
        if compiled is None:
            with _lock:
                compiled = compiled or _compile(kernel)
        result = compiled(*args)
        _rescan_blas_once()
        return result

    return run  # type: ignore[return-value]


def _compile(kernel: Callable) -> Callable:
    import numba

    options = {"nogil": True, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(kernel)
    except RuntimeError as error:  # "cannot cache function ...: no locator available"
        warnings.warn(
            f"numba cannot cache {kernel.__qualname__} on disk ({error}); it is compiled "
            "again in every process (set NUMBA_CACHE_DIR to a writable directory)",
            RuntimeWarning,
            stacklevel=4,
        )
        return numba.njit(cache=False, **options)(kernel)


def _rescan_blas_once() -> None:
    """After the first kernel ran: numba's compiler loaded SciPy's OpenBLAS (when SciPy is
    installed), which the worker threads must hold to one thread like NumPy's."""
    global _blas_rescanned
    if not _blas_rescanned:
        _blas_rescanned = True
        threads.rescan_blas()
