r"""Reductions along axes, and the softmax family (normalised along one axis).

A sum copies its gradient back along the summed axes (:math:`\bar x = \bar y` broadcast) and sums
its tangent (:math:`\dot y = \sum \dot x`): the two modes are each other's transpose.
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from .common import Axis, constant, kept_shape, normalize_axes


class Sum(Op):
    r"""y = sum of x over ``axis``.   :math:`\bar x = \bar y` copied along the summed axes;
    :math:`\dot y = \sum \dot x`."""

    name = "sum"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def vjp(self, g, out, x):
        if not self.keepdims and g.ndim:  # a 0-d or keepdims gradient broadcasts as it is
            g = g.reshape(kept_shape(x.shape, self.axes))
        return g.broadcast_to(x.shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.broadcast_to(x.shape).sum(self.axes, self.keepdims)


class Max(Op):
    r"""y = max of x over ``axis``.

    :math:`\bar x = \bar y\, [x = y] / n` where ``n`` counts the maxima (ties share the
    gradient, like ``torch.amax``); the indicator is a constant, so second derivatives are 0.
    :math:`\dot y = \sum \dot x\, [x = y] / n`.
    """

    name = "max"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"max of an empty tensor (shape {x.shape}) has no value")
        self.axes = axes = normalize_axes(self.axis, x.ndim)
        self.kept_shape = kept_shape(x.shape, axes)
        kept = x.max(axis=axes, keepdims=True)
        winners = (x == kept).astype(x.dtype)
        self.share = winners / winners.sum(axis=axes, keepdims=True)
        return kept if self.keepdims else np.squeeze(kept, axis=axes)

    def vjp(self, g, out, x):
        return g.reshape(self.kept_shape).broadcast_to(x.shape) * constant(self.share)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else (t * constant(self.share)).sum(self.axes, self.keepdims)


class Softmax(Op):
    r"""y_i = e^{x_i} / \sum_j e^{x_j} along ``axis``.

    :math:`\bar x = y \odot (\bar y - \sum_j \bar y_j y_j)`; the Jacobian
    :math:`\mathrm{diag}(y) - y y^T` is symmetric, so the JVP is the same formula applied to
    :math:`\dot x`. The forward subtracts the maximum first (softmax is shift invariant), so
    ``x = 1000`` cannot overflow.
    """

    name = "softmax"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        (self.axis,) = normalize_axes(self.axis, x.ndim) or (0,)
        e = np.exp(x - np.max(x, axis=self.axis, keepdims=True))
        return e / np.sum(e, axis=self.axis, keepdims=True)

    def vjp(self, g, out, x):
        weighted = g * out
        return weighted - out * weighted.sum(axis=self.axis, keepdims=True)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else self.vjp(t, out, x)


class LogSoftmax(Op):
    r"""y_i = x_i - \log \sum_j e^{x_j} along ``axis``.

    :math:`\bar x = \bar y - \mathrm{softmax}(x) \sum_j \bar y_j`, with softmax = e^y, and
    :math:`\dot y = \dot x - \sum_j \mathrm{softmax}(x)_j \dot x_j`. Computed as
    ``z - log(sum(exp(z)))`` with ``z = x - max(x)``: every exponent is <= 0.
    """

    name = "log_softmax"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        (self.axis,) = normalize_axes(self.axis, x.ndim) or (0,)
        z = x - np.max(x, axis=self.axis, keepdims=True)
        return z - np.log(np.sum(np.exp(z), axis=self.axis, keepdims=True))

    def vjp(self, g, out, x):
        return g - out.exp() * g.sum(axis=self.axis, keepdims=True)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t - (out.exp() * t).sum(axis=self.axis, keepdims=True)
