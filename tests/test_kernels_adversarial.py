"""Adversarial tests of today's kernel changes: the kernel-as-stored convolutions, the bitwise
``select`` and 2x2 max pooling, the worker pool of ``map_chunks``, and ``gate`` (the chain rule
of piecewise-linear ops) against PyTorch and finite differences.

Every comparison is with a reference written here (float64 direct sums, window argmaxes) or with
PyTorch; error bounds are relative to the magnitude of what was summed.
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels import pooling
from tinygrad_edu.kernels.fast import gemm, threads, winograd
from tinygrad_edu.kernels.fast.layout import select
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import EDGE_VALUES

#: roundoff allowed per element, relative to the sum of the magnitudes of its terms
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0)
TIMEOUT = 30.0  # seconds: a kernel that takes longer has deadlocked


# ------------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def workers(count: int):
    """``threads.set_workers(count)`` for the block, the previous count restored after."""
    before = threads.workers()
    threads.set_workers(count)
    try:
        yield
    finally:
        threads.set_workers(before)


@contextlib.contextmanager
def stored_kernel_everywhere():
    """The stored-kernel thresholds lowered so every convolution takes that path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K, "MIN_DIRECT_KERNEL", 1)
        patch.setattr(K, "MAX_DIRECT_PIXELS", 10**9)
        yield patch


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def reference_conv(x, w, stride: int, padding: int) -> np.ndarray:
    """Float64 cross-correlation by a direct sum over the kernel offsets (NCHW)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    _, _, kh, kw = w.shape
    ho = out_size(x.shape[2], kh, stride, padding)
    wo = out_size(x.shape[3], kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for a in range(kh):
        for b in range(kw):
            patch = xp[
                :, :, a : a + stride * (ho - 1) + 1 : stride, b : b + stride * (wo - 1) + 1 : stride
            ]
            y += np.einsum("nchw,kc->nkhw", patch, w[:, :, a, b])
    return y


def reference_input_grad(g, w, input_hw, stride: int, padding: int) -> np.ndarray:
    """Float64 transpose of :func:`reference_conv`: every output scatters ``g * w`` back."""
    g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
    n, _, ho, wo = g.shape
    _, c, kh, kw = w.shape
    h, wd = input_hw
    xp = np.zeros((n, c, h + 2 * padding + stride + kh, wd + 2 * padding + stride + kw))
    for a in range(kh):
        for b in range(kw):
            xp[
                :, :, a : a + stride * (ho - 1) + 1 : stride, b : b + stride * (wo - 1) + 1 : stride
            ] += np.einsum("nkhw,kc->nchw", g, w[:, :, a, b])
    return xp[:, :, padding : padding + h, padding : padding + wd]


def assert_within_roundoff(actual, exact, summed, dtype) -> None:
    """``|actual - exact| <= tol(dtype) * summed`` elementwise, where ``summed`` is the same sum
    over the magnitudes of its terms."""
    assert actual.shape == exact.shape
    error = np.abs(np.asarray(actual, np.float64) - exact)
    bound = TOLERANCE[np.dtype(dtype)] * summed + 1e-300
    worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.size else ()
    assert np.all(error <= bound), (worst, error[worst], bound[worst])


def layout_variant(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values as ``a`` (4-d) in other memory: C/Fortran/NHWC-backed/reversed views."""
    if kind == "c":
        return np.ascontiguousarray(a)
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "nhwc":  # an NCHW view of channels-last memory
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if kind == "reversed":  # a negative-stride view of reversed memory holding the same values
        return np.ascontiguousarray(a[::-1, :, ::-1, ::-1])[::-1, :, ::-1, ::-1]
    if kind == "strided":  # every other element of a bigger array
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        big[::2, ::2, ::2, ::2] = a
        return big[::2, ::2, ::2, ::2]
    raise AssertionError(kind)


LAYOUTS = ("c", "fortran", "nhwc", "reversed", "strided")
FLOATS = (np.float32, np.float64)


# ------------------------------------------------------------ 1. the kernel as stored (gemm.py)
@st.composite
def stored_cases(draw):
    """Any kernel, stride, padding and batch (1-pixel images, one channel included), dtypes of
    the input and weights independently, memory layouts, worker count."""
    n = draw(st.integers(1, 3))
    c, k = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 2, 3, 7]))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), 6))
    wd = draw(st.integers(max(1, kw - 2 * padding), 6))
    return {
        "shape": (n, c, k, kh, kw, h, wd),
        "stride": stride,
        "padding": padding,
        "x_dtype": draw(st.sampled_from(FLOATS)),
        "w_dtype": draw(st.sampled_from(FLOATS)),
        "x_layout": draw(st.sampled_from(LAYOUTS)),
        "w_layout": draw(st.sampled_from(LAYOUTS)),
        "workers": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**16)),
    }


def _draw_arrays(case):
    n, c, k, kh, kw, h, wd = case["shape"]
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((n, c, h, wd)).astype(case["x_dtype"])
    w = rng.standard_normal((k, c, kh, kw)).astype(case["w_dtype"])
    return x, w


@given(stored_cases(), st.booleans(), st.booleans())
def test_stored_kernel_forward_is_the_definition(case, with_bias, relu):
    x, w = _draw_arrays(case)
    stride, padding = case["stride"], case["padding"]
    result = np.result_type(x, w)
    bias = None
    if with_bias:
        bias = np.random.default_rng(case["seed"] + 1).standard_normal(w.shape[0]).astype(result)
    xv, wv = layout_variant(x, case["x_layout"]), layout_variant(w, case["w_layout"])
    x_copy, w_copy = xv.copy(), wv.copy()
    with stored_kernel_everywhere(), workers(case["workers"]):
        assert K.forward_path(w.shape, x.shape, stride, padding) == K.STORED_KERNEL
        y = K.conv2d(xv, wv, stride, padding, bias=bias, relu=relu)
    np.testing.assert_array_equal(xv, x_copy)  # inputs untouched
    np.testing.assert_array_equal(wv, w_copy)
    exact = reference_conv(x, w, stride, padding)
    summed = reference_conv(np.abs(x), np.abs(w), stride, padding)
    if bias is not None:
        exact = exact + bias.reshape(1, -1, 1, 1)
        summed = summed + np.abs(bias).reshape(1, -1, 1, 1)
    if relu:
        exact = np.maximum(exact, 0)
    assert y.dtype == result
    assert_within_roundoff(y, exact, summed, result)
    if relu:
        assert not np.signbit(y).any()  # ReLU gives +0, never -0 or negatives


@given(stored_cases(), st.booleans())
def test_stored_kernel_input_grad_is_the_transpose(case, with_mask):
    """Stride-1 input gradient (the path is only taken for stride 1) with an optional ReLU
    mask: an inf or NaN in ``g`` where ``mask <= 0`` (or ``mask`` NaN) contributes nothing."""
    _, w = _draw_arrays(case)
    padding = case["padding"]
    n, _, k, kh, kw, h, wd = case["shape"]
    ho, wo = out_size(h, kh, 1, padding), out_size(wd, kw, 1, padding)
    rng = np.random.default_rng(case["seed"] + 2)
    g = rng.standard_normal((n, k, ho, wo)).astype(case["x_dtype"])
    mask = None
    clean = g
    if with_mask:
        mask = rng.choice([-1.0, 0.0, -0.0, 1.0, np.nan, 2.5], size=g.shape).astype(g.dtype)
        off = ~(mask > 0)
        clean = np.where(off, 0.0, g)
        poison = rng.choice(np.array([np.inf, -np.inf, np.nan, 1e30], g.dtype), size=g.shape)
        g = np.where(off, poison, g).astype(g.dtype)
    gv, wv = layout_variant(g, case["x_layout"]), layout_variant(w, case["w_layout"])
    g_copy = gv.copy()
    with stored_kernel_everywhere(), workers(case["workers"]):
        assert K.input_grad_path(w.shape, g.shape, (h, wd), 1, padding) == K.STORED_KERNEL
        grad = K.conv2d_input_grad(gv, wv, (h, wd), 1, padding, mask=mask)
    np.testing.assert_array_equal(gv, g_copy)
    exact = reference_input_grad(clean, w, (h, wd), 1, padding)
    summed = reference_input_grad(np.abs(clean), np.abs(w), (h, wd), 1, padding)
    assert grad.dtype == np.result_type(g, w)
    assert np.isfinite(grad).all()
    assert_within_roundoff(grad, exact, summed, grad.dtype)


@given(
    st.sampled_from([(3, 64, 3, 1, 1), (32, 32, 3, 1, 1), (4, 5, 3, 2, 1), (4, 5, 2, 1, 0)]),
    st.sampled_from(FLOATS),
    st.integers(0, 2**16),
)
def test_every_input_grad_path_ignores_inf_and_nan_where_the_mask_is_off(shape, dtype, seed):
    """col2im, Winograd and im2col (stride 2 too): ``g`` poisoned where ``mask <= 0`` or
    NaN gives exactly the result of ``g`` zeroed there."""
    c, k, kh, stride, padding = shape
    rng = np.random.default_rng(seed)
    h = 6
    ho = out_size(h, kh, stride, padding)
    w = rng.standard_normal((k, c, kh, kh)).astype(dtype)
    g = rng.standard_normal((2, k, ho, ho)).astype(dtype)
    mask = rng.choice(np.array([-1.0, 0.0, -0.0, 1.0, np.nan], dtype), size=g.shape)
    off = ~(mask > 0)
    poisoned = np.where(off, rng.choice(np.array(POISON, dtype), size=g.shape), g).astype(dtype)
    clean = np.where(off, 0.0, g).astype(dtype)
    path = K.input_grad_path(w.shape, g.shape, (h, h), stride, padding)
    assert path != K.STORED_KERNEL
    masked = K.conv2d_input_grad(poisoned, w, (h, h), stride, padding, mask=mask)
    plain = K.conv2d_input_grad(clean, w, (h, h), stride, padding)
    np.testing.assert_array_equal(masked, plain)


@given(
    st.sampled_from([(np.float32, np.float32), (np.float32, np.float64), (np.float64, np.float32)]),
    st.booleans(),
    st.integers(1, 3),
)
def test_stored_kernel_with_a_bias_wider_than_the_result(dtypes, relu, stride):
    """A float64 bias on a float32 (or mixed) convolution: the result is float64 and within the
    roundoff of the narrower convolution."""
    x_dtype, w_dtype = dtypes
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((2, 3, 5, 4)).astype(x_dtype)
    w = rng.standard_normal((4, 3, 2, 3)).astype(w_dtype)
    bias = (rng.standard_normal(4) * 1e3 + 1e-9).astype(np.float64)  # needs float64's digits
    with stored_kernel_everywhere(), workers(2):
        y = K.conv2d(x, w, stride, 1, bias=bias, relu=relu)
    exact = reference_conv(x, w, stride, 1) + bias.reshape(1, -1, 1, 1)
    summed = reference_conv(np.abs(x), np.abs(w), stride, 1)
    if relu:
        exact = np.maximum(exact, 0)
    assert y.dtype == np.float64
    narrow = np.result_type(x, w)
    error = np.abs(y - exact)
    assert np.all(error <= TOLERANCE[narrow] * summed + 1e-12 * np.abs(bias).max())


@pytest.mark.parametrize("stored", [True, False])
def test_a_narrower_bias_does_not_narrow_the_result(stored):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3))  # float64
    bias = rng.standard_normal(3).astype(np.float32)
    with stored_kernel_everywhere() if stored else contextlib.nullcontext():
        plain = K.conv2d(x, w, 1, 1)
        biased = K.conv2d(x, w, 1, 1, bias=bias)
    assert plain.dtype == np.float64
    assert biased.dtype == np.result_type(x, w, bias) == np.float64


def test_a_narrower_bias_does_not_narrow_the_public_conv2d():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3))
    bias = rng.standard_normal(3).astype(np.float32)
    xt, wt, bt = Tensor(x), Tensor(w), Tensor(bias)
    assert F.conv2d(xt, wt).dtype == np.float64
    assert F.conv2d(xt, wt, bt).dtype == np.float64


@given(
    st.integers(1, 3),  # n
    st.sampled_from([1, 2, 3, K.MIN_WINOGRAD_CHANNELS]),  # c (enough for Winograd)
    st.sampled_from([1, 2, 5, K.MIN_WINOGRAD_CHANNELS]),  # k
    st.integers(1, 3),  # kernel side
    st.integers(1, 3),  # stride
    st.integers(0, 2),  # padding
    st.integers(1, 5),  # image side
    st.integers(1, 100),  # MIN_DIRECT_KERNEL
    st.integers(1, 60),  # MAX_DIRECT_PIXELS
)
def test_path_names_say_what_runs(n, c, k, side, stride, padding, hw, min_kernel, max_px):
    """``forward_path`` / ``input_grad_path`` name the formulation that is actually called."""
    assume(hw + 2 * padding >= side)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((k, c, side, side)).astype(np.float32)
    ho = out_size(hw, side, stride, padding)
    g = rng.standard_normal((n, k, ho, ho)).astype(np.float32)
    calls: list[str] = []

    def spy(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K, "MIN_DIRECT_KERNEL", min_kernel)
        patch.setattr(K, "MAX_DIRECT_PIXELS", max_px)
        for name in (
            "stored_kernel_conv",
            "stored_kernel_input_grad",
            "im2col_conv",
            "col2im_conv",
        ):
            patch.setattr(gemm, name, spy(name, getattr(gemm, name)))
        patch.setattr(winograd, "conv3x3", spy("winograd", winograd.conv3x3))
        forward = K.forward_path(w.shape, x.shape, stride, padding)
        K.conv2d(x, w, stride, padding)
        backward = K.input_grad_path(w.shape, g.shape, (hw, hw), stride, padding)
        first = len(calls)
        K.conv2d_input_grad(g, w, (hw, hw), stride, padding)
    expected = {
        K.STORED_KERNEL: "stored_kernel_conv",
        "im2col": "im2col_conv",
        K.WINOGRAD: "winograd",
    }
    assert calls[:first] == [expected[forward]]
    expected_back = dict(expected, **{K.STORED_KERNEL: "stored_kernel_input_grad"})
    expected_back["col2im"] = "col2im_conv"
    assert calls[first:] == [expected_back[backward]]
    stored = c * k * side * side >= min_kernel
    assert (forward == K.STORED_KERNEL) == (stored and n * ho * ho <= max_px)
    assert (backward == K.STORED_KERNEL) == (stored and stride == 1 and n * ho * ho <= max_px)


def test_stored_kernel_one_pixel_images_and_a_kernel_bigger_than_the_image():
    """1x1 images under a 3x3 kernel with padding 1 (only the centre tap is read), batch 4."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 1, 1))
    w = rng.standard_normal((5, 3, 3, 3))
    g = rng.standard_normal((4, 5, 1, 1))
    with stored_kernel_everywhere(), workers(3):
        y = K.conv2d(x, w, 1, 1)
        grad = K.conv2d_input_grad(g, w, (1, 1), 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], x[:, :, 0, 0] @ w[:, :, 1, 1].T, rtol=1e-13)
    np.testing.assert_allclose(grad[:, :, 0, 0], g[:, :, 0, 0] @ w[:, :, 1, 1], rtol=1e-13)


# ------------------------------------------------------ 2. select and the 2x2 max pool (bitwise)
def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.itemsize}")


special_floats = st.one_of(
    st.sampled_from((*SPECIALS, 1.0, -1.0, 2.0)),
    st.sampled_from(EDGE_VALUES),
    st.floats(-4, 4, width=16),
)
FLOAT_TYPES = (np.float16, np.float32, np.float64)


@given(
    st.integers(1, 40),
    st.sampled_from(FLOAT_TYPES),
    st.sampled_from(FLOAT_TYPES),
    st.booleans(),
    st.data(),
)
def test_select_keeps_exact_bits_and_puts_plus_zero_elsewhere(size, x_type, out_type, view, data):
    values = data.draw(st.lists(special_floats, min_size=size, max_size=size))
    keep_list = data.draw(st.lists(st.booleans(), min_size=size, max_size=size))
    with np.errstate(over="ignore"):
        x = np.array(values, dtype=x_type)
        expected = np.where(np.array(keep_list), x.astype(out_type), 0.0).astype(out_type)
    keep = np.array(keep_list)
    out = np.full(size, 7.0, dtype=out_type)
    if view:  # reversed and strided views of x, keep and out
        x = np.repeat(x[::-1], 2)[::2][::-1]
        keep = np.repeat(keep[::-1], 2)[::2][::-1]
        big = np.full(2 * size, 7.0, dtype=out_type)
        out = big[::-2][::-1]
    x_before = bits(x).copy()
    with np.errstate(over="ignore"):
        result = select(x, keep, out)
    assert result is out
    np.testing.assert_array_equal(bits(out), bits(expected))
    np.testing.assert_array_equal(bits(x), x_before)  # x itself is never written
    if view:  # the other half of out's memory (the even elements) is untouched
        np.testing.assert_array_equal(big[0::2], 7)


def reference_pool_2x2(x: np.ndarray):
    """Max and first-maximum position (row-major; NaN wins, first NaN first) per 2x2 window."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    win = x[:, :, : 2 * ho, : 2 * wo].reshape(n, c, ho, 2, wo, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(n, c, ho, wo, 4)
    choice = np.argmax(win, axis=-1)
    value = np.take_along_axis(win, choice[..., None], -1)[..., 0]
    return value, choice


@st.composite
def pool_inputs(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    dtype = draw(st.sampled_from(FLOAT_TYPES))
    pool = draw(st.sampled_from([(0.0, -0.0, 1.0), (*SPECIALS, 1.0, -1.0), (1.0, 2.0, 2.0)]))
    values = draw(
        st.lists(
            st.sampled_from(pool) | special_floats, min_size=n * c * h * w, max_size=n * c * h * w
        )
    )
    with np.errstate(over="ignore"):
        x = np.array(values, dtype=dtype).reshape(n, c, h, w)
    layout = draw(st.sampled_from(LAYOUTS))
    return layout_variant(x, layout), draw(st.integers(1, 4))


@contextlib.contextmanager
def pool_threads_everywhere():
    """The pooling kernels' sharing thresholds lowered so tiny inputs are cut into many blocks
    and shared among the workers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pooling, "MIN_SHARED_BYTES", 1)
        patch.setattr(pooling, "POOL_BUDGET", 16)
        yield


@given(pool_inputs(), st.data())
def test_max_pool_2x2_and_its_scatter_are_exact(case, data):
    x, count = case
    n, c, h, w = x.shape
    value, choice = reference_pool_2x2(np.asarray(x))
    ho, wo = h // 2, w // 2
    g_values = data.draw(
        st.lists(special_floats, min_size=n * c * ho * wo, max_size=n * c * ho * wo)
    )
    with np.errstate(over="ignore"):
        g = np.array(g_values, dtype=x.dtype).reshape(n, c, ho, wo)
    g_view = layout_variant(g, data.draw(st.sampled_from(LAYOUTS)))
    results = []
    for k in (1, count):
        with pool_threads_everywhere(), workers(k):
            y, got = pooling.max_pool2d(x, 2, 2)
            scattered = pooling.max_pool2d_scatter(g_view, got, x.shape, 2, 2)
        results.append((y, got, scattered))
    y, got, scattered = results[0]
    assert y.shape == (n, c, ho, wo) and y.dtype == x.dtype
    np.testing.assert_array_equal(got, choice.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y, value)  # NaN where a NaN won; -0.0 == +0.0 ties
    # the scatter: g's exact bits at the winner, +0.0 (all bits clear) everywhere else
    expected = np.zeros(x.shape, x.dtype)
    for p in range(4):
        r, q = divmod(p, 2)
        expected[:, :, r : 2 * ho : 2, q : 2 * wo : 2] = np.where(choice == p, g, 0.0)
    np.testing.assert_array_equal(bits(scattered), bits(expected))
    for other, one in zip(results[1], results[0]):  # many workers: the same bits
        np.testing.assert_array_equal(bits(other), bits(one))


def test_max_pool_nan_first_in_row_major_order_wins():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], np.float32)
    y, choice = pooling.max_pool2d(x, 2, 2)
    assert np.isnan(y).all() and choice.ravel().tolist() == [1]
    x = np.array([[[[np.inf, 1.0], [np.nan, np.inf]]]], np.float64)
    assert pooling.max_pool2d(x, 2, 2)[1].ravel().tolist() == [2]
    x = np.array([[[[-np.inf, -np.inf], [-np.inf, -np.inf]]]], np.float16)
    y, choice = pooling.max_pool2d(x, 2, 2)
    assert y.ravel().tolist() == [-np.inf] and choice.ravel().tolist() == [0]


# ---------------------------------------------------------------------- 3. threads.map_chunks
def blas_threads() -> list[int]:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [
        lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
    ]


def run_in_thread(target, timeout: float = TIMEOUT) -> list:
    """``target()`` in a daemon thread; its result (or exception) in a list. Fails the test if
    it has not finished after ``timeout`` seconds (a deadlock)."""
    outcome: list = []

    def body():
        try:
            outcome.append(("ok", target()))
        except BaseException as error:
            outcome.append(("error", error))

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{target} did not finish within {timeout} s (deadlock)"
    return outcome


@pytest.fixture
def parallel():
    pytest.importorskip("threadpoolctl")
    before = threads.workers()
    yield threads.set_workers
    threads.set_workers(before)


def test_concurrent_callers_each_get_all_their_jobs_run_once(parallel):
    parallel(3)
    results: dict[int, list] = {}

    def caller(index: int) -> None:
        seen: list[int] = []
        lock = threading.Lock()
        for round_ in range(20):
            jobs = list(range(index * 1000 + round_ * 10, index * 1000 + round_ * 10 + 7))

            def run(share, seen=seen, lock=lock):
                time.sleep(0.0005)
                with lock:
                    seen.extend(share)

            threads.map_chunks(run, jobs)
        results[index] = seen

    callers = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(TIMEOUT)
        assert not t.is_alive(), "concurrent map_chunks deadlocked"
    for index in range(4):
        expected = [index * 1000 + r * 10 + j for r in range(20) for j in range(7)]
        assert sorted(results[index]) == expected


def test_set_workers_from_another_thread_while_kernels_run(parallel):
    """Kernels on the stored-kernel path (output channels always shared) keep giving the right
    result while another thread changes the worker count between 2 and 4; nothing deadlocks,
    and once everything is idle the replaced pools' threads are gone."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 4, 4))
    w = rng.standard_normal((8, 3, 3, 3))
    exact = reference_conv(x, w, 1, 1)
    parallel(2)
    stop = threading.Event()
    errors: list[float] = []

    def compute():
        while not stop.is_set():
            errors.append(np.abs(K.conv2d(x, w, 1, 1) - exact).max())

    def toggle():
        for count in [2, 3, 4, 3, 2, 4] * 10:  # not 1: its race has its own test below
            threads.set_workers(count)
            time.sleep(0.001)
        stop.set()

    # patched once, here: two threads patching and restoring a module global would interleave
    # and could leave the lowered thresholds behind for every later test
    with stored_kernel_everywhere():
        computers = [threading.Thread(target=compute, daemon=True) for _ in range(2)]
        for t in computers:
            t.start()
        run_in_thread(toggle)
        for t in computers:
            t.join(TIMEOUT)
            assert not t.is_alive(), "a kernel deadlocked while set_workers ran"
    assert errors and max(errors) < 1e-12
    parallel(2)
    threads.map_chunks(lambda share: None, [0, 1])  # the current pool: one worker
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _pool_threads() > 1:
        time.sleep(0.01)
    assert _pool_threads() == 1 and not threads._retired


def _pool_threads() -> int:
    return sum(t.name.startswith("tinygrad_edu_") and t.is_alive() for t in threading.enumerate())


def test_set_workers_to_one_racing_a_starting_kernel_does_not_deadlock(parallel):
    parallel(3)
    original = threads._enter_parallel

    def late_enter(*args):  # another thread's set_workers(1) lands in the race window
        other = threading.Thread(target=threads.set_workers, args=(1,))
        other.start()
        other.join()
        return original(*args)

    ran: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threads, "_enter_parallel", late_enter)
        try:
            run_in_thread(lambda: threads.map_chunks(ran.extend, [0, 1, 2]), timeout=3)
        finally:  # unstick the waiting caller: serve the zero-thread pool's queue once
            stuck = threads._pool
            if stuck is not None and stuck.count == 0:
                threading.Thread(target=stuck._serve, daemon=True).start()
                stuck.tasks.put(None)
                deadline = time.monotonic() + 5
                while threads._active and time.monotonic() < deadline:
                    time.sleep(0.01)
    assert sorted(ran) == [0, 1, 2]


@pytest.mark.parametrize("failing", [(0,), (0, 2), (1,), (2, 1), (1, 2)])
def test_the_first_exception_in_share_order_after_all_shares_finished(parallel, failing):
    parallel(3)
    finished: list[int] = []
    lock = threading.Lock()
    before = blas_threads()

    def run(share):
        index = share[0]  # jobs 0, 1, 2: one per share, share i holds job i
        if index not in failing:
            time.sleep(0.05)  # finish late: the raise must wait for it
        with lock:
            finished.append(index)
        if index in failing:
            raise ValueError(index)

    outcome = run_in_thread(lambda: threads.map_chunks(run, [0, 1, 2]))
    kind, error = outcome[0]
    assert kind == "error" and isinstance(error, ValueError)
    assert error.args == (min(failing),)
    assert sorted(finished) == [0, 1, 2]
    assert blas_threads() == before  # BLAS's thread count restored after a failure too


def test_the_callers_share_runs_in_the_caller_and_nested_calls_run_serially(parallel):
    parallel(4)
    before = blas_threads()
    record: dict[int, tuple] = {}
    lock = threading.Lock()

    def outer(share):
        inner_threads: list = []

        def inner(inner_share):
            inner_threads.append((threading.get_ident(), list(inner_share)))

        threads.map_chunks(inner, list(range(10)))
        with lock:
            record[share[0]] = (threading.get_ident(), inner_threads, blas_threads())

    caller = threading.get_ident()
    threads.map_chunks(outer, [0, 1, 2, 3])
    assert sorted(record) == [0, 1, 2, 3]
    assert record[0][0] == caller  # share 0 runs in the calling thread
    assert all(record[i][0] != caller for i in (1, 2, 3))  # the others in pool workers
    for ident, inner_threads, blas in record.values():
        # nested: one call with all ten jobs, in the share's own thread
        assert inner_threads == [(ident, list(range(10)))]
        assert all(n == 1 for n in blas)  # BLAS limited to one thread while shares run
    assert blas_threads() == before
    # after a nested call the caller is not mistaken for a worker: the next call is parallel
    idents: set = set()
    threads.map_chunks(lambda share: (idents.add(threading.get_ident()), time.sleep(0.01)), [0, 1])
    assert len(idents) == 2


# ------------------------------------------ 4. gate: piecewise-linear chain rules vs PyTorch
#: name: (ours, PyTorch's given the torch module): unary ops whose slope is 0 or a constant
GATED = {
    "relu": (lambda x: x.relu(), lambda torch, x: x.relu()),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda torch, x: x.clamp(-1.0, 1.0)),
    "clip_lo": (lambda x: x.clip(0.0), lambda torch, x: x.clamp(min=0.0)),
    "hardtanh": (
        lambda x: F.hardtanh(x, -1.0, 1.0),
        lambda torch, x: torch.nn.functional.hardtanh(x),
    ),
    "relu6": (lambda x: F.relu6(x), lambda torch, x: torch.nn.functional.relu6(x)),
    "hardsigmoid": (
        lambda x: F.hardsigmoid(x),
        lambda torch, x: torch.nn.functional.hardsigmoid(x),
    ),
}
#: finite inputs on and around every kink of the ops above, and infinities
KINKS = (0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -2.0, 7.0, 1e-30, np.inf, -np.inf)
POISON = (np.inf, -np.inf, np.nan, -0.0, 0.0, 1.5, -2.0, 3e38)  # 3e38: near float32's max


def torch_grad(torch, fn, arrays, g):
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(torch.tensor(g))
    return [leaf.grad.numpy() for leaf in leaves]


def assert_same_floats(ours, theirs, rtol: float = 0.0) -> None:
    """NaN, inf and zeros (with their sign) in the same places; equal values elsewhere (within
    ``rtol``)."""
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0)


@given(
    st.sampled_from(sorted(GATED)),
    st.sampled_from(FLOATS),
    st.integers(1, 12),
    st.data(),
)
def test_gated_ops_route_inf_and_nan_like_pytorch(name, dtype, size, data):
    torch = pytest.importorskip("torch")
    x = np.array(data.draw(st.lists(st.sampled_from(KINKS), min_size=size, max_size=size)), dtype)
    g = np.array(data.draw(st.lists(st.sampled_from(POISON), min_size=size, max_size=size)), dtype)
    ours_fn, torch_fn = GATED[name]
    xt = Tensor(x, requires_grad=True)
    (ours,) = tg.grad(ours_fn(xt), [xt], grad_outputs=g)
    (theirs,) = torch_grad(torch, lambda t: torch_fn(torch, t), [x], g)
    # PyTorch multiplies by a float32 1/6, even in float64 (0.25 -> 0.25000000745): 2 ulp
    assert_same_floats(ours.data, theirs, rtol=2.5e-7 if name == "hardsigmoid" else 0.0)


@given(st.sampled_from(sorted(GATED)), st.sampled_from(FLOATS), st.integers(1, 12), st.data())
def test_gated_ops_forward_mode_routes_inf_and_nan_like_pytorch(name, dtype, size, data):
    """The same gate in forward mode: an inf or NaN tangent where the slope is 0 gives +0."""
    torch = pytest.importorskip("torch")
    x = np.array(data.draw(st.lists(st.sampled_from(KINKS), min_size=size, max_size=size)), dtype)
    t = np.array(data.draw(st.lists(st.sampled_from(POISON), min_size=size, max_size=size)), dtype)
    ours_fn, torch_fn = GATED[name]
    _, ours = tg.jvp(ours_fn, [Tensor(x)], [Tensor(t)])
    _, theirs = torch.func.jvp(lambda a: torch_fn(torch, a), (torch.tensor(x),), (torch.tensor(t),))
    assert_same_floats(ours.data, theirs.numpy(), rtol=2.5e-7 if name == "hardsigmoid" else 0.0)


@given(st.sampled_from(["maximum", "minimum"]), st.sampled_from(FLOATS), st.data())
def test_maximum_minimum_route_inf_and_nan_like_pytorch(name, dtype, data):
    """Ties split the gradient in half; the losing side gets +0 even for an inf or NaN."""
    torch = pytest.importorskip("torch")
    size = data.draw(st.integers(1, 12))
    values = st.lists(st.sampled_from((0.0, -0.0, 1.0, -1.0, np.inf, -np.inf)), min_size=size,
                      max_size=size)  # fmt: skip
    a, b = (np.array(data.draw(values), dtype) for _ in range(2))
    g = np.array(data.draw(st.lists(st.sampled_from(POISON), min_size=size, max_size=size)), dtype)
    at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ours = tg.grad(getattr(at, name)(bt), [at, bt], grad_outputs=g)
    theirs = torch_grad(torch, getattr(torch, name), [a, b], g)
    for mine, other in zip(ours, theirs):
        assert_same_floats(mine.data, other)


@st.composite
def conv_relu_cases(draw):
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh = draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    h = draw(st.integers(max(1, kh - 2 * padding), 5))
    return n, c, k, kh, stride, padding, h, draw(st.integers(0, 2**16)), draw(st.booleans())


def conv_relu_arrays(case, dtype) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """The generator of a :func:`conv_relu_cases` case and the ``x, w, b`` it drew first."""
    n, c, k, kh, _, _, h, seed, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, h)).astype(dtype)
    w = rng.standard_normal((k, c, kh, kh)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return rng, x, w, b


@given(conv_relu_cases(), st.sampled_from(FLOATS))
def test_conv2d_relu_with_inf_and_nan_where_the_relu_is_off_matches_pytorch(case, dtype):
    """Upstream inf/NaN where ``relu`` output 0 reach neither x, w nor b (PyTorch's
    threshold_backward), on the default and on the stored-kernel path."""
    torch = pytest.importorskip("torch")
    n, _, k, kh, stride, padding, h, _, stored = case
    rng, x, w, b = conv_relu_arrays(case, dtype)
    ho = out_size(h, kh, stride, padding)
    pre = reference_conv(x, w, stride, padding) + b.reshape(1, -1, 1, 1)
    g = rng.standard_normal((n, k, ho, ho)).astype(dtype)
    g = np.where(pre <= 0, rng.choice(np.array(POISON, dtype), size=g.shape), g).astype(dtype)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    with stored_kernel_everywhere() if stored else contextlib.nullcontext(), workers(2):
        out = F.conv2d_relu(*inputs, stride, padding)
        ours = tg.grad(out, inputs, grad_outputs=g)
    theirs = torch_grad(
        torch,
        lambda a, v, c_: torch.nn.functional.conv2d(a, v, c_, stride, padding).relu(),
        [x, w, b],
        g,
    )
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for mine, other in zip(ours, theirs):
        assert mine.dtype == other.dtype and np.isfinite(mine.data).all()
        scale = np.abs(other).max() + 1e-30
        np.testing.assert_allclose(mine.data, other, rtol=0, atol=rtol * scale)


@given(conv_relu_cases(), st.sampled_from(FLOATS), st.sampled_from([np.inf, -np.inf]))
def test_conv2d_relu_forward_mode_with_an_infinite_tangent_matches_pytorch(case, dtype, inf):
    """One infinite input pixel in the tangent: outputs it reaches get an infinite tangent,
    except where the ReLU is off, which get +0 (PyTorch's relu JVP), on both paths."""
    torch = pytest.importorskip("torch")
    n, c, _, _, stride, padding, h, _, stored = case
    rng, x, w, b = conv_relu_arrays(case, dtype)
    tx = rng.standard_normal(x.shape).astype(dtype)
    tx[rng.integers(n), rng.integers(c), rng.integers(h), rng.integers(h)] = inf
    path = stored_kernel_everywhere() if stored else contextlib.nullcontext()
    with path, workers(2), np.errstate(invalid="ignore"):  # inf arithmetic is the point
        _, ours = tg.jvp(
            lambda a: F.conv2d_relu(a, Tensor(w), Tensor(b), stride, padding), [Tensor(x)], [tx]
        )
    _, theirs = torch.func.jvp(
        lambda a: torch.nn.functional.conv2d(
            a, torch.tensor(w), torch.tensor(b), stride, padding
        ).relu(),
        (torch.tensor(x),),
        (torch.tensor(tx),),
    )
    theirs = theirs.numpy()
    ours = ours.data
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    finite = np.isfinite(theirs)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(theirs[finite]).max(initial=0) + 1e-30
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=0, atol=rtol * scale)
    np.testing.assert_array_equal(ours[theirs == 0] == 0, True)


def _away_from(values: np.ndarray, kinks, margin: float = 1e-2) -> bool:
    return all(np.abs(values - kink).min() > margin for kink in kinks) if values.size else True


SMOOTH_PARTNERS = {  # f(x) times something smooth, so the second derivative is not all zero
    "relu": ((0.0,), lambda x: x.relu() * x.sin()),
    "clip": ((-1.0, 1.0), lambda x: x.clip(-1.0, 1.0) * x.exp()),
    "hardtanh": ((-1.0, 1.0), lambda x: F.hardtanh(x, -1.0, 1.0) * x * x),
    "hardsigmoid": ((-3.0, 3.0), lambda x: F.hardsigmoid(x) * x.cos()),
    "maximum": ((0.5,), lambda x: x.maximum(0.5) * x.tanh()),
    "minimum": ((-0.5,), lambda x: x.minimum(x * 0 - 0.5) * x.sin()),
}


@given(
    st.sampled_from(sorted(SMOOTH_PARTNERS)),
    st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=6),
)
def test_gated_ops_second_order_match_finite_differences(name, values):
    kinks, fn = SMOOTH_PARTNERS[name]
    x = np.array(values)
    assume(_away_from(x, kinks))
    assert tg.gradgradcheck(fn, [Tensor(x, requires_grad=True)], modes=("rev", "fwd"))


@given(conv_relu_cases())
def test_conv2d_relu_second_order_on_the_stored_kernel_path(case):
    n, c, k, kh, stride, padding, h, seed, stored = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, c, h, h)), rng.standard_normal((k, c, kh, kh))
    b = rng.standard_normal(k)
    pre = reference_conv(x, w, stride, padding) + b.reshape(1, -1, 1, 1)
    assume(np.abs(pre).min() > 1e-2)  # away from the ReLU's kink

    def fn(x, w, b):  # squared, so the Hessian of x and w is not zero
        y = F.conv2d_relu(x, w, b, stride, padding)
        return y * y

    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    with stored_kernel_everywhere() if stored else contextlib.nullcontext(), workers(2):
        assert tg.gradgradcheck(fn, inputs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("last_out", ["first_in", "second_in"])
def test_blas_limit_spans_overlapping_kernels_and_is_restored_by_the_last_out(parallel, last_out):
    """Two callers overlap; BLAS stays on one thread until the last one leaves, and that one
    restores it even when the limit was set from the other thread."""
    parallel(2)
    before = blas_threads()
    blas_has_threads = bool(before) and max(before) > 1
    release = {name: threading.Event() for name in ("first_in", "second_in")}
    entered = {name: threading.Event() for name in ("first_in", "second_in")}

    def caller(name):
        def run(share):  # the caller's own share waits; the worker's is free for the other
            if share == [0]:
                entered[name].set()
                assert release[name].wait(TIMEOUT)

        threads.map_chunks(run, [0, 1])

    first = threading.Thread(target=caller, args=("first_in",), daemon=True)
    first.start()
    assert entered["first_in"].wait(TIMEOUT)
    second = threading.Thread(target=caller, args=("second_in",), daemon=True)
    second.start()
    assert entered["second_in"].wait(TIMEOUT)
    early, late = ("second_in", "first_in") if last_out == "first_in" else ("first_in", "second_in")
    release[early].set()
    (first if early == "first_in" else second).join(TIMEOUT)
    assert not (first if early == "first_in" else second).is_alive()
    assert all(n == 1 for n in blas_threads())  # the other kernel still runs
    release[late].set()
    for t in (first, second):
        t.join(TIMEOUT)
        assert not t.is_alive()
    assert blas_threads() == before
    if blas_has_threads:  # and BLAS can still be limited and restored afterwards
        threads.map_chunks(lambda share: None, [0, 1])
        assert blas_threads() == before


def test_a_base_exception_in_a_workers_share_reaches_the_caller(parallel):
    parallel(2)

    def run(share):
        if share[0] == 1:
            raise KeyboardInterrupt

    outcome = run_in_thread(lambda: threads.map_chunks(run, [0, 1]))
    assert outcome[0][0] == "error" and isinstance(outcome[0][1], KeyboardInterrupt)
    threads.map_chunks(lambda share: None, [0, 1])  # the pool still serves
