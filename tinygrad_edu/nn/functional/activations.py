"""Activation functions, as in ``torch.nn.functional`` (same names, arguments and defaults).

Each applies one row of the activation table in :mod:`tinygrad_edu.ops.activations` (or a Tensor
method), so its derivative -- reverse and forward mode -- is the rule written there. All are
finite, with finite gradients, at ``x = +-1000``.
"""

from __future__ import annotations

from ... import ops
from ...tensor import Tensor

__all__ = [
    "celu",
    "elu",
    "gelu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_softmax",
    "logsigmoid",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
]


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def relu(x: Tensor) -> Tensor:
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softmax(x: Tensor, dim: int | tuple[int, ...] = -1) -> Tensor:
    r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``dim`` (or jointly over a tuple of dims; an empty
    input gives an empty output, as in PyTorch)."""
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int | tuple[int, ...] = -1) -> Tensor:
    r""":math:`x_i - \log \sum_j e^{x_j}` along ``dim`` (or jointly over a tuple of dims)."""
    return x.log_softmax(dim)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    r""":math:`x` for :math:`x > 0`, else :math:`s x` (``s`` = ``negative_slope``)."""
    return ops.activations.LeakyReLU.apply(x, negative_slope=negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    r""":math:`x` for :math:`x > 0`, else :math:`\alpha (e^x - 1)`."""
    return ops.activations.ELU.apply(x, alpha=alpha)


def selu(x: Tensor) -> Tensor:
    r""":math:`\lambda\, \mathrm{elu}(x, \alpha)` with the self-normalising constants
    :math:`\alpha \approx 1.6733`, :math:`\lambda \approx 1.0507`."""
    return ops.activations.SELU.apply(x)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    r""":math:`x` for :math:`x > 0`, else :math:`\alpha (e^{x/\alpha} - 1)`."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return ops.activations.CELU.apply(x, alpha=alpha)


def silu(x: Tensor) -> Tensor:
    r""":math:`x\, \sigma(x)` (also called swish)."""
    return ops.activations.SiLU.apply(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    r""":math:`x\, \Phi(x)` with :math:`\Phi` the standard normal CDF (exact, through erf), or
    with ``approximate="tanh"``: :math:`\frac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return ops.activations.GELU.apply(x, approximate=approximate)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    r""":math:`\frac{1}{\beta} \log(1 + e^{\beta x})`, and :math:`x` itself where
    :math:`\beta x > ` ``threshold`` (where the two agree to float precision)."""
    return ops.activations.Softplus.apply(x, beta=beta, threshold=threshold)


def mish(x: Tensor) -> Tensor:
    r""":math:`x \tanh(\mathrm{softplus}(x))`."""
    return ops.activations.Mish.apply(x)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``x`` clamped to ``[min_val, max_val]``; the gradient passes strictly inside."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} is above max_val {max_val}")
    return ops.activations.Hardtanh.apply(x, min_val=min_val, max_val=max_val)


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)``: :func:`hardtanh` on ``[0, 6]``."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: Tensor) -> Tensor:
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between."""
    return ops.activations.Hardsigmoid.apply(x)


def hardswish(x: Tensor) -> Tensor:
    """``x * relu6(x + 3) / 6``."""
    return ops.activations.Hardswish.apply(x)


def logsigmoid(x: Tensor) -> Tensor:
    r""":math:`\log \sigma(x) = -\mathrm{softplus}(-x)`, finite for every ``x``."""
    return ops.activations.LogSigmoid.apply(x)


def softsign(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return ops.activations.Softsign.apply(x)
