r"""Convolution and max pooling as ops of the graph, their VJPs beside them.

Convolution closes under differentiation. For the trilinear form
:math:`T(x, w, y) = \langle \mathrm{conv}(x, w), y \rangle` the three partial derivatives are

* :math:`\partial T / \partial y = \mathrm{conv}(x, w)` -- :class:`Conv2d`,
* :math:`\partial T / \partial x = \mathrm{conv\_transpose}(y, w)` -- :class:`Conv2dInputGrad`,
* :math:`\partial T / \partial w = \mathrm{conv\_weight}(x, y)` -- :class:`Conv2dWeightGrad`,

so the VJP of each is written with the other two, and gradients of gradients work to any order.
Each is linear in each argument, so its JVP is the sum of the op applied with one argument
replaced by its tangent. The arithmetic lives in :mod:`tinygrad_edu.kernels` (the plain sums
in :mod:`tinygrad_edu.kernels.reference`).

The kernels reuse a weight's re-laid-out copies while it is unchanged; they learn when it changes
from the weight tensor's version counter, which every in-place change bumps (:func:`_track`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import Op
from ..kernels import conv as K
from ..kernels import pooling
from .common import add_tangents
from .elementwise import gate

if TYPE_CHECKING:
    from ..tensor import Tensor


class Conv2d(Op):
    r"""y = conv(x, w) + b, NCHW, cross-correlation (no kernel flip), PyTorch weight layout.

    :math:`\bar x = \mathrm{conv\_transpose}(\bar y, w)`,
    :math:`\bar w = \mathrm{conv\_weight}(x, \bar y)`,
    :math:`\bar b = \sum_{n,i,j} \bar y_{n,k,i,j}`. Gradients nobody asked for (weights that
    do not require grad) are not computed.
    """

    name = "conv2d"

    def __init__(self, stride: int, padding: int) -> None:
        self.stride, self.padding = stride, padding

    @property
    def options(self) -> dict:
        return {"stride": self.stride, "padding": self.padding}

    @classmethod
    def apply(cls, x: Tensor, w: Tensor, *bias: Tensor, **attrs: Any) -> Tensor:
        _track(w)
        return super().apply(x, w, *bias, **attrs)

    def forward(self, x, w, b=None):
        return K.conv2d(x, w, self.stride, self.padding, b, relu=False)

    def vjp(self, g, out, x, w, b=None):
        return _conv_vjp(self, g, x, w, b)

    def jvp(self, tangents, out, x, w, b=None):
        return _conv_jvp(self, tangents, x, w, b)


class Conv2dReLU(Conv2d):
    r"""y = relu(conv(x, w) + b): a convolution and the ReLU after it, as one op.

    Same maths as :class:`Conv2d` followed by ``relu``, fewer passes over memory: the bias and
    the ReLU are applied while each chunk of the output is in cache, and the backward pass folds
    the ReLU's mask :math:`[y > 0]` into the copy the input gradient makes anyway
    (:math:`\bar x = \mathrm{conv\_transpose}([y > 0] \odot \bar y, w)`), so no mask array and
    no masked gradient are ever materialised for a frozen network.
    """

    name = "conv2d_relu"

    def forward(self, x, w, b=None):
        return K.conv2d(x, w, self.stride, self.padding, b, relu=True)

    def vjp(self, g, out, x, w, b=None):
        return _conv_vjp(self, g, x, w, b, relu_output=out)

    def jvp(self, tangents, out, x, w, b=None):
        tangent = _conv_jvp(self, tangents, x, w, b)
        return None if tangent is None else gate(tangent, out.data > 0)


def _track(w: Tensor) -> None:
    """Tell the kernels which version counter counts the changes of ``w``'s array (the tensor's
    own: every in-place change bumps it), so they reuse its re-layouts until it changes."""
    K.track(w.data, w._version_counter)


def _conv_vjp(op: Conv2d, g, x, w, b, relu_output=None):
    """The VJP of ``[relu](conv(x, w) + b)``: ``relu_output`` is ``y`` when a ReLU follows."""
    need_x, need_w = op.needs_input_grad[:2]
    need_b = b is not None and op.needs_input_grad[2]
    mask = None if relu_output is None else relu_output.data
    grad_x = (
        Conv2dInputGrad.apply(g, w, input_hw=x.shape[2:], mask=mask, **op.options)
        if need_x
        else None
    )
    if mask is not None and (need_w or need_b):
        g = gate(g, mask > 0)
    grad_w = (
        Conv2dWeightGrad.apply(x, g, kernel_hw=w.shape[2:], stride=op.stride, padding=op.padding)
        if need_w
        else None
    )
    if b is None:
        return grad_x, grad_w
    return grad_x, grad_w, (g.sum(axis=(0, 2, 3)) if need_b else None)


def _conv_jvp(op: Conv2d, tangents, x, w, b):
    """The JVP of ``conv(x, w) + b``: linear in each argument."""
    tx, tw = tangents[:2]
    tb = tangents[2] if b is not None else None
    return add_tangents(
        None if tx is None else Conv2d.apply(tx, w, **op.options),
        None if tw is None else Conv2d.apply(x, tw, **op.options),
        None if tb is None else tb.reshape(1, -1, 1, 1),
    )


class Conv2dInputGrad(Op):
    r"""z = conv_transpose([mask > 0] * g, w): the input gradient of :class:`Conv2d` as an op.

    ``mask`` (an array the shape of ``g``, or ``None``) is the output of a ReLU that followed the
    convolution: :class:`Conv2dReLU`'s backward pass. Linear in ``g`` and in ``w``:
    :math:`\bar g = [mask > 0] \odot \mathrm{conv}(\bar z, w)` and
    :math:`\bar w = \mathrm{conv\_weight}(\bar z, [mask > 0] \odot g)`.
    """

    name = "conv2d_input_grad"

    def __init__(
        self,
        input_hw: tuple[int, int],
        stride: int,
        padding: int,
        mask: np.ndarray | None = None,
    ) -> None:
        self.input_hw, self.stride, self.padding = tuple(input_hw), stride, padding
        self.mask = mask

    @property
    def options(self) -> dict:
        return {"stride": self.stride, "padding": self.padding}

    @classmethod
    def apply(cls, g: Tensor, w: Tensor, **attrs: Any) -> Tensor:
        _track(w)
        return super().apply(g, w, **attrs)

    def forward(self, g, w):
        return K.conv2d_input_grad(g, w, self.input_hw, self.stride, self.padding, self.mask)

    def _masked(self, t):
        return t if self.mask is None else gate(t, self.mask > 0)

    def vjp(self, gz, out, g, w):
        need_g, need_w = self.needs_input_grad
        grad_g = self._masked(Conv2d.apply(gz, w, **self.options)) if need_g else None
        grad_w = (
            Conv2dWeightGrad.apply(
                gz, self._masked(g), kernel_hw=w.shape[2:], stride=self.stride, padding=self.padding
            )
            if need_w
            else None
        )
        return grad_g, grad_w

    def jvp(self, tangents, out, g, w):
        tg, tw = tangents
        options = {"input_hw": self.input_hw, "mask": self.mask, **self.options}
        return add_tangents(
            None if tg is None else Conv2dInputGrad.apply(tg, w, **options),
            None if tw is None else Conv2dInputGrad.apply(g, tw, **options),
        )


class Conv2dWeightGrad(Op):
    r"""z = conv_weight(x, g): the weight gradient of :class:`Conv2d` as an op.

    Linear in ``x`` and in ``g``: :math:`\bar x = \mathrm{conv\_transpose}(g, \bar z)` and
    :math:`\bar g = \mathrm{conv}(x, \bar z)`.
    """

    name = "conv2d_weight_grad"

    def __init__(self, kernel_hw: tuple[int, int], stride: int, padding: int) -> None:
        self.kernel_hw, self.stride, self.padding = tuple(kernel_hw), stride, padding

    def forward(self, x, g):
        return K.conv2d_weight_grad(x, g, self.kernel_hw, self.stride, self.padding)

    def vjp(self, gz, out, x, g):
        need_x, need_g = self.needs_input_grad
        grad_x = (
            Conv2dInputGrad.apply(
                g, gz, input_hw=x.shape[2:], stride=self.stride, padding=self.padding
            )
            if need_x
            else None
        )
        grad_g = Conv2d.apply(x, gz, stride=self.stride, padding=self.padding) if need_g else None
        return grad_x, grad_g

    def jvp(self, tangents, out, x, g):
        tx, tg = tangents
        options = {"kernel_hw": self.kernel_hw, "stride": self.stride, "padding": self.padding}
        return add_tangents(
            None if tx is None else Conv2dWeightGrad.apply(tx, g, **options),
            None if tg is None else Conv2dWeightGrad.apply(x, tg, **options),
        )


class MaxPool2d(Op):
    r"""y = max over each ``k x k`` window (stride ``s``), NCHW.

    :math:`\bar x` routes each :math:`\bar y` to the position that won its window (the first
    maximum, as PyTorch does); that routing is the op :class:`MaxPoolScatter`.
    """

    name = "max_pool2d"

    def __init__(self, kernel: int, stride: int) -> None:
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        y, self.choice = pooling.max_pool2d(x, self.kernel, self.stride)
        return y

    def vjp(self, g, out, x):
        return MaxPoolScatter.apply(g, pool=self, input_shape=x.shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return None if t is None else MaxPoolGather.apply(t, pool=self, input_shape=x.shape)


class MaxPoolScatter(Op):
    r"""z = the pooling gradient: ``g`` written at the winning positions, zeros elsewhere.

    Linear in ``g``; its VJP reads the winning positions back (:class:`MaxPoolGather`).
    """

    name = "max_pool2d_scatter"

    def __init__(self, pool: MaxPool2d, input_shape: tuple[int, ...]) -> None:
        self.pool, self.input_shape = pool, tuple(input_shape)

    def forward(self, g):
        p = self.pool
        return pooling.max_pool2d_scatter(g, p.choice, self.input_shape, p.kernel, p.stride)

    def vjp(self, gz, out, g):
        return MaxPoolGather.apply(gz, pool=self.pool, input_shape=self.input_shape)

    def jvp(self, tangents, out, g):
        (t,) = tangents
        return (
            None
            if t is None
            else MaxPoolScatter.apply(t, pool=self.pool, input_shape=self.input_shape)
        )


class MaxPoolGather(Op):
    r"""z = the values at each window's winning position; adjoint of :class:`MaxPoolScatter`."""

    name = "max_pool2d_gather"

    def __init__(self, pool: MaxPool2d, input_shape: tuple[int, ...]) -> None:
        self.pool, self.input_shape = pool, input_shape

    def forward(self, x):
        return pooling.max_pool2d_gather(x, self.pool.choice, self.pool.kernel, self.pool.stride)

    def vjp(self, gz, out, x):
        return MaxPoolScatter.apply(gz, pool=self.pool, input_shape=self.input_shape)

    def jvp(self, tangents, out, x):
        (t,) = tangents
        return (
            None
            if t is None
            else MaxPoolGather.apply(t, pool=self.pool, input_shape=self.input_shape)
        )
