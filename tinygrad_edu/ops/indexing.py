r"""Picking, scattering and masking along axes, as compositions of indexing and ``where``.

Each function builds a NumPy index (or a constant mask) and applies :class:`~.shape.GetItem`,
:class:`~.shape.ScatterAdd`, :class:`~.elementwise.Where` or a product with the mask, so every
derivative comes from those ops: picking <-> scatter-adding, masking <-> masking.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import ShapeError
from ..tensor import Tensor
from .common import constant, normalize_axes, operands
from .elementwise import where
from .shape import ScatterAdd, moveaxis


def _integer_array(index: Any, what: str) -> np.ndarray:
    """Indices as an integer array; whole-valued floats (how integer lists arrive) are accepted."""
    array = index.data if isinstance(index, Tensor) else np.asarray(index)
    if array.dtype.kind in "iu":
        return array
    if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
        return array.astype(np.int64)
    raise TypeError(f"{what}: indices must be integers, got dtype {array.dtype}")


def _along(axis: int, index: np.ndarray, length: int, what: str) -> tuple[np.ndarray, ...]:
    """The NumPy index that reads position ``index[p]`` along ``axis`` for every position ``p``."""
    if index.size and (index.min() < -length or index.max() >= length):
        raise IndexError(
            f"{what}: index values from {index.min()} to {index.max()} are out of range for "
            f"axis {axis} of length {length}"
        )
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index
    return tuple(grid)


def _check_index_shape(what: str, x: Tensor, axis: int, index: np.ndarray) -> None:
    if index.ndim != x.ndim or any(
        i != axis and n > m for i, (n, m) in enumerate(zip(index.shape, x.shape))
    ):
        raise ShapeError(
            f"{what}: index of shape {index.shape} does not fit input of shape {x.shape} along "
            f"axis {axis} (same number of axes; no larger than the input except along axis)"
        )


def gather(x: Tensor, axis: int, index: Any) -> Tensor:
    """``out[p] = x[p with its axis-th coordinate replaced by index[p]]`` (``torch.gather``).

    ``index`` has as many axes as ``x``; the result has ``index``'s shape.
    """
    index = _integer_array(index, "gather")
    (axis,) = normalize_axes(axis, x.ndim) or (0,)
    _check_index_shape("gather", x, axis, index)
    return x[_along(axis, index, x.shape[axis] if x.ndim else 1, "gather")]


def scatter_add(x: Tensor, axis: int, index: Any, src: Tensor) -> Tensor:
    """``x`` plus ``src[p]`` added at ``x[p with axis-th coordinate index[p]]``, repeats
    accumulating (``torch.Tensor.scatter_add``). Only the part of ``src`` of ``index``'s shape
    is used."""
    index = _integer_array(index, "scatter_add")
    (axis,) = normalize_axes(axis, x.ndim) or (0,)
    _check_index_shape("scatter_add", x, axis, index)
    src = operands(x, src, "scatter_add")[1]
    if src.ndim != index.ndim or any(n > m for n, m in zip(index.shape, src.shape)):
        raise ShapeError(f"scatter_add: src {src.shape} is smaller than the index {index.shape}")
    used = src[tuple(slice(n) for n in index.shape)] if src.shape != index.shape else src
    target = _along(axis, index, x.shape[axis] if x.ndim else 1, "scatter_add")
    return x + ScatterAdd.apply(used, shape=x.shape, index=target)


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """``value`` where ``mask`` holds, ``x`` elsewhere; no gradient flows to filled places."""
    mask = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {mask.dtype}")
    out = where(mask, value, x)
    if out.shape != x.shape:
        raise ShapeError(f"masked_fill: mask {mask.shape} does not broadcast to {x.shape}")
    return out


def one_hot(indices: Any, num_classes: int = -1) -> Tensor:
    """``out[..., c] = 1`` where ``c == indices[...]``: an int64 tensor with one more axis."""
    index = _integer_array(indices, "one_hot")
    if num_classes < 0:
        num_classes = int(index.max()) + 1 if index.size else 0
    if index.size and (index.min() < 0 or index.max() >= num_classes):
        raise ValueError(f"one_hot: class values must lie in [0, {num_classes})")
    return Tensor._wrap((index[..., None] == np.arange(num_classes)).astype(np.int64))


def _triangle(x: Tensor, diagonal: int, lower: bool) -> Tensor:
    if x.ndim < 2:
        raise ShapeError(f"{'tril' if lower else 'triu'}: needs at least 2 axes, got {x.shape}")
    rows, cols = x.shape[-2:]
    keep = np.tri(rows, cols, diagonal, dtype=bool)
    return x * constant(keep if lower else ~np.tri(rows, cols, diagonal - 1, dtype=bool))


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle (``j - i <= diagonal``) of the last two axes; zeros above."""
    return _triangle(x, diagonal, lower=True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle (``j - i >= diagonal``) of the last two axes; zeros below."""
    return _triangle(x, diagonal, lower=False)


def diagonal(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Elements ``x[i, i + offset]`` of the (``axis1``, ``axis2``) planes, as a new last axis
    (``torch.diagonal``)."""
    a1, a2 = normalize_axes((axis1, axis2), x.ndim)
    planes = moveaxis(x, (a1, a2), (-2, -1))
    rows, cols = planes.shape[-2:]
    count = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    i = np.arange(count) + max(-offset, 0)
    return planes[..., i, i + offset]
