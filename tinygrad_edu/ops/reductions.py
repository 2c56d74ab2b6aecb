r"""Reductions along axes, scans along one axis, and the softmax family.

A sum copies its gradient back along the summed axes (:math:`\bar x = \bar y` broadcast) and sums
its tangent (:math:`\dot y = \sum \dot x`): the two modes are each other's transpose. A running
sum's gradient is the running sum taken from the other end.

Reductions whose rule follows from others by the chain rule (``mean``, ``var``, ``std``, the
1- and inf-norms) are Tensor methods built from these (:mod:`tinygrad_edu.composites`);
``argmax``/``argmin``/``any``/``all`` return integer or boolean tensors and have no gradient.
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from ..tensor import Tensor, where
from .common import Axis, constant, kept_shape, normalize_axes
from .shape import BroadcastTo, Reshape


class Sum(Op):
    r"""y = sum of x over ``axis``.   :math:`\bar x = \bar y` copied along the summed axes;
    :math:`\dot y = \sum \dot x`."""

    name = "sum"
    replayable_vjp = True

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def vjp(self, g, out, x):
        if not self.keepdims and g.ndim:  # a 0-d or keepdims gradient broadcasts as it is
            g = Reshape.apply(g, shape=kept_shape(x.shape, self.axes))
        return g if g.shape == x.shape else BroadcastTo.apply(g, shape=x.shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.broadcast_to(x.shape).sum(self.axes, self.keepdims)


class Max(Op):
    r"""y = max of x over ``axis``; the gradient goes to the maxima, as in PyTorch.

    ``ties="first"`` sends all of :math:`\bar y` to the first maximum along the one reduced axis
    (``torch.max(x, dim)``, whose index is the first maximum; max pooling); ``ties="split"``
    shares it equally among the tied maxima, :math:`\bar x = \bar y\, [x = y] / n`
    (``torch.amax``, and ``torch.max(x)`` over all elements). The default is ``"first"`` for an
    integer ``axis`` and ``"split"`` for ``None`` or a tuple, PyTorch's rule for ``max``. Either
    way the weights are constants, so second derivatives are 0, and
    :math:`\dot y = \sum \dot x \cdot` weight.
    """

    name = "max"
    extreme = staticmethod(np.max)
    first = staticmethod(np.argmax)

    def __init__(self, axis: Axis, keepdims: bool, ties: str | None = None) -> None:
        if ties is None:
            ties = "first" if isinstance(axis, (int, np.integer)) else "split"
        if ties not in ("first", "split"):
            raise ValueError(f"{self.name}: ties must be 'first' or 'split', got {ties!r}")
        self.axis, self.keepdims, self.ties = axis, keepdims, ties

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{self.name} of an empty tensor (shape {x.shape}) has no value")
        self.axes = axes = normalize_axes(self.axis, x.ndim)
        self.kept_shape = kept_shape(x.shape, axes)
        if self.ties == "first" and len(axes) == 1:
            index = self.first(x, axis=axes[0], keepdims=True)
            kept = np.take_along_axis(x, index, axis=axes[0])
            self.share = np.zeros(x.shape, dtype=x.dtype)
            np.put_along_axis(self.share, index, 1, axis=axes[0])
        else:
            kept = self.extreme(x, axis=axes, keepdims=True)
            winners = (x == kept).astype(x.dtype)
            self.share = winners / winners.sum(axis=axes, keepdims=True)
        return kept if self.keepdims else np.squeeze(kept, axis=axes)

    def vjp(self, g, out, x):
        return g.reshape(self.kept_shape).broadcast_to(x.shape) * constant(self.share)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else (t * constant(self.share)).sum(self.axes, self.keepdims)


class Min(Max):
    r"""y = min of x over ``axis``; the rule of :class:`Max` with the minima as winners."""

    name = "min"
    extreme = staticmethod(np.min)
    first = staticmethod(np.argmin)


def _shifted(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``x - max(x)`` over ``axes``: every exponent <= 0 (softmax is shift invariant)."""
    return x - np.max(x, axis=axes, keepdims=True)


class Softmax(Op):
    r"""y_i = e^{x_i} / \sum_j e^{x_j} along ``axis`` (one axis or a tuple of axes).

    :math:`\bar x = y \odot (\bar y - \sum_j \bar y_j y_j)`; the Jacobian
    :math:`\mathrm{diag}(y) - y y^T` is symmetric, so the JVP is the same formula applied to
    :math:`\dot x`. The forward subtracts the maximum first (softmax is shift invariant), so
    ``x = 1000`` cannot overflow. An empty input gives an empty output, as in PyTorch.
    """

    name = "softmax"
    replayable_vjp = True

    def __init__(self, axis: Axis) -> None:
        self.axis = axis

    def forward(self, x):
        self.axis = normalize_axes(self.axis, x.ndim)  # () for 0-d: its softmax is 1
        if x.size == 0:
            return x.copy()  # nothing to normalise, as in PyTorch
        e = np.exp(_shifted(x, self.axis))
        return e / np.sum(e, axis=self.axis, keepdims=True)

    def vjp(self, g, out, x):
        weighted = g * out
        return weighted - out * weighted.sum(axis=self.axis, keepdims=True)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else self.vjp(t, out, x)


class LogSoftmax(Op):
    r"""y_i = x_i - \log \sum_j e^{x_j} along ``axis`` (one axis or a tuple of axes).

    :math:`\bar x = \bar y - \mathrm{softmax}(x) \sum_j \bar y_j`, with softmax = e^y, and
    :math:`\dot y = \dot x - \sum_j \mathrm{softmax}(x)_j \dot x_j`. Computed as
    ``z - log(sum(exp(z)))`` with ``z = x - max(x)``: every exponent is <= 0.
    """

    name = "log_softmax"
    replayable_vjp = True

    def __init__(self, axis: Axis) -> None:
        self.axis = axis

    def forward(self, x):
        self.axis = normalize_axes(self.axis, x.ndim)
        if x.size == 0:
            return x.copy()
        z = _shifted(x, self.axis)
        return z - np.log(np.sum(np.exp(z), axis=self.axis, keepdims=True))

    def vjp(self, g, out, x):
        return g - out.exp() * g.sum(axis=self.axis, keepdims=True)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else t - (out.exp() * t).sum(axis=self.axis, keepdims=True)


class Prod(Op):
    r"""y = product of x over ``axis``.

    :math:`\partial y / \partial x_i = \prod_{j \ne i} x_j`, the product of the *other* elements
    of its slice. Without zeros that is :math:`y / x_i`; with zeros it is computed exactly as
    (exclusive running product from the left) times (exclusive running product from the right),
    so one zero gets the product of the rest and two or more zeros give 0 everywhere.
    :math:`\dot y = \sum_i \dot x_i \prod_{j \ne i} x_j`.
    """

    name = "prod"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        return np.prod(x, axis=self.axes, keepdims=self.keepdims)

    def _others(self, out: Tensor, x: Tensor) -> Tensor:
        r""":math:`\prod_{j \ne i} x_j` for every element, in Tensor ops."""
        kept = out if self.keepdims else out.reshape(kept_shape(x.shape, self.axes))
        if np.all(x.data != 0):
            return kept / x
        rest = [a for a in range(x.ndim) if a not in self.axes]
        perm = (*rest, *self.axes)
        moved = x.transpose(*perm)
        flat = moved.reshape(*moved.shape[: len(rest)], -1)
        one = constant(np.ones((*flat.shape[:-1], 1), dtype=x.dtype))
        left = Tensor.concatenate([one, flat[..., :-1]], axis=-1).cumprod(-1)
        right = Tensor.concatenate([flat[..., 1:], one], axis=-1).flip(-1).cumprod(-1).flip(-1)
        return (left * right).reshape(moved.shape).transpose(*np.argsort(perm).tolist())

    def vjp(self, g, out, x):
        if not self.keepdims and g.ndim:
            g = g.reshape(kept_shape(x.shape, self.axes))
        return g * self._others(out, x)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else (t * self._others(out, x)).sum(self.axes, self.keepdims)


class LogSumExp(Op):
    r"""y = \log \sum e^{x} over ``axis``, computed as :math:`m + \log \sum e^{x - m}` with
    :math:`m = \max x`, so no exponent is positive.

    :math:`\bar x = \bar y\, e^{x - y}` (the softmax of the slice);
    :math:`\dot y = \sum \dot x\, e^{x - y}`.
    """

    name = "logsumexp"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = axes = normalize_axes(self.axis, x.ndim)
        if x.size == 0:  # log 0 = -inf where the reduced axes are empty, as in PyTorch
            with np.errstate(divide="ignore"):
                return np.log(np.sum(np.exp(x), axis=axes, keepdims=self.keepdims))
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all -inf (or an inf): nothing to shift
        with np.errstate(divide="ignore"):
            y = m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True))
        return y if self.keepdims else np.squeeze(y, axis=axes)

    def _softmax(self, out: Tensor, x: Tensor) -> Tensor:
        kept = out if self.keepdims else out.reshape(kept_shape(x.shape, self.axes))
        return (x - kept).exp()

    def vjp(self, g, out, x):
        if not self.keepdims and g.ndim:
            g = g.reshape(kept_shape(x.shape, self.axes))
        return g * self._softmax(out, x)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else (t * self._softmax(out, x)).sum(self.axes, self.keepdims)


class Cumsum(Op):
    r"""y_i = \sum_{j \le i} x_j along ``axis``.

    :math:`\bar x_j = \sum_{i \ge j} \bar y_i`: a running sum from the other end;
    :math:`\dot y = ` the running sum of :math:`\dot x`.
    """

    name = "cumsum"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        (self.axis,) = normalize_axes(self.axis, x.ndim) or (0,)
        return np.cumsum(x, axis=self.axis) if x.ndim else x.copy()

    def vjp(self, g, out, x):
        return reverse_cumsum(g, self.axis)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else Cumsum.apply(t.broadcast_to(x.shape), axis=self.axis)


def reverse_cumsum(g: Tensor, axis: int) -> Tensor:
    r""":math:`\sum_{i \ge j} g_i` along ``axis`` (the adjoint of a running sum)."""
    if g.ndim == 0:
        return g
    return Cumsum.apply(g.flip(axis), axis=axis).flip(axis)


class Cumprod(Op):
    r"""y_i = \prod_{j \le i} x_j along ``axis``.

    :math:`\bar x_k = \sum_{i \ge k} \bar y_i \prod_{j \le i, j \ne k} x_j`. Without zeros
    that is :math:`(\sum_{i \ge k} \bar y_i y_i) / x_k`, a running sum from the other end.
    With a zero in the slice the division is not possible; the rule then uses the product form
    itself, :math:`\bar x_k = E_k \sum_{i \ge k} \bar y_i R_{ki}` with the exclusive running
    product :math:`E_k = \prod_{j<k} x_j` and :math:`R_{ki} = \prod_{k<j \le i} x_j` (an
    ``n x n`` running product per slice). Both are exact polynomial identities, so every higher
    derivative is right too. :math:`\dot y_i = \sum_{k \le i} \dot x_k E_k R_{ki}` likewise.
    """

    name = "cumprod"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        (self.axis,) = normalize_axes(self.axis, x.ndim) or (0,)
        return np.cumprod(x, axis=self.axis) if x.ndim else x.copy()

    def _products(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``E`` (..., n), ``R`` (..., n, n) and the mask ``i >= k``, with ``axis`` moved last."""
        moved = x.moveaxis(self.axis, -1)
        n = moved.shape[-1]
        one = constant(np.ones((*moved.shape[:-1], 1), dtype=x.dtype))
        exclusive = Tensor.concatenate([one, moved[..., :-1]], axis=-1).cumprod(-1)
        later = np.triu(np.ones((n, n), dtype=bool), 1)  # [k, j]: j > k
        rest = Cumprod.apply(where(later, moved.unsqueeze(-2), 1.0), axis=-1)
        return exclusive, rest, constant(np.triu(np.ones((n, n), dtype=bool)))

    def vjp(self, g, out, x):
        if x.ndim == 0:
            return g
        if np.all(x.data != 0):
            return reverse_cumsum(g * out, self.axis) / x
        exclusive, rest, upper = self._products(x)
        g = g.broadcast_to(x.shape).moveaxis(self.axis, -1).unsqueeze(-2)
        return (exclusive * (g * rest * upper).sum(-1)).moveaxis(-1, self.axis)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        if t is None or x.ndim == 0:
            return t
        t = t.broadcast_to(x.shape)
        if np.all(x.data != 0):
            return out * Cumsum.apply(t / x, axis=self.axis)
        exclusive, rest, upper = self._products(x)
        weighted = (t.moveaxis(self.axis, -1) * exclusive).unsqueeze(-1)
        return (weighted * rest * upper).sum(-2).moveaxis(-1, self.axis)


class Norm(Op):
    r"""y = \sqrt{\sum x^2} over ``axis`` (the Euclidean norm).

    :math:`\bar x = \bar y\, x / y`, taken as 0 where :math:`y = 0` (PyTorch's choice: a
    subgradient, finite instead of 0/0); :math:`\dot y = \sum \dot x\, x / y`.
    """

    name = "norm"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        scale = np.max(np.abs(x), axis=self.axes, keepdims=True) if x.size else 1
        scale = np.where(scale > 0, scale, 1).astype(x.dtype)  # no overflow of x^2 at 1e200
        y = scale * np.sqrt(np.sum((x / scale) ** 2, axis=self.axes, keepdims=True))
        return y if self.keepdims else np.squeeze(y, axis=self.axes)

    def _direction(self, out: Tensor, x: Tensor) -> Tensor:
        kept = out if self.keepdims else out.reshape(kept_shape(x.shape, self.axes))
        return x / where(kept.data == 0, 1.0, kept)

    def vjp(self, g, out, x):
        if not self.keepdims and g.ndim:
            g = g.reshape(kept_shape(x.shape, self.axes))
        return g * self._direction(out, x)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else (t * self._direction(out, x)).sum(self.axes, self.keepdims)
