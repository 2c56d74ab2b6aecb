"""Accuracy of the transcendental activations, measured in ulps: ``erf``, ``gelu``, ``sigmoid``.

References: ``math.erf`` (C's erf, correctly rounded or within an ulp) and ``1 / (1 + e^-x)``
in x86 extended precision; PyTorch, where installed, for the float32 comparisons. Inputs cover
whole ranges (every 389th float32 in ``[0, 4]``) and hypothesis draws over every float of both
widths: subnormals, ``+-inf``, NaN and ``-0.0`` included. The negative controls at the end
show the sweeps fail on an implementation one coefficient off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.nn import functional as F
from tinygrad_edu.ops import elementwise

#: the worst errors measured (every float32 in [0, 4]; 520,000 float64 values):
ERF_FLOAT64_ULPS = 4.0  # Cody's rational functions: 4 ulp just above |x| = 0.46875
ERF_FLOAT32_ULPS = 0.5 + 1e-6  # computed in float64, then rounded: correctly rounded
SIGMOID_ULPS = {np.float64: 3.0, np.float32: 4.0}  # measured 2.4 and 3.3, subnormals included
FLOAT32_TOP_OF_ERF = np.float32(4.0)  # from here on erf rounds to 1.0 in float32


def _ulps(ours: np.ndarray, reference: np.ndarray, dtype: type) -> np.ndarray:
    """|ours - reference| in units of the last place of ``reference`` rounded to ``dtype``
    (absolute in the subnormal range, where the spacing is constant)."""
    spacing = np.spacing(np.abs(reference.astype(dtype))).astype(np.longdouble)
    return np.abs(ours.astype(np.longdouble) - reference.astype(np.longdouble)) / spacing


def _assert_specials_agree(ours: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """NaN where expected is NaN, the same signed value where it is 0 or infinite; returns
    the mask of the other (finite, nonzero) elements, to be compared in ulps."""
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(ours), nan), (ours, expected)
    exact = ~nan & ((expected == 0) | np.isinf(expected))
    assert np.array_equal(ours[exact], expected[exact])
    assert np.array_equal(np.signbit(ours[exact]), np.signbit(expected[exact]))
    return ~nan & ~exact


def _every_float32(lo: np.float32, hi: np.float32, stride: int) -> np.ndarray:
    """Every ``stride``-th float32 from ``lo`` to ``hi`` (both >= 0), by bit pattern."""
    start, stop = np.array([lo, hi], dtype=np.float32).view(np.int32)
    return np.arange(start, stop + 1, stride, dtype=np.int32).view(np.float32)


_MATH_ERF = np.frompyfunc(math.erf, 1, 1)


def _math_erf(x: np.ndarray) -> np.ndarray:
    return _MATH_ERF(x.astype(np.float64)).astype(np.float64)


def _reference_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) in extended precision: no underflow before 1e-4900."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x.astype(np.longdouble)))


def _float_arrays(dtype: type):
    return arrays(dtype, st.integers(1, 64), elements=st.floats(width=np.dtype(dtype).itemsize * 8))


# ------------------------------------------------------------------------------------------ erf
def erf_float64_worst_ulps(values: np.ndarray) -> float:
    expected = _math_erf(values)
    finite = _assert_specials_agree(elementwise.erf(values), expected)
    ours = elementwise.erf(values)[finite]
    return float(_ulps(ours, expected[finite], np.float64).max(initial=0))


def erf_float32_worst_ulps(stride: int) -> float:
    x = _every_float32(np.float32(0), FLOAT32_TOP_OF_ERF, stride)
    ours = elementwise.erf(x)
    assert ours.dtype == np.float32
    return float(_ulps(ours[1:], _math_erf(x[1:]), np.float32).max())


def test_erf_float64_within_4_ulp_across_its_intervals():
    values = np.concatenate(
        [
            np.linspace(-7, 7, 140_001),
            np.geomspace(1e-310, 6.5, 20_000),
            np.nextafter(0.46875, [-1.0, 0.0, 1.0]),
            [0.46875, -0.46875, 4.0, 5.9, 5.92, 6.0, 1e300],
        ]
    )
    assert erf_float64_worst_ulps(values) <= ERF_FLOAT64_ULPS


def test_erf_float32_is_correctly_rounded_over_every_389th_float32_up_to_4():
    """Sweeping every float32 in [0, 4] (the whole range where erf is not 1.0) measured the
    same 0.50 ulp; PyTorch's float32 erf errs by up to 1.0 ulp there (at x = 3.8325)."""
    assert erf_float32_worst_ulps(stride=389) <= ERF_FLOAT32_ULPS


def test_erf_float32_is_exactly_one_beyond_4():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(4, 100, 10_000), np.geomspace(4, 3e38, 1_000)])
    x = x.astype(np.float32)
    assert np.all(elementwise.erf(x) == 1) and np.all(elementwise.erf(-x) == -1)


@given(_float_arrays(np.float64))
def test_erf_float64_on_any_float64(x):
    assert erf_float64_worst_ulps(x) <= ERF_FLOAT64_ULPS
    assert np.array_equal(elementwise.erf(-x), -elementwise.erf(x), equal_nan=True)  # odd


@given(_float_arrays(np.float32))
def test_erf_float32_on_any_float32(x):
    ours = Tensor(x).erf().data
    assert ours.dtype == np.float32
    expected = _math_erf(x)
    finite = _assert_specials_agree(ours, expected.astype(np.float32))
    assert _ulps(ours[finite], expected[finite], np.float32).max(initial=0) <= ERF_FLOAT32_ULPS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_agrees_with_pytorch(dtype):
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.linspace(-6, 6, 20_001), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    x = x.astype(dtype)
    ours, theirs = elementwise.erf(x), torch.erf(torch.from_numpy(x)).numpy()
    finite = _assert_specials_agree(ours, theirs)
    # both within their own bound of the truth (PyTorch: 1 ulp in float32, ~1 in float64)
    bound = 1.5 if dtype == np.float32 else ERF_FLOAT64_ULPS + 1
    assert _ulps(ours[finite], theirs[finite], dtype).max() <= bound


# ------------------------------------------------------------------------------------------ gelu
def _reference_gelu(x: np.ndarray, approximate: str) -> tuple[np.ndarray, np.ndarray]:
    """gelu(x) and gelu'(x) in float64 from C's erf, exp and tanh, one value at a time."""
    k, c = math.sqrt(2 / math.pi), 0.044715
    values, slopes = [], []
    for v in x.astype(np.float64).ravel():
        if approximate == "tanh":
            t = math.tanh(k * (v + c * v**3))
            values.append(0.5 * v * (1 + t))
            slopes.append(0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * c * v * v))
        else:
            cdf = 0.5 * (1 + math.erf(v / math.sqrt(2)))
            values.append(v * cdf)
            slopes.append(cdf + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi))
    return np.reshape(values, x.shape), np.reshape(slopes, x.shape)


def _slope_size(x: np.ndarray, slope: np.ndarray, approximate: str) -> np.ndarray:
    """The size of the terms of GELU's slope: ``Phi(x)`` and ``x phi(x)``, of size 1 at most;
    for the tanh form also ``x (1 - t^2) u' / 2``, where ``1 - t^2`` (a difference of numbers
    of size 1) is multiplied by ``x u' / 2``."""
    size = np.abs(slope) + 1
    if approximate == "tanh":
        size += np.abs(x) * (1 + 3 * 0.044715 * x.astype(np.float64) ** 2)
    return size


def _gelu_and_slope(x: np.ndarray, approximate: str) -> tuple[np.ndarray, np.ndarray]:
    t = Tensor(x, requires_grad=True)
    y = F.gelu(t, approximate=approximate)
    (g,) = tg.grad(y, [t], grad_outputs=Tensor(np.ones_like(x)))
    return y.data, g.data


def _assert_close_in_ulps(ours, reference, size, dtype, ulps: float) -> None:
    """``|ours - reference| <= ulps * eps * size``: ``size`` is the magnitude of the terms the
    result is computed from (for x << 0, GELU is ``x/2`` times ``1 + erf``, a difference of
    numbers of size 1, and its slope ``Phi(x) + x phi(x)`` one of numbers of size ``Phi``)."""
    eps = np.finfo(dtype).eps
    err = np.abs(ours.astype(np.float64) - reference)
    excess = err - ulps * eps * size - np.finfo(dtype).smallest_subnormal
    assert np.all(excess <= 0), (np.argmax(excess), err.max())


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(x=arrays(np.float64, st.integers(1, 64), elements=st.floats(-40, 40)))
def test_gelu_and_its_slope_float64_match_the_formulas(approximate, x):
    y, slope = _gelu_and_slope(x, approximate)
    expected_y, expected_slope = _reference_gelu(x, approximate)
    _assert_close_in_ulps(y, expected_y, np.abs(expected_y) + np.abs(x), np.float64, 8)
    _assert_close_in_ulps(
        slope, expected_slope, _slope_size(x, expected_slope, approximate), np.float64, 8
    )


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_forward_and_backward_agree_with_pytorch(approximate):
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.linspace(-12, 12, 48_001), [0.0, -0.0, 1e-30, -1e-40, 30.0]])
    x = x.astype(np.float32)
    y, slope = _gelu_and_slope(x, approximate)
    assert y.dtype == slope.dtype == np.float32
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(xt, approximate=approximate)
    (gt,) = torch.autograd.grad(yt.sum(), [xt])
    expected_y, expected_slope = _reference_gelu(x, approximate)
    sizes = (np.abs(expected_y) + np.abs(x), _slope_size(x, expected_slope, approximate))
    for ours, theirs, expected, size in zip(
        (y, slope), (yt, gt), (expected_y, expected_slope), sizes
    ):
        _assert_close_in_ulps(ours, expected, size, np.float32, 4)  # the truth, in float32 ulps
        _assert_close_in_ulps(theirs.detach().numpy(), expected, size, np.float32, 4)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_to_third_order_and_in_forward_mode(approximate):
    """The fused ``gelu_backward`` differentiates again: second derivatives (reverse and
    forward over reverse) and the third against finite differences, and the second derivative
    against its formula to 1e-13 (finite differences cannot see a constant off by 1e-4)."""
    x = Tensor(np.array([-3.1, -1.2, -0.4, 0.0, 0.3, 1.7, 2.9]), requires_grad=True)

    def slope(x):
        (g,) = tg.grad(F.gelu(x, approximate=approximate).sum(), [x], create_graph=True)
        return g

    assert tg.gradcheck(lambda x: F.gelu(x, approximate=approximate), [x], modes=("rev", "fwd"))
    assert tg.gradgradcheck(lambda x: F.gelu(x, approximate=approximate), [x], modes=("rev", "fwd"))
    assert tg.gradgradcheck(slope, [x])
    (curvature,) = tg.grad(slope(x).sum(), [x])
    np.testing.assert_allclose(
        curvature.data, _reference_curvature(x.data, approximate), rtol=1e-13
    )


def _reference_curvature(x: np.ndarray, approximate: str) -> np.ndarray:
    """gelu''(x): phi(x) (2 - x^2); for the tanh form (1 - t^2) (u' - x t u'^2 + x u''/2)."""
    if approximate == "tanh":
        k, c = math.sqrt(2 / math.pi), 0.044715
        t = np.tanh(k * (x + c * x**3))
        du = k * (1 + 3 * c * x**2)
        return (1 - t * t) * (du - x * t * du * du + 3 * k * c * x * x)
    return np.exp(-x * x / 2) / math.sqrt(2 * math.pi) * (2 - x * x)


# --------------------------------------------------------------------------------------- sigmoid
def sigmoid_worst_ulps(x: np.ndarray) -> float:
    ours = Tensor(x).sigmoid().data
    assert ours.dtype == x.dtype
    expected = _reference_sigmoid(x)
    finite = _assert_specials_agree(ours, expected.astype(x.dtype))
    return float(_ulps(ours[finite], expected[finite], x.dtype.type).max(initial=0))


@pytest.mark.parametrize(("dtype", "lowest"), [(np.float64, -746.0), (np.float32, -104.0)])
def test_sigmoid_keeps_relative_accuracy_down_to_the_smallest_subnormal(dtype, lowest):
    """Across the whole range where sigmoid is neither 0 nor 1, a tiny sigmoid(x) ~ e^x keeps
    its digits (PyTorch's ``1 / (1 + e^-x)`` loses them once e^-x overflows, x < -709 or
    x < -88.7 in float32, and returns 0 for a representable result)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(lowest, 40, 200_000), rng.uniform(-5, 5, 100_000)])
    x = x.astype(dtype)
    assert sigmoid_worst_ulps(x) <= SIGMOID_ULPS[dtype]
    tail = np.array([lowest + 1], dtype=dtype)
    assert 0 < Tensor(tail).sigmoid().item() < np.finfo(dtype).tiny  # a subnormal, not 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_sigmoid_on_any_float(dtype, data):
    x = data.draw(_float_arrays(dtype))
    assert sigmoid_worst_ulps(x) <= SIGMOID_ULPS[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_agrees_with_pytorch_where_pytorch_is_accurate(dtype):
    torch = pytest.importorskip("torch")
    edge = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e30, -1e30]
    x = np.concatenate([np.linspace(-80, 80, 40_001), edge]).astype(dtype)
    ours, theirs = Tensor(x).sigmoid().data, torch.sigmoid(torch.from_numpy(x)).numpy()
    finite = _assert_specials_agree(ours, theirs)
    assert _ulps(ours[finite], theirs[finite], dtype).max() <= SIGMOID_ULPS[dtype] + 1


# ------------------------------------------------------------------------- negative controls
@pytest.mark.parametrize("table", ["_ERF_NUM", "_ERFC_NUM"])
def test_the_erf_sweeps_fail_on_a_coefficient_off_in_its_tenth_digit(table, monkeypatch):
    coefficients = list(getattr(elementwise, table))
    coefficients[2] *= 1 + 1e-9
    monkeypatch.setattr(elementwise, table, tuple(coefficients))
    values = np.linspace(-7, 7, 14_001)
    assert erf_float64_worst_ulps(values) > 100 * ERF_FLOAT64_ULPS


def test_the_float32_erf_sweep_fails_on_a_coefficient_off_in_its_sixth_digit(monkeypatch):
    coefficients = list(elementwise._ERFC_NUM)
    coefficients[-1] *= 1 + 1e-6
    monkeypatch.setattr(elementwise, "_ERFC_NUM", tuple(coefficients))
    assert erf_float32_worst_ulps(stride=389) > 2


def test_the_sigmoid_sweep_fails_on_the_textbook_formula(monkeypatch):
    """``1 / (1 + e^-x)`` flushes a representable sigmoid to 0 in the tail: caught."""

    def textbook(x, out):
        with np.errstate(over="ignore"):
            np.divide(1, 1 + np.exp(-x), out=out)

    monkeypatch.setattr(elementwise, "_sigmoid_block", textbook)
    x = np.linspace(-745, 40, 10_001)
    assert sigmoid_worst_ulps(x) > 1e6


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.bool_])
def test_results_keep_pytorchs_dtype(dtype):
    torch = pytest.importorskip("torch")
    values = (np.arange(6) % 3).astype(dtype)
    x, xt = Tensor(values), torch.from_numpy(values)
    assert str(x.erf().dtype) == str(xt.erf().dtype).removeprefix("torch.")
    assert str(x.sigmoid().dtype) == str(xt.sigmoid().dtype).removeprefix("torch.")
    if values.dtype.kind == "f":  # PyTorch has no integer GELU
        for approximate in ("none", "tanh"):
            ours = F.gelu(x, approximate=approximate)
            theirs = torch.nn.functional.gelu(xt, approximate=approximate)
            assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
            np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=np.finfo(dtype).eps)
