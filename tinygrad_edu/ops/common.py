"""Small helpers shared by the op modules: constants inside derivative rules, tangent sums."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..axes import Axis, kept_shape, normalize_axes
from ..tensor import Tensor

__all__ = [
    "Axis",
    "add_tangents",
    "constant",
    "kept_shape",
    "normalize_axes",
    "quiet",
]


def constant(array: Any) -> Tensor:
    """A Tensor the graph treats as a constant (masks and scale factors inside VJPs and JVPs)."""
    return Tensor._wrap(np.asarray(array))


def quiet(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Run ``fn`` without NumPy's floating-point warnings.

    Domain edges (log 0, 1/0, sqrt of a negative) give inf/nan silently, as in PyTorch; anomaly
    mode is the tool that reports them.
    """

    def silent(*args: Any, **kwargs: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(*args, **kwargs)

    silent.__name__ = getattr(fn, "__name__", "quiet")
    return silent


def add_tangents(*terms: Tensor | None) -> Tensor | None:
    """The sum of the terms that are not ``None`` (a zero tangent), or ``None`` if all are."""
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    return total
