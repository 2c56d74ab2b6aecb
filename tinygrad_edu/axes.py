"""Axis and shape arguments: ``axis=-1``, ``axis=(0, 2)`` or ``None`` normalised the one way NumPy
does; sizes given as ``(2, 3)`` or ``2, 3``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

Axis = int | tuple[int, ...] | None


class ShapeError(ValueError):
    """Inputs whose shapes do not fit the operation; the message names the op and the shapes."""


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


def shape_argument(shape: tuple) -> tuple[int, ...]:
    """Sizes given either way: ``f(2, 3)`` and ``f((2, 3))`` both pass ``(2, 3)``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


#: PyTorch's spelling of each argument -> NumPy's
TORCH_ALIASES = {
    "dim": "axis",
    "dims": "axis",
    "keepdim": "keepdims",
    "start_dim": "start_axis",
    "end_dim": "end_axis",
    "dim1": "axis1",
    "dim2": "axis2",
}
Method = TypeVar("Method", bound=Callable[..., Any])


def torch_aliases(method: Method) -> Method:
    """Let ``method`` also take PyTorch's spellings of its axis arguments (:data:`TORCH_ALIASES`:
    ``dim=`` for ``axis``, ``keepdim=`` for ``keepdims`` ...): the one place these aliases are
    handled. Giving both spellings of one argument raises ``TypeError``."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def aliased(*args: Any, **kwargs: Any) -> Any:
        if kwargs and not TORCH_ALIASES.keys().isdisjoint(kwargs):
            args, kwargs = _renamed(method.__name__, signature, args, kwargs)
        return method(*args, **kwargs)

    # a code object of its own, named after the method: tracebacks, profilers and tg.compile
    # (which tells the methods that read values by their code) see ``sum``, not one shared wrapper
    aliased.__code__ = aliased.__code__.replace(
        co_name=method.__name__, co_qualname=method.__qualname__
    )
    return aliased  # type: ignore[return-value]


def _renamed(
    name: str, signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]
) -> tuple[tuple, dict[str, Any]]:
    """``args``, ``kwargs`` with every PyTorch spelling replaced by NumPy's."""
    aliases = {alias: kwargs.pop(alias) for alias in TORCH_ALIASES if alias in kwargs}
    bound = signature.bind_partial(*args, **kwargs)
    for alias, value in aliases.items():
        target = TORCH_ALIASES[alias]
        if value is None:  # not given (a wrapper passing its own dim=None on)
            continue
        if target not in signature.parameters:
            raise TypeError(f"{name}() got an unexpected keyword argument {alias!r}")
        if target in bound.arguments:
            raise TypeError(f"{name}: give {target} or its alias {alias}, not both")
        bound.arguments[target] = value
    return bound.args, bound.kwargs
