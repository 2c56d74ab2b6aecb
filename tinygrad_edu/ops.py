r"""The op table: every differentiable operation, its forward beside its VJP.

Read this file top to bottom to see every derivative rule the engine knows. Notation in the
docstrings: the op computes ``y = f(x, ...)``; ``g`` is the gradient flowing in from above,
:math:`\bar y = \partial L / \partial y`; each VJP returns :math:`\bar x = \bar y \, \partial y /
\partial x` for every input (``None`` where an input needs no gradient).

Three rules keep the table short:

* ``forward`` is plain NumPy; ``vjp`` uses only Tensor operations, so backward passes can be
  differentiated again (``grad(..., create_graph=True)``).
* Broadcasting is never undone here. A VJP may return a gradient with the broadcast shape; the
  engine sums it back to the input's shape with :class:`SumTo` (see ``autograd.py``).
* ``out`` (the op's own result, as a Tensor) is passed to every VJP, so rules such as
  :math:`\frac{d}{dx} e^x = e^x` reuse it instead of recomputing.
"""

from __future__ import annotations

import numpy as np

from .graph import Op
from .tensor import Tensor

Axis = int | tuple[int, ...] | None


def constant(array: np.ndarray) -> Tensor:
    """A Tensor the graph treats as a constant (masks and scale factors inside VJPs)."""
    return Tensor._wrap(np.asarray(array))


def _quiet() -> np.errstate:
    """Domain edges (log 0, 1/0, sqrt of a negative) give inf/nan silently, as in PyTorch;
    anomaly mode is the tool that reports them."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a {ndim}-d tensor")
    return tuple(int(a) % max(ndim, 1) for a in axes)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a reduction over ``axes`` with ``keepdims=True``."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# ============================================================================ arithmetic
class Add(Op):
    r"""y = a + b.    :math:`\bar a = \bar y,\ \bar b = \bar y`."""

    name = "add"

    def forward(self, a, b):
        return a + b

    def vjp(self, g, out, a, b):
        return g, g


class Sub(Op):
    r"""y = a - b.    :math:`\bar a = \bar y,\ \bar b = -\bar y`."""

    name = "sub"

    def forward(self, a, b):
        return a - b

    def vjp(self, g, out, a, b):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Op):
    r"""y = a * b.    :math:`\bar a = \bar y\, b,\ \bar b = \bar y\, a`."""

    name = "mul"

    def forward(self, a, b):
        return a * b

    def vjp(self, g, out, a, b):
        need_a, need_b = self.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Div(Op):
    r"""y = a / b.    :math:`\bar a = \bar y / b,\ \bar b = -\bar y\, a / b^2 = -\bar y\, y / b`."""

    name = "div"

    def forward(self, a, b):
        with _quiet():
            return a / b

    def vjp(self, g, out, a, b):
        need_a, need_b = self.needs_input_grad
        return (g / b if need_a else None), (-g * out / b if need_b else None)


class Pow(Op):
    r"""y = a ** b.   :math:`\bar a = \bar y\, b\, a^{b-1},\ \bar b = \bar y\, y \ln a`."""

    name = "pow"

    def forward(self, a, b):
        with _quiet():
            return a**b

    def vjp(self, g, out, a, b):
        need_a, need_b = self.needs_input_grad
        grad_a = g * b * a ** (b - 1) if need_a else None
        grad_b = g * out * a.log() if need_b else None
        return grad_a, grad_b


class Neg(Op):
    r"""y = -x.       :math:`\bar x = -\bar y`."""

    name = "neg"

    def forward(self, x):
        return -x

    def vjp(self, g, out, x):
        return -g


class MatMul(Op):
    r"""y = a @ b (NumPy semantics: 1-d operands, batched and broadcast leading axes).

    For matrices :math:`\bar a = \bar y\, b^T` and :math:`\bar b = a^T \bar y`. A 1-d ``a`` acts as
    a row ``(1, k)`` and a 1-d ``b`` as a column ``(k, 1)``; the VJP restores those axes on ``g``,
    applies the matrix rule, and drops them again. Summing over broadcast batch axes is left to
    the engine.
    """

    name = "matmul"

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


class Linear(Op):
    r"""y = x W^T + b, a fully connected layer as one op (W: ``(out, in)``, x: ``(..., in)``).

    The same maths as ``x @ W.T + b``, fused so that a layer costs one node instead of three:
    :math:`\bar x = \bar y W`, :math:`\bar W = \bar y^T x` and :math:`\bar b = \sum \bar y`, the
    sums running over every leading (batch) axis. ``b`` may be omitted.
    """

    name = "linear"

    def forward(self, x, weight, bias=None):
        y = np.matmul(x, weight.T)
        return y if bias is None else y + bias

    def vjp(self, g, out, x, weight, bias=None):
        need_x, need_weight = self.needs_input_grad[:2]
        grad_x = g @ weight if need_x else None
        grad_weight = grad_bias = None
        if need_weight:
            g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            grad_weight = g2.T @ x2
        if bias is not None and self.needs_input_grad[2]:
            grad_bias = g.sum(axis=tuple(range(g.ndim - 1))) if g.ndim > 1 else g
        return grad_x, grad_weight, grad_bias


# ============================================================================ elementwise
class Abs(Op):
    r"""y = |x|.      :math:`\bar x = \bar y\,\mathrm{sign}(x)` (0 at x = 0)."""

    name = "abs"

    def forward(self, x):
        return np.abs(x)

    def vjp(self, g, out, x):
        return g * constant(np.sign(x.data))


class Exp(Op):
    r"""y = e^x.      :math:`\bar x = \bar y\, e^x = \bar y\, y`."""

    name = "exp"

    def forward(self, x):
        with _quiet():
            return np.exp(x)

    def vjp(self, g, out, x):
        return g * out


class Log(Op):
    r"""y = ln x.     :math:`\bar x = \bar y / x`. ``log(0) = -inf`` without a warning."""

    name = "log"

    def forward(self, x):
        with _quiet():
            return np.log(x)

    def vjp(self, g, out, x):
        return g / x


class Sqrt(Op):
    r"""y = sqrt(x).  :math:`\bar x = \bar y / (2\sqrt x) = \bar y / (2y)`."""

    name = "sqrt"

    def forward(self, x):
        with _quiet():
            return np.sqrt(x)

    def vjp(self, g, out, x):
        return g / (out * 2)


class Sigmoid(Op):
    r"""y = 1 / (1 + e^{-x}).   :math:`\bar x = \bar y\, y (1 - y)`, via :class:`SigmoidBackward`.

    The forward is :math:`\exp(-\mathrm{softplus}(-x))` with ``np.logaddexp``: no overflow at
    ``x = -1000`` and full relative precision in both tails.
    """

    name = "sigmoid"

    def forward(self, x):
        return np.exp(-np.logaddexp(0, -x))

    def vjp(self, g, out, x):
        return SigmoidBackward.apply(g, out)


class SigmoidBackward(Op):
    r"""z = g\, y (1 - y): sigmoid's VJP as an op of its own (``y`` is the sigmoid's output).

    One node instead of three, and still differentiable:
    :math:`\partial z / \partial g = y (1 - y)` (the same op again) and
    :math:`\partial z / \partial y = g (1 - 2y)`.
    """

    name = "sigmoid_backward"

    def forward(self, g, y):
        return g * y * (1 - y)

    def vjp(self, gz, out, g, y):
        need_g, need_y = self.needs_input_grad
        grad_g = SigmoidBackward.apply(gz, y) if need_g else None
        grad_y = gz * g * (1 - 2 * y) if need_y else None
        return grad_g, grad_y


class Tanh(Op):
    r"""y = tanh x.   :math:`\bar x = \bar y\, (1 - y^2)`, via :class:`TanhBackward`."""

    name = "tanh"

    def forward(self, x):
        return np.tanh(x)

    def vjp(self, g, out, x):
        return TanhBackward.apply(g, out)


class TanhBackward(Op):
    r"""z = g\, (1 - y^2): tanh's VJP as an op (``y`` is the tanh output).

    :math:`\partial z / \partial g = 1 - y^2` (the same op again),
    :math:`\partial z / \partial y = -2 g y`.
    """

    name = "tanh_backward"

    def forward(self, g, y):
        return g * (1 - y * y)

    def vjp(self, gz, out, g, y):
        need_g, need_y = self.needs_input_grad
        grad_g = TanhBackward.apply(gz, y) if need_g else None
        grad_y = gz * g * y * -2 if need_y else None
        return grad_g, grad_y


class ReLU(Op):
    r"""y = max(x, 0).   :math:`\bar x = \bar y\, [x > 0]` (0 at x = 0, as in PyTorch)."""

    name = "relu"

    def forward(self, x):
        return np.maximum(x, 0)

    def vjp(self, g, out, x):
        return g * constant(x.data > 0)  # float times bool: one pass, no float mask


class Clip(Op):
    r"""y = min(max(x, lo), hi).   :math:`\bar x = \bar y\, [lo \le x \le hi]`."""

    name = "clip"

    def __init__(self, lo: float | None, hi: float | None) -> None:
        if lo is None and hi is None:
            raise ValueError("clip: give lo, hi or both")
        self.lo, self.hi = lo, hi

    def forward(self, x):
        return np.clip(x, self.lo, self.hi)

    def vjp(self, g, out, x):
        inside = np.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x.data >= self.lo
        if self.hi is not None:
            inside &= x.data <= self.hi
        return g * constant(inside.astype(g.dtype))


# ============================================================================ reductions
class Sum(Op):
    r"""y = sum of x over ``axis``.   :math:`\bar x = \bar y` copied along the summed axes."""

    name = "sum"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def vjp(self, g, out, x):
        if not self.keepdims and g.ndim:  # a 0-d or keepdims gradient broadcasts as it is
            g = g.reshape(_kept_shape(x.shape, _axes(self.axis, x.ndim)))
        return g.broadcast_to(x.shape)


class Max(Op):
    r"""y = max of x over ``axis``.

    :math:`\bar x = \bar y\, [x = y] / n` where ``n`` counts the maxima (ties share the
    gradient, like ``torch.amax``); the indicator is a constant, so second derivatives are 0.
    """

    name = "max"

    def __init__(self, axis: Axis, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        axes = _axes(self.axis, x.ndim)
        self.kept_shape = _kept_shape(x.shape, axes)
        kept = x.max(axis=axes, keepdims=True)
        winners = (x == kept).astype(x.dtype)
        self.share = winners / winners.sum(axis=axes, keepdims=True)
        return kept if self.keepdims else np.squeeze(kept, axis=axes)

    def vjp(self, g, out, x):
        return g.reshape(self.kept_shape).broadcast_to(x.shape) * constant(self.share)


class Softmax(Op):
    r"""y_i = e^{x_i} / \sum_j e^{x_j} along ``axis``.

    :math:`\bar x = y \odot (\bar y - \sum_j \bar y_j y_j)`. The forward subtracts the maximum
    first (softmax is shift invariant), so ``x = 1000`` cannot overflow.
    """

    name = "softmax"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        e = np.exp(x - np.max(x, axis=self.axis, keepdims=True))
        return e / np.sum(e, axis=self.axis, keepdims=True)

    def vjp(self, g, out, x):
        weighted = g * out
        return weighted - out * weighted.sum(axis=self.axis, keepdims=True)


class LogSoftmax(Op):
    r"""y_i = x_i - \log \sum_j e^{x_j} along ``axis``.

    :math:`\bar x = \bar y - \mathrm{softmax}(x) \sum_j \bar y_j`, with softmax = e^y. Computed
    as ``z - log(sum(exp(z)))`` with ``z = x - max(x)``: every exponent is <= 0.
    """

    name = "log_softmax"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        z = x - np.max(x, axis=self.axis, keepdims=True)
        return z - np.log(np.sum(np.exp(z), axis=self.axis, keepdims=True))

    def vjp(self, g, out, x):
        return g - out.exp() * g.sum(axis=self.axis, keepdims=True)


# ============================================================================ broadcasting
class SumTo(Op):
    r"""Sum ``x`` down to ``shape``: the adjoint of broadcasting.

    Broadcasting copies values along new leading axes and along axes of size 1; the VJP of a copy
    is a sum, so the gradient of a broadcast input is the upstream gradient summed over exactly
    those axes. The engine applies this in one place for every op.
    :math:`\bar x = ` ``broadcast_to(g, x.shape)``.
    """

    name = "sum_to"

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


class BroadcastTo(Op):
    r"""Broadcast ``x`` to ``shape`` (read-only view).   :math:`\bar x = ` ``g.sum_to(x.shape)``."""

    name = "broadcast_to"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        return np.broadcast_to(x, self.shape)

    def vjp(self, g, out, x):
        return g.sum_to(x.shape)


# ============================================================================ shape
class Reshape(Op):
    r"""Same values, new shape.   :math:`\bar x = ` ``g.reshape(x.shape)``."""

    name = "reshape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def vjp(self, g, out, x):
        return g.reshape(x.shape)


class Transpose(Op):
    r"""Permute axes.   :math:`\bar x = ` ``g`` permuted back by the inverse permutation."""

    name = "transpose"

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def vjp(self, g, out, x):
        return g.transpose(*np.argsort(self.axes).tolist())


def _is_advanced(index) -> bool:
    """Whether an index uses integer/boolean arrays (which may repeat positions)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


def _may_repeat(index, shape: tuple[int, ...]) -> bool:
    """Whether an advanced index can select a position twice (then scatter must accumulate).

    Decided exactly for the common form -- one entry per leading axis, each an int, a slice or an
    integer array -- by checking the (small) index arrays for duplicate coordinates; any other
    form is assumed to repeat.
    """
    parts = index if isinstance(index, tuple) else (index,)
    if len(parts) > len(shape):
        return True
    arrays, sizes = [], []
    for part, size in zip(parts, shape):
        if isinstance(part, (list, np.ndarray)):
            part = np.asarray(part)
            if part.dtype.kind not in "iu":
                return part.dtype.kind != "b" or part.ndim != 1  # a 1-d mask never repeats
            arrays.append(part % size)
            sizes.append(size)
        elif not isinstance(part, (int, np.integer, slice)):
            return True
    coordinates = np.ravel_multi_index(tuple(np.broadcast_arrays(*arrays)), sizes).ravel()
    return np.unique(coordinates).size != coordinates.size


class GetItem(Op):
    r"""y = x[index] (basic slices, integer and boolean arrays).

    :math:`\bar x` is zero except at the selected positions, where the upstream gradient is
    *added* -- an integer array may pick the same element twice. That scatter-add is itself an
    op (:class:`ScatterAdd`), whose VJP is indexing again.
    """

    name = "getitem"

    def __init__(self, index) -> None:
        self.index = index

    def forward(self, x):
        try:
            return x[self.index]
        except IndexError as err:
            raise ValueError(f"index {self.index!r} does not fit: {err}") from None

    def vjp(self, g, out, x):
        return ScatterAdd.apply(g, shape=x.shape, index=self.index, like=x.data)


class ScatterAdd(Op):
    r"""y = zeros(shape); y[index] += x (repeats accumulate).   :math:`\bar x = ` ``g[index]``.

    ``like``, when given, is the array that was indexed: the zeros take its memory order, so the
    gradient keeps the layout of the tensor it belongs to (NHWC activations stay NHWC).
    """

    name = "scatter_add"

    def __init__(self, shape: tuple[int, ...], index, like: np.ndarray | None = None) -> None:
        self.shape, self.index, self.like = shape, index, like

    def forward(self, x):
        if self.like is not None and self.like.shape == self.shape:
            y = np.zeros_like(self.like, dtype=x.dtype)  # keeps its memory order (e.g. NHWC)
        else:
            y = np.zeros(self.shape, dtype=x.dtype)
        if _is_advanced(self.index) and _may_repeat(self.index, self.shape):
            np.add.at(y, self.index, x)  # accumulates repeated positions (slow, so only then)
        else:
            y[self.index] = x
        return y

    def vjp(self, g, out, x):
        return g[self.index]


class Stack(Op):
    r"""y = stack(xs, axis).   :math:`\bar x_i = ` ``g`` taken at position ``i`` along ``axis``."""

    name = "stack"

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


class Concatenate(Op):
    r"""y = concatenate(xs, axis).   :math:`\bar x_i = ` the slice of ``g`` that ``x_i`` filled."""

    name = "concatenate"

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
