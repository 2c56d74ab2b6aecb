"""Frozen arrays: NumPy arrays whose contents can never change.

A read-only array is not enough: its owner may make it writable again (``flags.writeable =
True``). An array over an immutable ``bytes`` object cannot be: NumPy refuses. Such arrays are
what :meth:`~tinygrad_edu.nn.Module.freeze` gives parameters, and why the layout cache
(:mod:`.layout_cache`) may trust a frozen kernel without comparing it with a copy.
"""

from __future__ import annotations

import numpy as np


def frozen_copy(a: np.ndarray) -> np.ndarray:
    """A read-only copy of ``a`` that no one can make writable again: C-ordered, over an
    immutable ``bytes`` object (``a`` itself, in whatever order, when it is frozen already)."""
    a = np.asarray(a)
    if is_frozen(a):
        return a
    return np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)


def is_frozen(a: np.ndarray) -> bool:
    """Whether ``a``'s contents can never change: read-only down to an immutable ``bytes``
    object (NumPy refuses to make such an array writable)."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return type(a) is bytes
