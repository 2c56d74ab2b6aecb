r"""Ops that move values without changing them: broadcasting, reshaping, permuting, indexing,
joining.

Each is linear, so its JVP applies the op itself to the tangent, and its VJP is the *adjoint*
movement: broadcasting <-> summing, a permutation <-> its inverse, picking <-> scatter-adding,
joining <-> slicing.
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from .common import Axis, constant, normalize_axes


class SumTo(Op):
    r"""Sum ``x`` down to ``shape``: the adjoint of broadcasting.

    Broadcasting copies values along new leading axes and along axes of size 1; the VJP of a copy
    is a sum, so the gradient of a broadcast input is the upstream gradient summed over exactly
    those axes. The engine applies this in one place for every op.
    :math:`\bar x = ` ``broadcast_to(g, x.shape)``.
    """

    name = "sum_to"
    replayable_vjp = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        extra = x.ndim - len(self.shape)
        if extra < 0:
            raise ValueError(f"cannot sum shape {x.shape} down to {self.shape}")
        summed = x.sum(axis=tuple(range(extra))) if extra else x
        ones = tuple(i for i, n in enumerate(self.shape) if n == 1 and summed.shape[i] != 1)
        if ones:
            summed = summed.sum(axis=ones, keepdims=True)
        if summed.shape != self.shape:
            raise ValueError(f"cannot sum shape {x.shape} down to {self.shape}")
        return summed

    def vjp(self, g, out, x):
        return g.broadcast_to(x.shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.sum_to(self.shape)


class BroadcastTo(Op):
    r"""Broadcast ``x`` to ``shape`` (read-only view).   :math:`\bar x = ` ``g.sum_to(x.shape)``."""

    name = "broadcast_to"
    replayable_vjp = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        return np.broadcast_to(x, self.shape)

    def vjp(self, g, out, x):
        return g.sum_to(x.shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.broadcast_to(self.shape)


class Reshape(Op):
    r"""Same values, new shape.   :math:`\bar x = ` ``g.reshape(x.shape)``."""

    name = "reshape"
    replayable_vjp = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def vjp(self, g, out, x):
        return g.reshape(x.shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.reshape(out.shape)


class Transpose(Op):
    r"""Permute axes.   :math:`\bar x = ` ``g`` permuted back by the inverse permutation."""

    name = "transpose"
    replayable_vjp = True

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x):
        axes = tuple(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in self.axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation of a {x.ndim}-d shape")
        self.axes = axes
        return x.transpose(axes)

    def vjp(self, g, out, x):
        return g.transpose(*np.argsort(self.axes).tolist())

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.transpose(*self.axes)


def is_advanced(index) -> bool:
    """Whether an index uses integer/boolean arrays (which may select a position twice)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


class GetItem(Op):
    r"""y = x[index] (basic slices, integer and boolean arrays, in any mix).

    :math:`\bar x` is zero except at the selected positions, where the upstream gradient is
    *added* -- an integer array may pick the same element twice. That scatter-add is itself an
    op (:class:`ScatterAdd`), whose VJP is indexing again.
    """

    name = "getitem"
    replayable_vjp = True

    def __init__(self, index) -> None:
        self.index = index

    def forward(self, x):
        try:
            return x[self.index]
        except IndexError as err:  # stays an IndexError: iteration protocols rely on it
            message = f"getitem: index {self.index!r} does not fit shape {x.shape}: {err}"
            raise IndexError(message) from None

    def vjp(self, g, out, x):
        return ScatterAdd.apply(g, shape=x.shape, index=self.index, like=x.data)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t[self.index]


class ScatterAdd(Op):
    r"""y = zeros(shape); y[index] += x (repeats accumulate).   :math:`\bar x = ` ``g[index]``.

    ``like``, when given, is the array that was indexed: the zeros take its memory order, so the
    gradient keeps the layout of the tensor it belongs to (NHWC activations stay NHWC).
    """

    name = "scatter_add"
    replayable_vjp = True

    def __init__(self, shape: tuple[int, ...], index, like: np.ndarray | None = None) -> None:
        self.shape, self.index, self.like = shape, index, like

    def forward(self, x):
        if self.like is not None and self.like.shape == self.shape:
            y = np.zeros_like(self.like, dtype=x.dtype)  # keeps its memory order (e.g. NHWC)
        else:
            y = np.zeros(self.shape, dtype=x.dtype)
        if is_advanced(self.index):
            np.add.at(y, self.index, x)  # accumulates positions selected more than once
        else:
            y[self.index] = x  # basic indexing selects each position at most once
        return y

    def vjp(self, g, out, x):
        return g[self.index]

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else ScatterAdd.apply(t, shape=self.shape, index=self.index)


def _zeros_for_missing(tangents, xs) -> list:
    return [constant(np.zeros(x.shape, x.dtype)) if t is None else t for t, x in zip(tangents, xs)]


class Stack(Op):
    r"""y = stack(xs, axis).   :math:`\bar x_i = ` ``g`` taken at position ``i`` along ``axis``."""

    name = "stack"
    replayable_vjp = True

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return np.stack(xs, axis=self.axis)

    def vjp(self, g, out, *xs):
        axis = self.axis % out.ndim
        lead = (slice(None),) * axis
        return tuple(
            g[(*lead, i)] if need else None for i, need in enumerate(self.needs_input_grad)
        )

    def jvp(self, tangents, out, *xs):
        if all(t is None for t in tangents):
            return None
        return Stack.apply(*_zeros_for_missing(tangents, xs), axis=self.axis)


class Concatenate(Op):
    r"""y = concatenate(xs, axis).   :math:`\bar x_i = ` the slice of ``g`` that ``x_i`` filled."""

    name = "concatenate"
    replayable_vjp = True

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return np.concatenate(xs, axis=self.axis)

    def vjp(self, g, out, *xs):
        axis = self.axis % out.ndim
        lead = (slice(None),) * axis
        ends = np.cumsum([x.shape[axis] for x in xs]).tolist()
        starts = [0, *ends[:-1]]
        return tuple(
            g[(*lead, slice(start, end))] if need else None
            for start, end, need in zip(starts, ends, self.needs_input_grad)
        )

    def jvp(self, tangents, out, *xs):
        if all(t is None for t in tangents):
            return None
        return Concatenate.apply(*_zeros_for_missing(tangents, xs), axis=self.axis)


class Flip(Op):
    r"""Reverse the order along ``axes``.   Its own adjoint: :math:`\bar x = ` ``g`` flipped."""

    name = "flip"

    def __init__(self, axes: Axis) -> None:
        self.axes = axes

    def forward(self, x):
        self.axes = normalize_axes(self.axes, x.ndim)
        return np.flip(x, self.axes) if self.axes else x

    def vjp(self, g, out, x):
        return Flip.apply(g, axes=self.axes)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else Flip.apply(t.broadcast_to(x.shape), axes=self.axes)


class Roll(Op):
    r"""Shift elements cyclically by ``shifts`` along ``axes`` (all flattened when ``None``).

    :math:`\bar x = ` ``g`` rolled back by ``-shifts``.
    """

    name = "roll"

    def __init__(self, shifts: int | tuple[int, ...], axes: Axis) -> None:
        self.shifts, self.axes = shifts, axes

    def forward(self, x):
        return np.roll(x, self.shifts, self.axes)

    def vjp(self, g, out, x):
        return Roll.apply(g, shifts=_negated(self.shifts), axes=self.axes)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        if t is None:
            return None
        return Roll.apply(t.broadcast_to(x.shape), shifts=self.shifts, axes=self.axes)


def _negated(shifts: int | tuple[int, ...]) -> int | tuple[int, ...]:
    return -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)
