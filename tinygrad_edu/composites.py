r"""Tensor methods built from other Tensor methods: no derivative rule of their own.

Each method here is a few calls of the Tensor's own operations -- reshapes, broadcasts,
transposes, indexing, ``where``, sums -- so its gradient (and its tangent) comes from the rules
of those ops in :mod:`tinygrad_edu.ops`: picking <-> scatter-adding, copying <-> summing,
masking <-> masking. :class:`~tinygrad_edu.tensor.Tensor` inherits them from
:class:`Composites`; this module imports neither the Tensor class nor the ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from . import dtypes
from .axes import Axis, ShapeError, normalize_axes, shape_argument, torch_aliases


class Composites:
    """The Tensor methods that are compositions of other Tensor methods (see the module)."""

    __slots__ = ()

    # ------------------------------------------------------------------------ statistics
    @torch_aliases
    def mean(self, axis: Axis = None, keepdims: bool = False) -> Self:
        """Arithmetic mean: ``sum / n`` with ``n`` the number of elements reduced."""
        return self.sum(axis=axis, keepdims=keepdims) / _count(self, axis)

    @torch_aliases
    def var(self, axis: Axis = None, correction: float = 1, keepdims: bool = False) -> Self:
        r"""Variance :math:`\frac{1}{n - c} \sum (x - \bar x)^2` over ``axis`` (``c`` =
        ``correction``, 1 by default like PyTorch: the unbiased estimate; 0 for the population
        variance)."""
        centred = self - self.mean(axis=axis, keepdims=True)
        count = max(_count(self, axis) - correction, 0)
        return (centred * centred).sum(axis=axis, keepdims=keepdims) / count

    @torch_aliases
    def std(self, axis: Axis = None, correction: float = 1, keepdims: bool = False) -> Self:
        """Standard deviation, the square root of :meth:`var`."""
        return self.var(axis=axis, correction=correction, keepdims=keepdims).sqrt()

    def _clip_by_tensors(self, lo: Any, hi: Any) -> Self:
        """``clip`` with tensor bounds, differentiable in the bounds too, with the gradient
        routed exactly as ``torch.clamp(x, min, max)`` routes it: to ``x`` where
        ``lo <= x <= hi``, to ``lo`` where ``x < lo < hi``, to ``hi`` where ``x > hi`` or
        ``hi < lo`` (then every value is ``hi``), and to nobody where ``x < lo == hi``."""
        bounds = [b for b in (lo, hi) if b is not None]
        dtype = dtypes.result_type(self, *bounds)
        x = self.data
        low, high = (None if b is None else np.asarray(b) for b in (lo, hi))
        with np.errstate(invalid="ignore"):
            inside = np.ones(
                np.broadcast_shapes(x.shape, *(b.shape for b in (low, high) if b is not None)), bool
            )
            to_lo = to_hi = None
            if low is not None:
                inside &= x >= low
                to_lo = x < low if high is None else (x < low) & (low < high)
            if high is not None:
                inside &= x <= high
                to_hi = x > high if low is None else (x > high) | (high < low)
            values = np.clip(x, low, high)  # min(max(x, lo), hi): hi where lo > hi
        y = self._wrap(np.broadcast_to(values, inside.shape).astype(dtype))  # no gradient
        if to_hi is not None:
            y = y.where(~to_hi, hi)
        if to_lo is not None:
            y = y.where(~to_lo, lo)
        return self.where(inside, y)

    def clamp(self, min: float | None = None, max: float | None = None) -> Self:
        """PyTorch's name for :meth:`clip`."""
        return self.clip(min, max)

    def tensordot(self, other: Self, dims: int | Sequence[Sequence[int]] = 2) -> Self:
        """Contract the last ``dims`` axes of ``self`` with the first ``dims`` of ``other``, or
        the axes listed in ``dims = (axes_of_self, axes_of_other)`` (``torch.tensordot``), as an
        :meth:`einsum`."""
        if isinstance(dims, (int, np.integer)):
            axes_a, axes_b = list(range(self.ndim - dims, self.ndim)), list(range(dims))
        else:
            axes_a, axes_b = ([d] if isinstance(d, int) else list(d) for d in dims)
        if len(axes_a) != len(axes_b):
            raise ValueError(f"tensordot: dims {dims} pair unequal numbers of axes")
        letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        term_a = [next(letters) for _ in range(self.ndim)]
        term_b = [next(letters) for _ in range(other.ndim)]
        for i, j in zip(axes_a, axes_b):
            term_b[j % other.ndim] = term_a[i % self.ndim]
        summed = {term_a[i % self.ndim] for i in axes_a}
        out = [c for c in term_a if c not in summed] + [c for c in term_b if c not in summed]
        return self.einsum(f"{''.join(term_a)},{''.join(term_b)}->{''.join(out)}", self, other)

    # ------------------------------------------------------------------------ reshapes
    @torch_aliases
    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Self:
        """Merge the axes from ``start_axis`` to ``end_axis`` (both included) into one
        (``start_dim``/``end_dim`` are accepted too)."""
        if self.ndim == 0:
            return self.reshape(1)
        (start,), (end,) = (
            normalize_axes(start_axis, self.ndim),
            normalize_axes(end_axis, self.ndim),
        )
        if start > end:
            raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
        return self.reshape((*self.shape[:start], -1, *self.shape[end + 1 :]))

    def unflatten(self, axis: int, sizes: Sequence[int]) -> Self:
        """Split axis ``axis`` into ``sizes`` (one may be -1): the inverse of :meth:`flatten`."""
        (axis,) = normalize_axes(axis, self.ndim)
        return self.reshape((*self.shape[:axis], *sizes, *self.shape[axis + 1 :]))

    @torch_aliases
    def squeeze(self, axis: Axis = None) -> Self:
        """Drop axes of size 1 (all, or those in ``axis`` that have size 1, like PyTorch)."""
        axes = normalize_axes(axis, self.ndim)
        return self.reshape(
            tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        )

    @torch_aliases
    def unsqueeze(self, axis: int | None = None) -> Self:
        """Insert an axis of size 1 at ``axis`` of the result (``expand_dims`` is the same)."""
        (axis,) = normalize_axes(_required_axis("unsqueeze", axis), self.ndim + 1)
        return self.reshape((*self.shape[:axis], 1, *self.shape[axis:]))

    expand_dims = unsqueeze

    def expand(self, *sizes: int | Sequence[int]) -> Self:
        """``broadcast_to`` where a size of -1 keeps the existing size (``torch.Tensor.expand``)."""
        sizes = shape_argument(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes for a {self.ndim}-d tensor {self.shape}")
        shape = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes)
        )
        return self.broadcast_to(shape)

    def swapaxes(self, axis1: int, axis2: int) -> Self:
        """Exchange two axes."""
        perm = list(range(self.ndim))
        (a,), (b,) = normalize_axes(axis1, self.ndim), normalize_axes(axis2, self.ndim)
        perm[a], perm[b] = perm[b], perm[a]
        return self.transpose(*perm)

    def moveaxis(self, source: Axis, destination: Axis) -> Self:
        """Move axes to new positions, the others keeping their order (``movedim`` too)."""
        src, dst = normalize_axes(source, self.ndim), normalize_axes(destination, self.ndim)
        if len(src) != len(dst):
            raise ValueError(f"moveaxis: {source} and {destination} differ in length")
        order = [a for a in range(self.ndim) if a not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.transpose(*order)

    movedim = moveaxis

    # ------------------------------------------------------------------------ copies and pieces
    def tile(self, *reps: int | Sequence[int]) -> Self:
        """Repeat the whole tensor ``reps[i]`` times along axis ``i`` (``torch.tile``): a
        broadcast along new axes interleaved with the old ones, then a reshape, so the gradient
        is the sum over the copies."""
        reps = shape_argument(reps)
        ndim = max(len(reps), self.ndim)
        reps = (1,) * (ndim - len(reps)) + reps
        shape = (1,) * (ndim - self.ndim) + self.shape
        interleaved = self.reshape(tuple(v for n in shape for v in (1, n)))
        copies = interleaved.broadcast_to(tuple(v for r, n in zip(reps, shape) for v in (r, n)))
        return copies.reshape(tuple(r * n for r, n in zip(reps, shape)))

    def repeat(self, *sizes: int | Sequence[int]) -> Self:
        """PyTorch's ``repeat`` (= :meth:`tile`; needs a size for every axis)."""
        if len(shape_argument(sizes)) < self.ndim:
            raise ValueError(
                f"repeat: {len(shape_argument(sizes))} sizes for a {self.ndim}-d tensor"
            )
        return self.tile(*sizes)

    @torch_aliases
    def repeat_interleave(self, repeats: int, axis: int | None = None) -> Self:
        """Repeat each element ``repeats`` times along ``axis`` (flattened when ``None``)."""
        x = self.reshape(-1) if axis is None else self
        (axis,) = normalize_axes(0 if axis is None else axis, x.ndim)
        copies = x.unsqueeze(axis + 1).broadcast_to(
            (*x.shape[: axis + 1], repeats, *x.shape[axis + 1 :])
        )
        return copies.reshape((*x.shape[:axis], x.shape[axis] * repeats, *x.shape[axis + 1 :]))

    @torch_aliases
    def split(self, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Self]:
        """Pieces along ``axis``: of ``split_size`` each (the last may be smaller), or of the
        sizes listed (they must add up to the axis length), as ``torch.split``."""
        (axis,) = normalize_axes(axis, self.ndim)
        length = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step < 1:
                raise ValueError(f"split: split_size must be >= 1, got {step}")
            sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != length or min(sizes, default=0) < 0:
                raise ValueError(f"split: sizes {sizes} do not add up to axis length {length}")
        lead = (slice(None),) * axis
        ends = np.cumsum(sizes).tolist()
        return [self[(*lead, slice(end - size, end))] for size, end in zip(sizes, ends)]

    @torch_aliases
    def chunk(self, chunks: int, axis: int = 0) -> list[Self]:
        """At most ``chunks`` pieces of ``ceil(n / chunks)`` along ``axis`` (the last may be
        smaller; ``torch.chunk``)."""
        if chunks < 1:
            raise ValueError(f"chunk: chunks must be >= 1, got {chunks}")
        (axis,) = normalize_axes(axis, self.ndim)
        return self.split(max(-(-self.shape[axis] // chunks), 1), axis)

    # ------------------------------------------------------------------------ picking, masking
    def gather(self, axis: int, index: Any) -> Self:
        """``out[p] = self[p with its axis-th coordinate replaced by index[p]]`` (``torch.gather``;
        ``index`` has as many axes as ``self``, the result has its shape)."""
        index = integer_array(index, "gather")
        (axis,) = normalize_axes(axis, self.ndim) or (0,)
        check_index_shape("gather", self, axis, index)
        return self[along(axis, index, self.shape[axis] if self.ndim else 1, "gather")]

    def masked_fill(self, mask: Any, value: Any) -> Self:
        """``value`` where the boolean ``mask`` holds; the gradient flows elsewhere only."""
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"masked_fill: mask must be boolean, got dtype {mask.dtype}")
        out = self.where(~mask, value)
        if out.shape != self.shape:
            raise ShapeError(f"masked_fill: mask {mask.shape} does not broadcast to {self.shape}")
        return out

    def tril(self, diagonal: int = 0) -> Self:
        """Lower triangle of the last two axes (``j - i <= diagonal``), zeros above."""
        return self * _triangle(self, diagonal, "tril")

    def triu(self, diagonal: int = 0) -> Self:
        """Upper triangle of the last two axes (``j - i >= diagonal``), zeros below."""
        return self * ~_triangle(self, diagonal - 1, "triu")

    @torch_aliases
    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Self:
        """The diagonal ``[i, i + offset]`` of the (``axis1``, ``axis2``) planes, as a last axis
        (``torch.diagonal``; ``dim1``/``dim2`` are accepted too)."""
        planes = self.moveaxis(normalize_axes((axis1, axis2), self.ndim), (-2, -1))
        rows, cols = planes.shape[-2:]
        count = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
        i = np.arange(count) + max(-offset, 0)
        return planes[..., i, i + offset]


# ---------------------------------------------------------------------------- helpers
def _count(x: Any, axis: Axis) -> int:
    """How many elements a reduction over ``axis`` takes together."""
    return int(np.prod([x.shape[a] for a in normalize_axes(axis, x.ndim)]))


def _required_axis(op: str, axis: int | None) -> int:
    if axis is None:
        raise TypeError(f"{op}: needs an axis (axis= or dim=)")
    return axis


def _triangle(x: Any, diagonal: int, op: str) -> np.ndarray:
    """The mask ``j - i <= diagonal`` over the last two axes."""
    if x.ndim < 2:
        raise ShapeError(f"{op}: needs at least 2 axes, got {x.shape}")
    return np.tri(*x.shape[-2:], diagonal, dtype=bool)


def integer_array(index: Any, what: str) -> np.ndarray:
    """Indices as an integer array; whole-valued floats (how integer lists arrive) are accepted."""
    array = np.asarray(index)
    if array.dtype.kind in "iu":
        return array
    if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
        return array.astype(np.int64)
    raise TypeError(f"{what}: indices must be integers, got dtype {array.dtype}")


def along(axis: int, index: np.ndarray, length: int, what: str) -> tuple[np.ndarray, ...]:
    """The NumPy index that reads position ``index[p]`` along ``axis`` for every position ``p``."""
    if index.size and (index.min() < -length or index.max() >= length):
        raise IndexError(
            f"{what}: index values from {index.min()} to {index.max()} are out of range for "
            f"axis {axis} of length {length}"
        )
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index
    return tuple(grid)


def check_index_shape(what: str, x: Any, axis: int, index: np.ndarray) -> None:
    """``index`` must have ``x``'s axes, no longer than ``x``'s except along ``axis``."""
    if index.ndim != x.ndim or any(
        i != axis and n > m for i, (n, m) in enumerate(zip(index.shape, x.shape))
    ):
        raise ShapeError(
            f"{what}: index of shape {index.shape} does not fit input of shape {x.shape} along "
            f"axis {axis} (same number of axes; no larger than the input except along axis)"
        )
