r"""Losses that need a rule of their own for numerical safety.

Binary cross entropy on probabilities, :math:`\ell = -[t \log p + (1 - t) \log (1 - p)]`, composed
from ``log`` breaks where a float32 sigmoid saturates to exactly 0 or 1: ``log 0 = -inf`` and its
derivative ``1/0`` meet a zero from the clamp and give ``0 * inf = NaN``. The fused rule below is
PyTorch's: each log is clamped at -100 and

.. math::
    \frac{\partial \ell}{\partial p} = \frac{p - t}{\max(p (1 - p), \varepsilon)}, \qquad
    \frac{\partial \ell}{\partial t} = \log(1 - p) - \log p,

with :math:`\varepsilon = 10^{-12}`, finite everywhere on :math:`[0, 1]`.
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from ..tensor import Tensor
from .common import add_tangents, constant, quiet
from .elementwise import where

#: smallest value of p (1 - p) a derivative divides by (PyTorch's EPSILON)
EPSILON = 1e-12
#: each log is clamped here, so p = 0 or 1 gives a finite loss
LOG_FLOOR = -100.0


@quiet
def _clamped_log_array(p: np.ndarray) -> np.ndarray:
    return np.maximum(np.log(p), LOG_FLOOR)


def _clamped_log(p: Tensor) -> Tensor:
    """``max(log p, -100)`` whose derivative is 0 (not ``0 * inf``) where the clamp holds."""
    live = p.data > np.exp(LOG_FLOOR)
    one, floor = (constant(np.asarray(v, dtype=p.dtype)) for v in (1.0, LOG_FLOOR))
    return where(live, where(live, p, one).log(), floor)


class BinaryCrossEntropy(Op):
    r"""y = -[t log p + (1 - t) log(1 - p)], elementwise, logs clamped at -100 (see module)."""

    name = "binary_cross_entropy"

    def forward(self, p, t):
        return -(t * _clamped_log_array(p) + (1 - t) * _clamped_log_array(1 - p))

    def _dp(self, g: Tensor, p: Tensor, t: Tensor) -> Tensor:
        return g * (p - t) / (p * (1 - p)).clip(lo=EPSILON)

    def _dt(self, g: Tensor, p: Tensor) -> Tensor:
        return g * (_clamped_log(1 - p) - _clamped_log(p))

    def vjp(self, g, out, p, t):
        need_p, need_t = self.needs_input_grad
        return (self._dp(g, p, t) if need_p else None), (self._dt(g, p) if need_t else None)

    def jvp(self, tangents, out, p, t):
        tp, tt = tangents
        return add_tangents(
            None if tp is None else self._dp(tp, p, t), None if tt is None else self._dt(tt, p)
        )
