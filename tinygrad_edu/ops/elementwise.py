r"""Elementwise ops: one line each, the forward beside its chain rule.

An elementwise op :math:`y = f(x)` has a *diagonal* Jacobian, :math:`\partial y_i / \partial x_i
= f'(x_i)`, so one rule serves both modes of autodiff:

* reverse mode (VJP): :math:`\bar x = \bar y \odot f'(x)`;
* forward mode (JVP): :math:`\dot y = \dot x \odot f'(x)`.

Each row below gives that rule as ``chain(g, x, y)``: "multiply the incoming ``g`` by
:math:`f'(x)`", written with Tensor operations (so it can be differentiated again) and free to
use the output ``y`` (:math:`(e^x)' = e^x = y`). :func:`unary` and :func:`binary` turn a row into
an :class:`~tinygrad_edu.graph.Op`. A binary op :math:`y = f(a, b)` has one rule per input; its
JVP is the sum :math:`\dot y = \dot a\, \partial_a f + \dot b\, \partial_b f`.

Rules are written so that a branch the maths masks out never computes ``0 * inf`` (HIPS
autograd's trick): ``0 ** b`` differentiates ``log`` of a 1 where ``a == 0``, not of 0.
Parameters (``clip``'s bounds) arrive as keyword arguments to both functions.

A rule that is a Tensor method as it stands says so in its row, and
:class:`~tinygrad_edu.tensor.Tensor` takes that method from the table, documented by the row's
maths: ``as_method=FLOATING`` -- ``t.exp()`` applies the rule, integer and boolean tensors
computing in float32 (as in PyTorch) -- or ``as_method=OWN_DTYPE`` -- applied to the tensor as it
is; a binary row names its operator methods, ``as_methods=("__add__", "__radd__")`` (the second
with the operands swapped).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..graph import Op
from ..tensor import Tensor, where
from .common import add_tangents, constant, quiet

Chain = Callable[..., object]
FLOATING, OWN_DTYPE = "floating", "own dtype"  # what a unary rule's Tensor method applies it to


class Elementwise(Op):
    """Base of the table's ops: keyword parameters are kept in ``attrs``.

    ``arity`` -- the number of inputs; ``tensor_methods`` -- the Tensor methods that apply the
    rule (of a binary rule: the method of the left operand, then the reflected one);
    ``floating_input`` -- whether an integer or boolean tensor is first converted to float32 by
    them; ``math`` -- the row's maths.
    """

    attrs: dict = {}  # noqa: RUF012  (read-only default; instances get their own dict)
    arity: int
    tensor_methods: tuple[str, ...] = ()
    floating_input = False
    math = ""

    def __init__(self, **attrs: object) -> None:
        if attrs:
            self.attrs = attrs


def unary(
    name: str,
    forward: Callable[..., np.ndarray],
    chain: Chain,
    math: str,
    replayable: bool = False,
    as_method: str | None = None,
) -> type[Op]:
    """An elementwise op ``y = forward(x)`` whose derivative rule is ``chain(g, x, y)``;
    ``replayable`` says the rule is Tensor ops alone (:attr:`~.graph.Op.replayable_vjp`),
    ``as_method`` whether it is the Tensor method of its name (:data:`FLOATING`,
    :data:`OWN_DTYPE`)."""

    class Unary(Elementwise):
        arity = 1

        def forward(self, x):
            return forward(x, **self.attrs)

        def vjp(self, g, out, x):
            return chain(g, x, out, **self.attrs)

        def jvp(self, tangents, out, x):
            (t,) = tangents
            return None if t is None else chain(t, x, out, **self.attrs)

    if as_method is not None:
        Unary.tensor_methods, Unary.floating_input = (name,), as_method == FLOATING
    return _named(Unary, name, math, replayable)


def binary(
    name: str,
    forward: Callable[..., np.ndarray],
    chain_a: Chain,
    chain_b: Chain,
    math: str,
    replayable: bool = False,
    as_methods: tuple[str, ...] = (),
) -> type[Op]:
    """An elementwise op ``y = forward(a, b)`` with one derivative rule per input, applied by
    the Tensor methods ``as_methods`` (the left operand's, then the reflected one)."""

    class Binary(Elementwise):
        arity = 2

        def forward(self, a, b):
            return forward(a, b)

        def vjp(self, g, out, a, b):
            need_a, need_b = self.needs_input_grad
            return (
                chain_a(g, a, b, out) if need_a else None,
                chain_b(g, a, b, out) if need_b else None,
            )

        def jvp(self, tangents, out, a, b):
            ta, tb = tangents
            return add_tangents(
                None if ta is None else chain_a(ta, a, b, out),
                None if tb is None else chain_b(tb, a, b, out),
            )

    Binary.tensor_methods = as_methods
    return _named(Binary, name, math, replayable)


def _named(cls: type[Elementwise], name: str, math: str, replayable: bool) -> type[Op]:
    cls.name, cls.replayable_vjp, cls.math = name, replayable, math
    cls.__name__ = cls.__qualname__ = "".join(part.title() for part in name.split("_"))
    cls.__doc__ = f"y = {math}"
    return cls


def _sign(x: Tensor) -> np.ndarray:
    """``sign(x)`` as the slope of ``|x|``: 0 at 0 and, as in PyTorch, at NaN."""
    return np.sign(np.nan_to_num(x.data))


def gate(g: Tensor, mask: np.ndarray) -> Tensor:
    """``g`` where ``mask`` holds, 0 elsewhere: the chain rule of a piecewise-linear op whose
    slope is 1 or 0. Not ``g * mask``: like PyTorch, an ``inf`` upstream gives 0 where the slope
    is 0, not ``inf * 0 = NaN``."""
    return where(mask, g, 0.0)


def zero(g: Tensor, *operands: object, **attrs: object) -> Tensor:
    """The chain rule of a piecewise-constant op: a zero gradient (not "no gradient": like
    PyTorch, ``grad(floor(x).sum(), [x])`` is zeros, and an ``inf`` upstream stays no NaN)."""
    return constant(np.zeros(g.shape, g.dtype))


def _inside(x: Tensor, lo: float | None, hi: float | None) -> np.ndarray:
    mask = np.ones(x.shape, dtype=bool)
    if lo is not None:
        mask &= x.data >= lo
    if hi is not None:
        mask &= x.data <= hi
    return mask


def _shared(g: Tensor, a: np.ndarray, b: np.ndarray) -> Tensor:
    """The part of ``g`` that ``maximum(a, b)`` sends to ``a``: none where ``a < b`` (0 even
    for an ``inf`` in ``g``), half at a tie, else all -- NaN included, as in PyTorch."""
    with np.errstate(invalid="ignore"):
        share = np.where(a < b, 0.0, np.where(a == b, 0.5, 1.0)).astype(np.result_type(a, b))
    return gate(g, share > 0) * constant(share)


#: elements per pass of a blocked kernel: a block's temporaries (a few arrays of 64k floats)
#: stay in the CPU's cache, where a chain of whole-array NumPy passes would stream each one
#: through main memory -- three to four times slower for the ~40 passes of ``erf``
BLOCK = 1 << 16


def floating_result(*arrays: np.ndarray) -> np.dtype:
    """The dtype of a floating function of ``arrays``: their own if floating (float16 included,
    as in PyTorch), else NumPy's promotion with float32 (the Tensor methods hand these
    functions integers already converted to float32, as PyTorch computes them)."""
    dtype = np.result_type(*arrays)
    return dtype if dtype.kind == "f" else np.result_type(dtype, np.float32)


def blockwise(kernel: Callable[..., None], *arrays: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``kernel(*blocks, out=block)`` over consecutive blocks of the (broadcast, flattened)
    ``arrays`` converted to ``dtype``: an elementwise computation of many NumPy passes, run
    block by block so its temporaries stay in cache. Returns the result in the arrays' shape,
    of ``dtype`` (float16 is computed in float32, then rounded)."""
    result = np.dtype(dtype)
    if result.itemsize < 4:
        dtype = np.float32
    if len(arrays) > 1 and any(a.shape != arrays[0].shape for a in arrays):
        arrays = np.broadcast_arrays(*arrays)
    shape = arrays[0].shape
    flat = [np.asarray(a, dtype=dtype).reshape(-1) for a in arrays]  # a copy if not contiguous
    out = np.empty(flat[0].size, dtype=dtype)
    if out.size <= BLOCK:  # one block: no slicing
        kernel(*flat, out=out)
        return out.reshape(shape).astype(result, copy=False)
    for start in range(0, out.size, BLOCK):
        part = slice(start, start + BLOCK)
        kernel(*[a[part] for a in flat], out=out[part])
    return out.reshape(shape).astype(result, copy=False)


# W. J. Cody's rational Chebyshev approximations of erf and erfc (Math. Comp. 23, 1969):
# erf x = x P(x^2) / Q(x^2) for |x| <= 0.46875, erfc x = e^(-x^2) P(x) / Q(x) above; relative
# error below 1e-16 in exact arithmetic. Coefficients highest power first. (Cody's third
# interval, x > 4, is for erfc: for erf, the middle one extrapolated to 6 is within 1e-22 of
# erfc, far below float64's half-ulp of 1, and from 6 on erf is 1.0 in float64.)
_ERF_NUM = (1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
            3.77485237685302021e2, 3.20937758913846947e3)  # fmt: skip
_ERF_DEN = (1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
            2.84423683343917062e3)  # fmt: skip
_ERFC_NUM = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
             6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
             1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3)  # fmt: skip
_ERFC_DEN = (1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
             1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
             3.43936767414372164e3, 1.23033935480374942e3)  # fmt: skip
_ERF_SMALL = 0.46875  # the boundary of Cody's first interval
_ERF_SATURATES = 6.0  # from here on erf rounds to 1.0: erfc(6) < 2^-54, half an ulp below 1


def _polynomial(coefficients: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Horner's rule, highest power first, updating one array in place."""
    total = t * coefficients[0]
    for c in coefficients[1:-1]:
        total += c
        total *= t
    total += coefficients[-1]
    return total


def _erf_near_zero(y: np.ndarray) -> np.ndarray:
    """erf y = y P(y^2) / Q(y^2), for 0 <= y <= 0.46875 (NaN-free input)."""
    z = y * y
    ratio = _polynomial(_ERF_NUM, z)
    ratio /= _polynomial(_ERF_DEN, z)
    ratio *= y
    return ratio


def _erf_away_from_zero(y: np.ndarray) -> np.ndarray:
    """erf y = 1 - e^(-y^2) P(y) / Q(y), for y > 0.46875 (inf and NaN included)."""
    y = np.minimum(y, _ERF_SATURATES)  # inf -> erf 1 (P and Q would overflow); NaN stays NaN
    erfc = _polynomial(_ERFC_NUM, y)
    erfc /= _polynomial(_ERFC_DEN, y)
    gauss = y * y
    np.negative(gauss, out=gauss)
    erfc *= np.exp(gauss, out=gauss)
    return np.subtract(1, erfc, out=erfc)


def erf_block(x: np.ndarray, out: np.ndarray) -> None:
    """erf of one contiguous 1-D block into ``out`` (not ``x`` itself), computed in float64
    whatever the block's dtype: each of Cody's two formulas is evaluated only on the elements
    of its interval, gathered into a compact array and scattered back."""
    y = np.abs(x, dtype=np.float64)
    near = y <= _ERF_SMALL
    inner, outer = np.flatnonzero(near), np.flatnonzero(~near)
    with np.errstate(under="ignore"):  # tiny |x|: y^2 underflows harmlessly to 0
        out[inner] = _erf_near_zero(y[inner])
    out[outer] = _erf_away_from_zero(y[outer])
    np.copysign(out, x, out=out)  # erf is odd; keeps -0.0 and the sign of +-inf


def erf(x: np.ndarray) -> np.ndarray:
    r"""The error function :math:`\frac{2}{\sqrt\pi}\int_0^x e^{-t^2} dt`, vectorised (NumPy has
    none), keeping PyTorch's dtypes: float32 in, float32 out (float16 computed in float32).

    Cody's rational approximations, always evaluated in float64: within 4 ulp of the correctly
    rounded erf in float64, and so correctly rounded (0.5 ulp) over every float32 input once
    rounded to float32. (Evaluated in float32 arithmetic they would cost 40% less but err by
    up to 6 float32 ulp near :math:`|x| = 0.47`, where :math:`1 - \mathrm{erfc}` doubles
    erfc's error; PyTorch's float32 erf errs by at most 1 ulp.)
    """
    x = np.asarray(x)
    return blockwise(erf_block, x, dtype=floating_result(x))


def _sigmoid_block(x: np.ndarray, out: np.ndarray) -> None:
    """sigmoid of one block: two exponentials of non-positive arguments, and no branch."""
    denominator = np.copysign(x, -1.0)
    np.exp(denominator, out=denominator)
    denominator += 1  # 1 + e^-|x|
    np.minimum(x, 0, out=out)
    np.exp(out, out=out)  # e^min(x, 0)
    out /= denominator


def sigmoid(x: np.ndarray) -> np.ndarray:
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})` as :math:`e^{\min(x, 0)} / (1 + e^{-|x|})`:
    :math:`1/(1 + e^{-x})` for :math:`x \ge 0` and :math:`e^x/(1 + e^x)` below, so no
    exponential overflows and a tiny :math:`\sigma(x) \approx e^x` keeps its relative
    precision down to the smallest subnormal (where :math:`e^x` itself underflows). A second
    (vectorised) exponential costs less than selecting by the sign of ``x``. NaN stays NaN;
    float32 stays float32."""
    if x.size <= BLOCK and x.dtype.kind == "f" and x.dtype.itemsize >= 4:
        flat = x.reshape(-1)  # one block: none of blockwise's bookkeeping, which would
        out = np.empty_like(flat)  # double the time of a small layer's sigmoid
        _sigmoid_block(flat, out)
        return out.reshape(x.shape)
    return blockwise(_sigmoid_block, x, dtype=floating_result(x))


def _integer_division(fn: Callable[..., np.ndarray], name: str) -> Callable[..., np.ndarray]:
    """``fn`` (``//`` or ``%``) refusing an integer divisor of 0: NumPy silently answers 0
    there, PyTorch raises. Floating divisors give inf/nan quietly, as in PyTorch."""
    silent = quiet(fn)

    def divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.dtype.kind in "biu" and b.dtype.kind in "biu" and not np.all(b):
            raise ZeroDivisionError(
                f"{name}: integer division by zero (PyTorch refuses it too); divide floating "
                "tensors to get inf/nan instead"
            )
        return silent(a, b)

    return divide


# ==================================================================================== the table
# fmt: off
#               name       forward                     chain(g, x, y) = g * dy/dx
Neg     = unary("neg",     np.negative,                lambda g, x, y: -g,
                "-x;  dy/dx = -1", replayable=True)
Exp     = unary("exp",     quiet(np.exp),              lambda g, x, y: g * y,
                "e^x;  dy/dx = e^x = y", replayable=True, as_method=FLOATING)
Log     = unary("log",     quiet(np.log),              lambda g, x, y: g / x,
                "ln x;  dy/dx = 1/x", replayable=True, as_method=FLOATING)
Sqrt    = unary("sqrt",    quiet(np.sqrt),             lambda g, x, y: g / (y * 2),
                "sqrt(x);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2y)", replayable=True, as_method=FLOATING)
Abs     = unary("abs",     np.abs,                     lambda g, x, y: g * _sign(x),
                "|x|;  dy/dx = sign(x), 0 at x = 0 and at NaN as in PyTorch", as_method=OWN_DTYPE)
ReLU    = unary("relu",    lambda x: np.maximum(x, 0), lambda g, x, y: gate(g, ~(x.data <= 0)),
                "max(x, 0);  dy/dx = [not x <= 0]: 0 at x = 0, 1 at NaN, as in PyTorch",
                as_method=OWN_DTYPE)
Sigmoid = unary("sigmoid", sigmoid,                   lambda g, x, y: SigmoidBackward.apply(g, y),
                "1 / (1 + e^-x) = e^min(x, 0) / (1 + e^-|x|);  dy/dx = y (1 - y)",
                replayable=True, as_method=FLOATING)
Tanh    = unary("tanh",    np.tanh,                    lambda g, x, y: TanhBackward.apply(g, y),
                "tanh x;  dy/dx = 1 - y^2", replayable=True, as_method=FLOATING)
Clip    = unary("clip",    lambda x, lo, hi: np.clip(x, lo, hi),
                lambda g, x, y, lo, hi: gate(g, _inside(x, lo, hi)),
                "min(max(x, lo), hi);  dy/dx = [lo <= x <= hi]")

#            name   forward            chain_a(g, a, b, y) = g dy/da  chain_b = g dy/db
Add = binary("add", np.add,            lambda g, a, b, y: g,          lambda g, a, b, y: g,
             "a + b;  dy/da = 1, dy/db = 1", replayable=True, as_methods=("__add__", "__radd__"))
Sub = binary("sub", np.subtract,       lambda g, a, b, y: g,          lambda g, a, b, y: -g,
             "a - b;  dy/da = 1, dy/db = -1", replayable=True, as_methods=("__sub__", "__rsub__"))
Mul = binary("mul", np.multiply,       lambda g, a, b, y: g * b,      lambda g, a, b, y: g * a,
             "a b;  dy/da = b, dy/db = a", replayable=True, as_methods=("__mul__", "__rmul__"))
Div = binary("div", quiet(np.divide),  lambda g, a, b, y: g / b,      lambda g, a, b, y: -g * y / b,
             "a / b;  dy/da = 1/b, dy/db = -a/b^2 = -y/b", replayable=True,
             as_methods=("__truediv__", "__rtruediv__"))
Pow = binary("pow", quiet(np.power),
             lambda g, a, b, y: g * b * a ** where((a.data == 0) & (b.data == 0), 1.0, b - 1),
             lambda g, a, b, y: g * y * where((a.data == 0) & (b.data >= 0), 1.0, a).log(),
             "a^b;  dy/da = b a^(b-1) (0 at a = b = 0), dy/db = a^b ln a (0 at a = 0 <= b)",
             as_methods=("__pow__", "__rpow__"))

# --------------------------------------------------------------- more maths (torch's names)
Sin     = unary("sin",     np.sin,                     lambda g, x, y: g * x.cos(),
                "sin x;  dy/dx = cos x", replayable=True, as_method=FLOATING)
Cos     = unary("cos",     np.cos,                     lambda g, x, y: -g * x.sin(),
                "cos x;  dy/dx = -sin x", replayable=True, as_method=FLOATING)
Tan     = unary("tan",     np.tan,                     lambda g, x, y: g * (y * y + 1),
                "tan x;  dy/dx = 1 + tan^2 x = 1 + y^2", replayable=True, as_method=FLOATING)
Asin    = unary("asin",    quiet(np.arcsin),           lambda g, x, y: g * (1 - x * x).rsqrt(),
                "arcsin x;  dy/dx = 1 / sqrt(1 - x^2)", replayable=True, as_method=FLOATING)
Acos    = unary("acos",    quiet(np.arccos),           lambda g, x, y: -g * (1 - x * x).rsqrt(),
                "arccos x;  dy/dx = -1 / sqrt(1 - x^2)", replayable=True, as_method=FLOATING)
Atan    = unary("atan",    np.arctan,                  lambda g, x, y: g / (x * x + 1),
                "arctan x;  dy/dx = 1 / (1 + x^2)", replayable=True, as_method=FLOATING)
Sinh    = unary("sinh",    quiet(np.sinh),             lambda g, x, y: g * x.cosh(),
                "sinh x;  dy/dx = cosh x", replayable=True, as_method=FLOATING)
Cosh    = unary("cosh",    quiet(np.cosh),             lambda g, x, y: g * x.sinh(),
                "cosh x;  dy/dx = sinh x", replayable=True, as_method=FLOATING)
Asinh   = unary("asinh",   np.arcsinh,                 lambda g, x, y: g * (x * x + 1).rsqrt(),
                "arsinh x;  dy/dx = 1 / sqrt(x^2 + 1)", replayable=True, as_method=FLOATING)
Acosh   = unary("acosh",   quiet(np.arccosh),          lambda g, x, y: g * (x * x - 1).rsqrt(),
                "arcosh x;  dy/dx = 1 / sqrt(x^2 - 1)", replayable=True, as_method=FLOATING)
Atanh   = unary("atanh",   quiet(np.arctanh),          lambda g, x, y: g / (1 - x * x),
                "artanh x;  dy/dx = 1 / (1 - x^2)", replayable=True, as_method=FLOATING)
Log2    = unary("log2",    quiet(np.log2),             lambda g, x, y: g / (x * math.log(2)),
                "log2 x;  dy/dx = 1 / (x ln 2)", replayable=True, as_method=FLOATING)
Log10   = unary("log10",   quiet(np.log10),            lambda g, x, y: g / (x * math.log(10)),
                "log10 x;  dy/dx = 1 / (x ln 10)", replayable=True, as_method=FLOATING)
Log1p   = unary("log1p",   quiet(np.log1p),            lambda g, x, y: g / (x + 1),
                "ln(1 + x), accurate for small x;  dy/dx = 1 / (1 + x)", replayable=True,
                as_method=FLOATING)
Exp2    = unary("exp2",    quiet(np.exp2),             lambda g, x, y: g * y * math.log(2),
                "2^x;  dy/dx = 2^x ln 2 = y ln 2", replayable=True, as_method=FLOATING)
Expm1   = unary("expm1",   quiet(np.expm1),            lambda g, x, y: g * (y + 1),
                "e^x - 1, accurate for small x;  dy/dx = e^x = y + 1", replayable=True,
                as_method=FLOATING)
Rsqrt   = unary("rsqrt",   quiet(lambda x: 1 / np.sqrt(x)),
                lambda g, x, y: g * y / x * -0.5,
                "1 / sqrt(x);  dy/dx = -1 / (2 x^(3/2)) = -y / (2x)", replayable=True,
                as_method=FLOATING)
Erf     = unary("erf",     erf,
                lambda g, x, y: g * (x * x * -1).exp() * (2 / math.sqrt(math.pi)),
                "erf x = 2/sqrt(pi) int_0^x e^(-t^2) dt;  dy/dx = 2/sqrt(pi) e^(-x^2)",
                replayable=True, as_method=FLOATING)
Square  = unary("square",  np.square,                  lambda g, x, y: g * x * 2,
                "x^2;  dy/dx = 2x", replayable=True)
Reciprocal = unary("reciprocal", quiet(np.reciprocal), lambda g, x, y: -g * y * y,
                "1 / x;  dy/dx = -1 / x^2 = -y^2", replayable=True, as_method=FLOATING)
# piecewise constant: the derivative is 0 wherever it exists (PyTorch's convention everywhere)
Sign    = unary("sign",    np.sign,                    zero,
                "sign x;  dy/dx = 0", replayable=True)
Floor   = unary("floor",   np.floor,                   zero,
                "floor x;  dy/dx = 0", replayable=True, as_method=OWN_DTYPE)
Ceil    = unary("ceil",    np.ceil,                    zero,
                "ceil x;  dy/dx = 0", replayable=True, as_method=OWN_DTYPE)
Round   = unary("round",   np.round,                   zero,
                "x rounded half to even (like PyTorch);  dy/dx = 0", replayable=True)
Trunc   = unary("trunc",   np.trunc,                   zero,
                "x rounded towards 0;  dy/dx = 0", replayable=True, as_method=OWN_DTYPE)

#                  name        forward             chain_a                 chain_b
Maximum   = binary("maximum",   np.maximum,
                   lambda g, a, b, y: _shared(g, a.data, b.data),
                   lambda g, a, b, y: _shared(g, b.data, a.data),
                   "max(a, b);  dy/da = [a > b] + [a = b]/2 (ties split evenly, like PyTorch)",
                   as_methods=("maximum",))
Minimum   = binary("minimum",   np.minimum,
                   lambda g, a, b, y: _shared(g, b.data, a.data),
                   lambda g, a, b, y: _shared(g, a.data, b.data),
                   "min(a, b);  dy/da = [a < b] + [a = b]/2", as_methods=("minimum",))
Remainder = binary("remainder", _integer_division(np.mod, "remainder"), lambda g, a, b, y: g,
                   lambda g, a, b, y: g * constant(-np.floor(a.data / b.data)),
                   "a - b floor(a/b) (sign of b, like torch.remainder and Python's %);  "
                   "dy/da = 1, dy/db = -floor(a/b)", as_methods=("__mod__", "__rmod__"))
FloorDivide = binary("floor_divide", _integer_division(np.floor_divide, "floor_divide"),
                   zero, zero,
                   "floor(a / b);  dy/da = dy/db = 0", replayable=True,
                   as_methods=("__floordiv__", "__rfloordiv__"))
# fmt: on


# ============================================================================ fused rules and where
class SigmoidBackward(Op):
    r"""z = g\, y (1 - y): sigmoid's chain rule as one op (``y`` is the sigmoid's output).

    One node instead of three, and still differentiable:
    :math:`\partial z / \partial g = y (1 - y)` (the same op again) and
    :math:`\partial z / \partial y = g (1 - 2y)`.
    """

    name = "sigmoid_backward"
    replayable_vjp = True

    def forward(self, g, y):
        return g * y * (1 - y)

    def vjp(self, gz, out, g, y):
        need_g, need_y = self.needs_input_grad
        grad_g = SigmoidBackward.apply(gz, y) if need_g else None
        grad_y = gz * g * (1 - 2 * y) if need_y else None
        return grad_g, grad_y

    def jvp(self, tangents, out, g, y):
        tg, ty = tangents
        return add_tangents(
            None if tg is None else SigmoidBackward.apply(tg, y),
            None if ty is None else ty * g * (1 - 2 * y),
        )


class TanhBackward(Op):
    r"""z = g\, (1 - y^2): tanh's chain rule as one op (``y`` is the tanh output).

    :math:`\partial z / \partial g = 1 - y^2` (the same op again),
    :math:`\partial z / \partial y = -2 g y`.
    """

    name = "tanh_backward"
    replayable_vjp = True

    def forward(self, g, y):
        return g * (1 - y * y)

    def vjp(self, gz, out, g, y):
        need_g, need_y = self.needs_input_grad
        grad_g = TanhBackward.apply(gz, y) if need_g else None
        grad_y = gz * g * y * -2 if need_y else None
        return grad_g, grad_y

    def jvp(self, tangents, out, g, y):
        tg, ty = tangents
        return add_tangents(
            None if tg is None else TanhBackward.apply(tg, y),
            None if ty is None else ty * g * y * -2,
        )


class Where(Op):
    r"""y = x where ``condition`` else z (``condition`` a constant boolean array).

    :math:`\bar x = \bar y\,[c]`, :math:`\bar z = \bar y\,[\lnot c]`; the JVP selects the
    tangents the same way.
    """

    name = "where"

    def __init__(self, condition: np.ndarray) -> None:
        self.condition = np.asarray(condition, dtype=bool)

    def forward(self, x, z):
        return np.where(self.condition, x, z)

    def vjp(self, g, out, x, z):
        need_x, need_z = self.needs_input_grad
        zero = constant(np.zeros((), dtype=g.dtype))
        return (
            Where.apply(g, zero, condition=self.condition) if need_x else None,
            Where.apply(zero, g, condition=self.condition) if need_z else None,
        )

    def jvp(self, tangents, out, x, z):
        tx, tz = tangents
        if tx is None and tz is None:
            return None
        zero = constant(np.zeros((), dtype=out.dtype))
        return Where.apply(
            zero if tx is None else tx, zero if tz is None else tz, condition=self.condition
        )


class Cast(Op):
    r"""y = x converted to ``dtype`` (between floating dtypes; others are not differentiable).

    The values do not change (up to rounding), so :math:`\bar x = \bar y` cast back to
    ``x``'s dtype and :math:`\dot y = \dot x` cast to ``dtype``.
    """

    name = "cast"

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def vjp(self, g, out, x):
        return Cast.apply(g, dtype=x.dtype) if g.dtype != x.dtype else g

    def jvp(self, tangents, out, x):
        (t,) = tangents
        if t is None or t.dtype == self.dtype:
            return t
        return Cast.apply(t, dtype=self.dtype)
