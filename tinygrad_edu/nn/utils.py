r"""Gradient utilities: :func:`clip_grad_norm_`.

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

from ..tensor import Tensor

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the ``.grad`` of ``parameters`` so their joint norm is at most ``max_norm``.

    Returns the total norm before clipping as a 0-d Tensor. Parameters without a gradient are
    ignored. The gradients are replaced by new tensors, never scaled in place (two parameters
    may share one gradient array).
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.array(0.0))
    norm_type = float(norm_type)
    total = _norm(np.array([_norm(g, norm_type) for g in grads]), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total gradient norm of order {norm_type} is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    factor = max_norm / (total + 1e-6)
    if not factor >= 1.0:  # a NaN norm makes every gradient NaN, as in PyTorch
        for p in params:
            if p.grad is not None:
                p.grad = Tensor._wrap(p.grad.data * np.asarray(factor, dtype=p.grad.dtype))
    return Tensor(np.array(total))


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
