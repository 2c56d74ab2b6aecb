r"""Activation functions: one line each, in the same table form as :mod:`.elementwise`.

Each row is ``unary(name, forward, chain, math)`` with ``chain(g, x, y) = g * dy/dx`` written in
Tensor operations (so it differentiates again) and shared by reverse and forward mode.

Every forward is written to stay finite and silent at ``x = +-1000``: exponentials only ever see
non-positive arguments (``expm1(min(x, 0))``, ``logaddexp(0, x)``), and every chain rule
multiplies by bounded factors. Parameters (``negative_slope``, ``alpha``, ``beta``, ...) arrive as
keyword arguments to both functions.
"""

from __future__ import annotations

import math

import numpy as np

from ..graph import Op
from ..tensor import Tensor
from .common import add_tangents, constant
from .elementwise import blockwise, erf_block, floating_result, gate, sigmoid, unary, where

#: the constants of SELU (Klambauer et al., 2017), as PyTorch spells them
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_SELU_SLOPE = SELU_SCALE * SELU_ALPHA  # selu's derivative at 0 from the left
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_K = math.sqrt(2 / math.pi)  # gelu's tanh approximation: tanh(k (x + c x^3))
_TANH_C = 0.044715


def _elu_array(x: np.ndarray, alpha: float, scale: float = 1.0, inner: float = 1.0):
    """``scale * (x if x > 0 else alpha * (e^(x / inner) - 1))`` without overflow."""
    negative = alpha * np.expm1(np.minimum(x, 0) / inner)
    return (scale * np.where(x > 0, x, negative)).astype(x.dtype, copy=False)


def _negative_exp(x):
    """:math:`e^x` where ``x <= 0`` (and 1 elsewhere, never overflowing), in Tensor ops.

    The ELU family's derivative :math:`\alpha e^x` is computed directly, not as ``y + alpha``,
    which loses every digit to cancellation at ``x = -30``.
    """
    return where(x.data > 0, 0.0, x).exp()


def _softplus_array(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    """``log(1 + e^(beta x)) / beta``, linear where ``beta x > threshold`` (like PyTorch)."""
    bx = x * beta
    return np.where(bx > threshold, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)


def _gelu_block(x: np.ndarray, out: np.ndarray) -> None:
    """x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 on one block."""
    erf_block(x * _SQRT_HALF, out)
    out += 1
    out *= x
    out *= 0.5


def _gelu_tanh_block(x: np.ndarray, out: np.ndarray) -> None:
    """x (1 + tanh(k x (1 + c x^2))) / 2 on one block."""
    np.multiply(x, x, out=out)
    out *= _TANH_C
    out += 1
    out *= x
    out *= _TANH_K
    np.tanh(out, out=out)
    out += 1
    out *= x
    out *= 0.5


def _gelu_array(x: np.ndarray, approximate: str) -> np.ndarray:
    block = _gelu_tanh_block if approximate == "tanh" else _gelu_block
    return blockwise(block, x, dtype=floating_result(x))


def _gelu_ratio(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """``y / x``, GELU's ``Phi(x)`` read off its output instead of computed again, and its
    limit 1/2 where ``|x|`` is so small that ``y`` would be subnormal."""
    out.fill(0.5)
    np.divide(y, x, out=out, where=np.abs(x) >= 4 * np.finfo(x.dtype).tiny)


def _gelu_slope_block(g: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """g (Phi(x) + x phi(x)) on one block, Phi(x) = y / x: one exponential per element."""
    _gelu_ratio(x, y, out)
    density = x * x
    density *= -0.5
    np.exp(density, out=density)
    density *= x
    density *= _INV_SQRT_2PI  # x phi(x)
    out += density
    out *= g


def _gelu_tanh_slope_block(g: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """g ((1 + t) / 2 + x (1 - t^2) u' / 2) on one block, t = tanh u, u = k (x + c x^3).

    ``t`` is computed again (a tanh is cheap) rather than read off ``y``: ``1 - t^2`` from
    ``y / x = (1 + t) / 2`` would carry the roundings of ``y`` and of the division, and lose
    four times as many digits to cancellation where ``t`` is near 1."""
    square = x * x
    t = square * _TANH_C
    t += 1
    t *= x
    t *= _TANH_K
    np.tanh(t, out=t)
    half_x_du = square * (3 * _TANH_C)
    half_x_du += 1
    half_x_du *= x
    half_x_du *= 0.5 * _TANH_K  # x u' / 2
    np.multiply(t, t, out=square)
    np.subtract(1, square, out=square)  # 1 - t^2
    half_x_du *= square
    t += 1
    t *= 0.5
    t += half_x_du
    np.multiply(t, g, out=out)


def _gelu_curvature(x: Tensor, approximate: str) -> Tensor:
    """gelu''(x), in Tensor ops (so it differentiates again): phi(x) (2 - x^2) exactly;
    (1 - t^2) (u' - x t u'^2 + x u'' / 2) for the tanh form (u'' = 6 k c x)."""
    if approximate == "tanh":
        t = ((x + x * x * x * _TANH_C) * _TANH_K).tanh()
        du = (x * x * (3 * _TANH_C) + 1) * _TANH_K
        return (1 - t * t) * (du - x * t * du * du + x * x * (3 * _TANH_K * _TANH_C))
    return (x * x * -0.5).exp() * (2 - x * x) * _INV_SQRT_2PI


class GeluBackward(Op):
    r"""z = g\, \mathrm{gelu}'(x): GELU's chain rule as one op, one fused pass over the data.

    :math:`\mathrm{gelu}'(x) = \Phi(x) + x\varphi(x)` (or the tanh form's derivative), with
    :math:`\Phi(x) = y / x` taken from GELU's output ``y`` (a constant input: no erf again;
    the tanh form computes its cheap tanh again);
    differentiable again: :math:`\partial z / \partial g = \mathrm{gelu}'(x)` (the same op) and
    :math:`\partial z / \partial x = g\, \mathrm{gelu}''(x)`,
    :math:`\mathrm{gelu}''(x) = \varphi(x) (2 - x^2)`.
    """

    name = "gelu_backward"

    def __init__(self, approximate: str) -> None:
        self.approximate = approximate

    def forward(self, g, x, y):
        block = _gelu_tanh_slope_block if self.approximate == "tanh" else _gelu_slope_block
        with np.errstate(divide="ignore", invalid="ignore"):  # +-inf / +-inf: NaN, as before
            return blockwise(block, g, x, y, dtype=floating_result(g, x))

    def vjp(self, gz, out, g, x, y):
        need_g, need_x, _ = self.needs_input_grad
        grad_g = GeluBackward.apply(gz, x, y, approximate=self.approximate) if need_g else None
        grad_x = gz * g * _gelu_curvature(x, self.approximate) if need_x else None
        return grad_g, grad_x, None

    def jvp(self, tangents, out, g, x, y):
        tg, tx, _ = tangents
        return add_tangents(
            None if tg is None else GeluBackward.apply(tg, x, y, approximate=self.approximate),
            None if tx is None else tx * g * _gelu_curvature(x, self.approximate),
        )


def _silu_chain(g, x):
    s = x.sigmoid()
    return g * (s * (x * (1 - s) + 1))


def _mish_array(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(np.logaddexp(0, x))


def _mish_chain(g, x, y):
    t = Softplus.apply(x, beta=1.0, threshold=math.inf).tanh()
    return g * (t + x * x.sigmoid() * (1 - t * t))


def _between(x, lo: float, hi: float) -> np.ndarray:
    """The strict inside ``lo < x < hi`` of a hard clamp (PyTorch's gradient mask)."""
    return (x.data > lo) & (x.data < hi)


def _unclamped(x, lo: float, hi: float) -> np.ndarray:
    """``hardtanh``'s gradient mask as PyTorch writes it, ``not (x <= lo or x >= hi)``: the
    strict inside, and NaN (which the clamp passes through)."""
    return ~((x.data <= lo) | (x.data >= hi))


def _hardswish_array(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x + 3, 0, 6) / 6


def _hardswish_chain(g, x, y):
    """0 up to -3, x/3 + 1/2 strictly between, 1 from 3 on: PyTorch's values at the kinks."""
    inside = where(x.data < 3, x / 3 + 0.5, 1.0)
    return g * where(x.data <= -3, 0.0, inside)


# ==================================================================================== the table
# fmt: off
#                   name            forward, then chain(g, x, y) = g * dy/dx
LeakyReLU   = unary("leaky_relu",
                    lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
                    lambda g, x, y, negative_slope:
                        g * constant(np.where(x.data > 0, 1.0, negative_slope).astype(x.dtype)),
                    "x if x > 0 else s x;  dy/dx = 1 or s")
ELU         = unary("elu",        lambda x, alpha: _elu_array(x, alpha),
                    lambda g, x, y, alpha: g * where(~(x.data <= 0), 1.0, _negative_exp(x) * alpha),
                    "x if x > 0 else a (e^x - 1);  dy/dx = 1 or a e^x")
SELU        = unary("selu",       lambda x: _elu_array(x, SELU_ALPHA, SELU_SCALE),
                    lambda g, x, y:
                        g * where(~(x.data <= 0), SELU_SCALE, _negative_exp(x) * _SELU_SLOPE),
                    "scale * elu(x, alpha) with fixed constants;  dy/dx = scale or scale alpha e^x")
CELU        = unary("celu",       lambda x, alpha: _elu_array(x, alpha, inner=alpha),
                    lambda g, x, y, alpha: g * where(~(x.data <= 0), 1.0, _negative_exp(x / alpha)),
                    "x if x > 0 else a (e^(x/a) - 1);  dy/dx = 1 or e^(x/a)")
SiLU        = unary("silu",       lambda x: x * sigmoid(x), lambda g, x, y: _silu_chain(g, x),
                    "x sigmoid(x);  dy/dx = s (1 + x (1 - s)), s = sigmoid(x)", replayable=True)
GELU        = unary("gelu",       _gelu_array,
                    lambda g, x, y, approximate:
                        GeluBackward.apply(g, x, constant(y.data), approximate=approximate),
                    "x Phi(x) (Phi the normal CDF; or its tanh approximation);  "
                    "dy/dx = Phi(x) + x phi(x)")
Softplus    = unary("softplus",   _softplus_array,
                    lambda g, x, y, beta, threshold:
                        g * where(x.data * beta > threshold, 1.0, (x * beta).sigmoid()),
                    "log(1 + e^(b x)) / b, x where b x > threshold;  dy/dx = sigmoid(b x)")
Mish        = unary("mish",       _mish_array, _mish_chain,
                    "x tanh(softplus x);  dy/dx = t + x sigmoid(x) (1 - t^2), t = tanh(softplus x)")
Hardtanh    = unary("hardtanh",   lambda x, min_val, max_val: np.clip(x, min_val, max_val),
                    lambda g, x, y, min_val, max_val: gate(g, _unclamped(x, min_val, max_val)),
                    "min(max(x, lo), hi);  dy/dx = [lo < x < hi]")
Hardsigmoid = unary("hardsigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1),
                    lambda g, x, y: gate(g, _between(x, -3, 3)) / 6,
                    "min(max(x/6 + 1/2, 0), 1);  dy/dx = [-3 < x < 3] / 6")
Hardswish   = unary("hardswish",  _hardswish_array, _hardswish_chain,
                    "x relu6(x + 3) / 6;  dy/dx = 0 (x <= -3), x/3 + 1/2 or 1 (x >= 3)")
LogSigmoid  = unary("logsigmoid", lambda x: -np.logaddexp(0, -x),
                    lambda g, x, y: g * (-x).sigmoid(),
                    "log sigmoid(x) = -softplus(-x);  dy/dx = sigmoid(-x)", replayable=True)
Softsign    = unary("softsign",   lambda x: x / (1 + np.abs(x)),
                    lambda g, x, y: g / ((x.abs() + 1) * (x.abs() + 1)),
                    "x / (1 + |x|);  dy/dx = 1 / (1 + |x|)^2", replayable=True)
# fmt: on
