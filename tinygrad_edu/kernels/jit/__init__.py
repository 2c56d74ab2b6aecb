"""Fused kernels compiled with `numba <https://numba.pydata.org>`_: the optional ``jit`` extra.

NumPy runs every elementwise step of a kernel as its own pass over memory: pad, transform, add
the bias, clip at zero, compare, select. Each pass reads and writes whole arrays. The kernels
here do the arithmetic in one loop nest that touches each element once, the way a deep
learning compiler fuses the operations of a graph (docs/performance.md, "What fusion buys").
Cheaper passes change the best algorithm: with its transforms fused, Winograd F(4x4, 3x3)
(:mod:`.winograd4x4`, 4x fewer multiplications than direct convolution) beats the NumPy path's
F(2x2, 3x3), whose transforms as NumPy passes cost less than F(4x4, 3x3)'s.

Which path runs. With numba importable, the kernels in :mod:`.pooling`, :mod:`.winograd4x4` and
:mod:`.im2col` replace their NumPy counterparts for float32 and float64 arrays; everything else
(other dtypes, other formulations, the matrix products, which stay BLAS) runs the NumPy path,
which remains the reference the tests hold the fused kernels to. To force the NumPy path:

* set the environment variable ``TINYGRAD_EDU_JIT=0`` before the first kernel call (read once);
* or call :func:`set_enabled` / use :func:`numpy_path` or :func:`using` (context managers), e.g.
  in a test.

Nothing is compiled at import: numba itself is imported at the first kernel call that could use
it, and each kernel is compiled at its first call for a given dtype, then cached on disk
(``cache=True``; :func:`.compiler.fused` handles a package directory numba cannot write to).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from collections.abc import Iterator

import numpy as np

#: the environment variable that switches the fused kernels off when set to ``0``
ENV_VAR = "TINYGRAD_EDU_JIT"
#: dtypes the fused kernels are compiled for
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_enabled: bool | None = None  # decided at the first call of enabled()
_available: bool | None = None  # decided at the first call of available()


def available() -> bool:
    """Whether numba can be imported (the ``jit`` extra is installed). Imports it, once: a numba
    that is installed but does not import (built for another NumPy) is reported with a
    ``RuntimeWarning``, and the NumPy kernels run."""
    global _available
    if _available is None:
        _available = _import_numba()
    return _available


def _import_numba() -> bool:
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        import numba  # noqa: F401
    except ImportError as error:
        warnings.warn(
            f"numba is installed but cannot be imported ({error}): using the NumPy kernels",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def enabled() -> bool:
    """Whether kernels take the fused path: numba is installed and the path was not switched
    off (``TINYGRAD_EDU_JIT=0``, :func:`set_enabled`). Decided once, at the first call."""
    global _enabled
    if _enabled is None:
        _enabled = os.environ.get(ENV_VAR, "1").strip() != "0" and available()
    return _enabled


def set_enabled(flag: bool) -> None:
    """Switch the fused kernels on or off for the whole process. Raises ``RuntimeError`` when
    switching on without numba installed."""
    global _enabled
    if flag and not available():
        raise RuntimeError("the fused kernels need numba: pip install 'tinygrad_edu[jit]'")
    _enabled = bool(flag)


@contextlib.contextmanager
def using(flag: bool) -> Iterator[None]:
    """The fused kernels on (``True``) or off (``False``) inside the ``with`` block, then the
    previous choice again. Raises like :func:`set_enabled`."""
    before = enabled()
    set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(before)


def numpy_path() -> contextlib.AbstractContextManager[None]:
    """Run the NumPy kernels inside the ``with`` block, then restore the previous choice."""
    return using(False)


def applies(*arrays: np.ndarray) -> bool:
    """Whether the fused path takes these arrays: it is enabled and all are float32 or all
    float64."""
    return enabled() and len({a.dtype for a in arrays}) == 1 and arrays[0].dtype in DTYPES
