"""Tensor methods without a gradient: comparisons, tests, logical and bitwise operations, and the
positions of extrema.

Each computes on the arrays and returns a boolean or integer tensor with no graph (a mask or an
index), so no derivative rule is involved. :class:`~tinygrad_edu.tensor.Tensor` inherits them
from :class:`Masks`; this module imports neither the Tensor class nor the ops. Comparisons
compare in the promoted dtype (:func:`arrays`); ``==`` compares elementwise like NumPy and
PyTorch (and, like PyTorch, ``t == None`` is False), while hashing stays by identity.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from . import creation, dtypes
from .axes import Axis, normalize_axes, torch_aliases


class Masks:
    """The Tensor methods whose results carry no gradient (see the module)."""

    __slots__ = ()

    def __lt__(self, other: Any) -> Self:
        return _compare(np.less, self, other)

    def __le__(self, other: Any) -> Self:
        return _compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Self:
        return _compare(np.greater, self, other)

    def __ge__(self, other: Any) -> Self:
        return _compare(np.greater_equal, self, other)

    def __eq__(self, other: object) -> Self:  # type: ignore[override]
        return _compare(np.equal, self, other) if _comparable(other) else NotImplemented

    def __ne__(self, other: object) -> Self:  # type: ignore[override]
        return _compare(np.not_equal, self, other) if _comparable(other) else NotImplemented

    __hash__ = object.__hash__  # hashing (dicts, sets) stays by identity, as in PyTorch
    lt, le, gt, ge, eq, ne = __lt__, __le__, __gt__, __ge__, __eq__, __ne__

    def isnan(self) -> Self:
        """Where the values are NaN."""
        return self._wrap(np.isnan(self.data))

    def isinf(self) -> Self:
        """Where the values are infinite."""
        return self._wrap(np.isinf(self.data))

    def isfinite(self) -> Self:
        """Where the values are neither infinite nor NaN."""
        return self._wrap(np.isfinite(self.data))

    def logical_and(self, other: Any) -> Self:
        return self._wrap(np.logical_and(self.data, _plain(other)))

    def logical_or(self, other: Any) -> Self:
        return self._wrap(np.logical_or(self.data, _plain(other)))

    def logical_xor(self, other: Any) -> Self:
        return self._wrap(np.logical_xor(self.data, _plain(other)))

    def logical_not(self) -> Self:
        return self._wrap(np.logical_not(self.data))

    def __and__(self, other: Any) -> Self:
        return _bitwise(np.bitwise_and, self, other)

    def __or__(self, other: Any) -> Self:
        return _bitwise(np.bitwise_or, self, other)

    def __xor__(self, other: Any) -> Self:
        return _bitwise(np.bitwise_xor, self, other)

    def __invert__(self) -> Self:
        return _bitwise(np.invert, self)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    @torch_aliases
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Self:
        """Index of the first largest value (int64; flat index when no axis)."""
        return self._wrap(np.asarray(np.argmax(self.data, axis=axis, keepdims=keepdims)))

    @torch_aliases
    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Self:
        """Index of the first smallest value (int64; flat index when no axis)."""
        return self._wrap(np.asarray(np.argmin(self.data, axis=axis, keepdims=keepdims)))

    @torch_aliases
    def any(self, axis: Axis = None, keepdims: bool = False) -> Self:
        """Whether any element is nonzero (a boolean tensor)."""
        axes = normalize_axes(axis, self.ndim)
        return self._wrap(np.asarray(np.any(self.data, axis=axes, keepdims=keepdims)))

    @torch_aliases
    def all(self, axis: Axis = None, keepdims: bool = False) -> Self:
        """Whether every element is nonzero (a boolean tensor)."""
        axes = normalize_axes(axis, self.ndim)
        return self._wrap(np.asarray(np.all(self.data, axis=axes, keepdims=keepdims)))


def arrays(a: Masks, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of the tensor ``a`` and of ``b`` (a tensor, a number or array-like data) in
    their promoted dtype, for a comparison."""
    if isinstance(b, Masks):  # a Tensor
        if b.data.dtype is a.data.dtype:
            return a.data, b.data
    elif (b.__class__ is float or b.__class__ is int) and a.data.dtype.kind == "f":
        return a.data, np.asarray(b, a.data.dtype)
    elif dtypes.python_dtype(b) is None:
        b = a._wrap(creation.array(b))
    dtype = dtypes.result_type(a, b)
    if not isinstance(b, Masks):
        return a.data.astype(dtype, copy=False), dtypes.number_array(b, dtype)
    return a.data.astype(dtype, copy=False), b.data.astype(dtype, copy=False)


def _compare(fn: np.ufunc, a: Any, other: Any) -> Any:
    """A comparison in the promoted dtype: a boolean tensor, no graph."""
    return a._wrap(np.asarray(fn(*arrays(a, other))))


def _comparable(value: object) -> bool:
    """Whether ``==`` compares elementwise (numbers and array-likes; ``t == None`` is False)."""
    return isinstance(value, (Masks, np.ndarray, np.generic, bool, int, float, list, tuple))


def _plain(value: Any) -> Any:
    return value.data if isinstance(value, Masks) else value


def _bitwise(fn: np.ufunc, a: Any, *others: Any) -> Any:
    """``& | ^ ~`` on boolean or integer tensors (masks); a constant result."""
    plain = [a.data, *(_plain(x) for x in others)]
    if any(np.asarray(x).dtype.kind not in "biu" for x in plain):
        raise TypeError(f"{fn.__name__} needs boolean or integer tensors (masks), not floats")
    return a._wrap(np.asarray(fn(*plain)))
