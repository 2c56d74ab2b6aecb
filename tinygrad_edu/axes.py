"""Axis arguments: normalising ``axis=-1``, ``axis=(0, 2)`` or ``None`` the one way NumPy does."""

from __future__ import annotations

import numpy as np

Axis = int | tuple[int, ...] | None


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (int, tuple or None for all) as a tuple of non-negative axes, validated."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    bound = max(ndim, 1)  # a 0-d array accepts axis 0 and -1, like NumPy's reductions
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -bound <= a < bound:
            raise ValueError(f"axis {a!r} is out of range for a {ndim}-d tensor")
    if ndim == 0:
        return ()  # reducing a 0-d array over "its" axis leaves it as it is
    normalized = tuple(int(a) % bound for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"axis {axis!r} repeats an axis")
    return normalized


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a reduction over ``axes`` with ``keepdims=True``."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))
