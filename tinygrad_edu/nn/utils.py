r"""Gradient utilities: :func:`get_total_norm`, :func:`clip_grads_with_norm_` and
:func:`clip_grad_norm_` (the two in one call).

Clipping by the global norm rescales all gradients together, keeping their direction:

.. math::
    \|g\| = \Big(\sum_p \|g_p\|_q^q\Big)^{1/q}, \qquad
    g_p \leftarrow g_p \cdot \min\Big(1, \frac{c}{\|g\| + 10^{-6}}\Big)

(:math:`q = \infty` takes the largest absolute entry). As in PyTorch, the norm of norms: each
gradient's norm, then the norm of those (the same for :math:`q > 0`; for :math:`q = 0`, which
counts nonzero entries, and :math:`q = -\infty` it is PyTorch's definition).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..optim.optimizer import is_real
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grads_with_norm_", "get_total_norm"]


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The joint norm of ``tensors`` (e.g. the gradients), the norm of their norms, as a 0-d
    Tensor; ``0`` for no tensors.

    ``error_if_nonfinite`` raises ``RuntimeError`` for an infinite or NaN norm. ``foreach``
    (PyTorch's choice of a batched kernel) is accepted for compatibility and changes nothing.
    """
    _check_foreach("get_total_norm", foreach)
    arrays = [tensors.data] if isinstance(tensors, Tensor) else [t.data for t in tensors]
    try:  # PyTorch takes the string "inf" too
        norm_type = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"get_total_norm: norm_type must be a number, got {norm_type!r}") from None
    if not arrays:
        return Tensor(np.array(0.0))
    total = _norm(np.array([_norm(a, norm_type) for a in arrays]), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"get_total_norm: the total norm of order {norm_type} is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    return Tensor(np.array(total))


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor | float,
    foreach: bool | None = None,
) -> None:
    r"""Scale the ``.grad`` of ``parameters`` by :math:`\min(1, c / (\|g\| + 10^{-6}))`, given
    the total norm :math:`\|g\|` (from :func:`get_total_norm`) and :math:`c` = ``max_norm``.

    The gradients are replaced by new tensors, never scaled in place (two parameters may share
    one gradient array); parameters without a gradient are ignored. A NaN norm makes every
    gradient NaN, as in PyTorch.
    """
    _check_foreach("clip_grads_with_norm_", foreach)
    if not is_real(max_norm):
        raise TypeError(f"clip_grads_with_norm_: max_norm must be a number, got {max_norm!r}")
    total = float(total_norm.data if isinstance(total_norm, Tensor) else total_norm)
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    factor = max_norm / (total + 1e-6)
    if factor >= 1.0:
        return
    for p in params:
        if p.grad is not None:
            p.grad = Tensor._wrap(p.grad.data * np.asarray(factor, dtype=p.grad.dtype))


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scale the ``.grad`` of ``parameters`` so their joint norm is at most ``max_norm``:
    :func:`get_total_norm` of the gradients, then :func:`clip_grads_with_norm_`.

    Returns the total norm before clipping as a 0-d Tensor.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def _check_foreach(owner: str, foreach: bool | None) -> None:
    if foreach is not None and not isinstance(foreach, bool):
        raise TypeError(f"{owner}: foreach must be None, True or False, got {foreach!r}")


def _norm(values: np.ndarray, order: float) -> float:
    """PyTorch's ``vector_norm`` of ``values``: order ``inf``/``-inf`` the largest/smallest
    absolute entry, ``0`` the count of nonzero entries, else ``(sum |v|^order)^(1/order)``."""
    magnitudes = np.abs(values).ravel()
    if order == np.inf:
        return float(magnitudes.max(initial=0.0))
    if order == -np.inf:
        return float(magnitudes.min(initial=np.inf))
    if order == 0:
        return float(np.count_nonzero(magnitudes))
    with np.errstate(divide="ignore"):  # a zero entry under a negative order: PyTorch's 0
        return float(np.sum(magnitudes.astype(np.float64) ** order) ** (1.0 / order))
