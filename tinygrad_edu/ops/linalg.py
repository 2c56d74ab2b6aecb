r"""Linear algebra: matrix products and the fused fully connected layer.

A product is linear in each factor, so each factor's tangent enters the JVP through the same
product (:math:`\dot y = \dot a\, b + a\, \dot b`) and each VJP is a product with the other factor
transposed (:math:`\bar a = \bar y\, b^T`, :math:`\bar b = a^T \bar y`).
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from .common import add_tangents
from .reductions import Sum


class MatMul(Op):
    r"""y = a @ b (NumPy semantics: 1-d operands, batched and broadcast leading axes).

    For matrices :math:`\bar a = \bar y\, b^T` and :math:`\bar b = a^T \bar y`. A 1-d ``a`` acts as
    a row ``(1, k)`` and a 1-d ``b`` as a column ``(k, 1)``; the VJP restores those axes on ``g``,
    applies the matrix rule, and drops them again. Summing over broadcast batch axes is left to
    the engine. JVP: :math:`\dot y = \dot a\, b + a\, \dot b`.
    """

    name = "matmul"
    replayable_vjp = True

    def forward(self, a, b):
        return np.matmul(a, b)

    def vjp(self, g, out, a, b):
        need_a, need_b = self.needs_input_grad
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:
            g2 = g.reshape(1, 1)
        elif a.ndim == 1:
            g2 = g.reshape(*g.shape[:-1], 1, g.shape[-1])
        elif b.ndim == 1:
            g2 = g.reshape(*g.shape, 1)
        else:
            g2 = g
        grad_a = grad_b = None
        if need_a:
            grad_a = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                grad_a = grad_a.reshape(*grad_a.shape[:-2], grad_a.shape[-1])
        if need_b:
            grad_b = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                grad_b = grad_b.reshape(*grad_b.shape[:-1])
        return grad_a, grad_b

    def jvp(self, tangents, out, a, b):
        ta, tb = tangents
        return add_tangents(None if ta is None else ta @ b, None if tb is None else a @ tb)


class Linear(Op):
    r"""y = x W^T + b, a fully connected layer as one op (W: ``(out, in)``, x: ``(..., in)``).

    The same maths as ``x @ W.T + b``, fused so that a layer costs one node instead of three:
    :math:`\bar x = \bar y W`, :math:`\bar W = \bar y^T x` and :math:`\bar b = \sum \bar y`, the
    sums running over every leading (batch) axis. ``b`` may be omitted.
    JVP: :math:`\dot y = \dot x W^T + x \dot W^T + \dot b`.
    """

    name = "linear"
    replayable_vjp = True

    def forward(self, x, weight, bias=None):
        y = np.matmul(x, weight.T)
        return y if bias is None else y + bias

    def vjp(self, g, out, x, weight, bias=None):
        need_x, need_weight = self.needs_input_grad[:2]
        grad_x = g @ weight if need_x else None
        grad_weight = None
        if need_weight:
            g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            grad_weight = WeightGradient.apply(g2, x2)
        if bias is None:
            return grad_x, grad_weight
        grad_bias = None
        if self.needs_input_grad[2]:  # the op itself, its axes already in normal form
            batch_axes = tuple(range(g.ndim - 1))
            grad_bias = Sum.apply(g, axis=batch_axes, keepdims=False) if batch_axes else g
        return grad_x, grad_weight, grad_bias

    def jvp(self, tangents, out, x, weight, bias=None):
        tx, tw = tangents[:2]
        tb = tangents[2] if bias is not None else None
        return add_tangents(
            None if tx is None else tx @ weight.T,
            None if tw is None else x @ tw.T,
            tb,
        )


class WeightGradient(Op):
    r"""z = g^T x for matrices ``g`` ``(n, out)`` and ``x`` ``(n, in)``: :class:`Linear`'s weight
    gradient as one op (a transpose and a product would be two nodes per layer and step).

    :math:`\bar g = x \bar z^T` and :math:`\bar x = g \bar z`;
    JVP: :math:`\dot z = \dot g^T x + g^T \dot x`.
    """

    name = "weight_gradient"
    replayable_vjp = True

    def forward(self, g, x):
        return np.matmul(g.T, x)

    def vjp(self, gz, out, g, x):
        need_g, need_x = self.needs_input_grad
        return (
            Linear.apply(x, gz) if need_g else None,
            g @ gz if need_x else None,
        )

    def jvp(self, tangents, out, g, x):
        tg, tx = tangents
        return add_tangents(
            None if tg is None else WeightGradient.apply(tg, x),
            None if tx is None else WeightGradient.apply(g, tx),
        )
