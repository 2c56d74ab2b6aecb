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


def fused(parallel: bool = False) -> Callable[[Function], Function]:
    """Compile a kernel lazily (at its first call per argument types) with numba.

    ``parallel=True`` runs its ``numba.prange`` loops on numba's threads. The machine code is
    cached on disk (``cache=True``): beside the package, or in the user's cache directory when
    the package directory is read-only (``NUMBA_CACHE_DIR`` overrides both). When numba finds no
    writable place at all it refuses to cache; the kernel is then compiled in every process,
    with a ``RuntimeWarning`` saying so.
    """

    def compile_lazily(kernel: Function) -> Function:
        options = {"parallel": parallel, "nogil": True, "error_model": "numpy"}
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

    return compile_lazily
