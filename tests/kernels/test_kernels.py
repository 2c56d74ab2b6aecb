"""Every convolution kernel path against a direct float64 reference.

Paths: im2col (any kernel, stride, padding), Winograd F(2x2, 3x3) (the default for 3x3 layers
with >= 32 input channels), col2im input gradients
(few output channels), and the fusions (bias, ReLU, ReLU mask). Inputs are float32; the reference
is the textbook sum in float64 on the same values; the error is measured relative to the largest
reference value (float32 roundoff of a sum of many products is relative to its scale, not to
each entry, which may cancel to 0).

The kernel as stored (one GEMM over few output pixels) is attacked hardest: any kernel, stride,
padding and batch (1-pixel images, kernels bigger than the image), float32 and float64 inputs and
weights independently, C/Fortran/NHWC-backed/reversed/strided memory, 1-4 workers; there the
error bound is per element, relative to the sum of the magnitudes of its terms. The path names
(``forward_path`` / ``input_grad_path``) must name what actually runs, and an input gradient's
ReLU mask must stop inf and NaN on every path.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.kernel_references import (
    FLOATS,
    LAYOUTS,
    POISON,
    TOLERANCE,
    layout_variant,
    nhwc_backed,
    out_size,
    reference_conv,
    reference_input_grad,
    reference_weight_grad,
    relative_error,
    stored_kernel_everywhere,
    worker_count,
)
from tinygrad_edu import Tensor
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels import jit
from tinygrad_edu.kernels.fast import gemm, threads
from tinygrad_edu.kernels.fast import winograd as W
from tinygrad_edu.kernels.jit import im2col
from tinygrad_edu.kernels.jit import winograd4x4 as W4
from tinygrad_edu.nn import functional as F

#: channel counts on both sides of every threshold: Winograd from 32 input channels, col2im
#: while 9 * C <= K
CHANNELS = st.sampled_from([1, 2, 3, 5, 31, 32, 33, 40])


@st.composite
def conv3x3_cases(draw):
    n = draw(st.integers(1, 3))
    c, k = draw(CHANNELS), draw(CHANNELS)
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    layout = draw(st.sampled_from([np.ascontiguousarray, nhwc_backed]))
    return layout(x), weight, bias


@given(conv3x3_cases(), st.booleans())
def test_forward_every_formulation_matches_float64(case, relu):
    x, w, b = case
    exact = reference_conv(x, w, 1, 1) + b.astype(np.float64)[None, :, None, None]
    if relu:
        exact = np.maximum(exact, 0)
    y = K.conv2d(x, w, 1, 1, bias=b, relu=relu)
    assert y.dtype == np.float32 and y.shape == exact.shape
    assert relative_error(y, exact) <= TOLERANCE


@given(conv3x3_cases(), st.booleans())
def test_input_grad_every_formulation_matches_float64(case, masked):
    x, w, _ = case
    rng = np.random.default_rng(x.shape[2] * 100 + x.shape[3])
    n, _, h, wd = x.shape
    g = nhwc_backed(rng.standard_normal((n, w.shape[0], h, wd)).astype(np.float32))
    mask = nhwc_backed(rng.standard_normal(g.shape).astype(np.float32)) if masked else None
    exact = reference_input_grad(g if mask is None else g * (mask > 0), w, (h, wd), 1, 1)
    grad = K.conv2d_input_grad(g, w, (h, wd), 1, 1, mask=mask)
    assert grad.dtype == np.float32 and grad.shape == exact.shape
    assert relative_error(grad, exact) <= TOLERANCE


@given(
    data=st.data(),
    budget=st.sampled_from([1, 3000, 60_000, 2**22]),  # bands of tile rows, images, the batch
)
def test_winograd_chunks_are_exact_in_float64(data, budget):
    """Every chunking (band boundaries, several images, partial last chunk) gives the same
    numbers as the definition, to float64 roundoff."""
    n, c, k = (data.draw(st.integers(1, 4)) for _ in range(3))
    h, w = data.draw(st.integers(1, 20)), data.draw(st.integers(1, 20))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.standard_normal((n, h, w, c))
    weight = rng.standard_normal((k, c, 3, 3))
    y = W.conv3x3(x, weight, chunk_budget=budget)
    exact = reference_conv(x.transpose(0, 3, 1, 2), weight, 1, 1).transpose(0, 2, 3, 1)
    assert relative_error(y, exact) <= 1e-12
    g = rng.standard_normal((n, h, w, k))  # the input gradient through the forward's own U
    u = W.transform_kernel(weight).transpose(0, 2, 1)
    grad = W.conv3x3(g, None, chunk_budget=budget, u=u, order=W.FLIP_ORDER)
    exact = reference_input_grad(g.transpose(0, 3, 1, 2), weight, (h, w), 1, 1)
    assert relative_error(grad, exact.transpose(0, 2, 3, 1)) <= 1e-12


@st.composite
def general_cases(draw):
    """Any kernel size, stride and padding: the im2col paths."""
    n, c, k = draw(st.integers(1, 2)), draw(CHANNELS), draw(st.integers(1, 33))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), 20))
    w = draw(st.integers(max(1, kw - 2 * padding), 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = nhwc_backed(rng.standard_normal((n, c, h, w)).astype(np.float32))
    weight = (rng.standard_normal((k, c, kh, kw)) / np.sqrt(kh * kw * c)).astype(np.float32)
    return x, weight, stride, padding


@given(general_cases())
def test_general_convolution_and_both_gradients_match_float64(case):
    x, w, stride, padding = case
    exact = reference_conv(x, w, stride, padding)
    assert relative_error(K.conv2d(x, w, stride, padding), exact) <= TOLERANCE
    g = nhwc_backed(np.random.default_rng(1).standard_normal(exact.shape).astype(np.float32))
    grad_x = K.conv2d_input_grad(g, w, x.shape[2:], stride, padding)
    exact_x = reference_input_grad(g, w, x.shape[2:], stride, padding)
    assert relative_error(grad_x, exact_x) <= TOLERANCE
    grad_w = K.conv2d_weight_grad(x, g, w.shape[2:], stride, padding)
    assert relative_error(grad_w, reference_weight_grad(x, g, w.shape[2:], stride, padding)) <= (
        TOLERANCE
    )


def test_formulation_rule_on_both_sides_of_its_thresholds():
    assert not K.uses_winograd(3, 3, 1, 1, 31)  # too few input channels
    assert K.uses_winograd(3, 3, 1, 1, 32)
    assert not K.uses_winograd(3, 3, 2, 1, 64)  # stride
    assert not K.uses_winograd(3, 3, 1, 0, 64)  # padding
    assert not K.uses_winograd(5, 5, 1, 1, 64)  # kernel size
    assert K._use_col2im(3, 3, 27, 3) and not K._use_col2im(3, 3, 26, 3)


# ------------------------------------------------------------- the kernel as stored (few pixels)
@st.composite
def stored_kernel_cases(draw):
    """A convolution with a big kernel over few output pixels (all images together), and the
    worker count, with the thresholds lowered so the kernels stay small."""
    n = draw(st.integers(1, 3))
    c, k = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * padding), 7))
    w = draw(st.integers(max(1, kw - 2 * padding), 7))
    return n, c, k, kh, kw, stride, padding, h, w, draw(st.integers(1, 3))


@given(case=stored_kernel_cases(), seed=st.integers(0, 2**16), fused=st.booleans())
def test_the_stored_kernel_path_is_the_definition(case, seed, fused):
    """Forward (with bias and ReLU) and input gradient (with a ReLU mask) by one GEMM with the
    kernel as stored, on 1-3 workers: within float32 roundoff of the float64 definition."""
    n, c, k, kh, kw, stride, padding, h, w, workers = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((k, c, kh, kw)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32) if fused else None
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    g = rng.standard_normal((n, k, ho, wo)).astype(np.float32)
    mask = rng.standard_normal(g.shape).astype(np.float32) if fused else None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K, "MIN_DIRECT_KERNEL", 1)
        patch.setattr(K, "MAX_DIRECT_PIXELS", n * ho * wo)
        before = threads.workers()
        threads.set_workers(workers)
        try:
            assert K.uses_stored_kernel(weight.size, n * ho * wo)
            y = K.conv2d(x, weight, stride, padding, bias=bias, relu=fused)
            grad = K.conv2d_input_grad(g, weight, (h, w), stride, padding, mask=mask)
        finally:
            threads.set_workers(before)
    # roundoff relative to the magnitude of what was summed: a few terms may cancel to ~0
    exact = reference_conv(x, weight, stride, padding)
    summed = reference_conv(np.abs(x), np.abs(weight), stride, padding).max()
    if fused:
        exact = np.maximum(exact + bias.reshape(1, -1, 1, 1), 0)
        summed += np.abs(bias).max()
    assert y.shape == exact.shape and y.dtype == np.float32
    assert np.abs(y - exact).max() <= TOLERANCE * summed
    masked = g if mask is None else g * (mask > 0)
    exact_grad = reference_input_grad(masked, weight, (h, w), stride, padding)
    summed = reference_input_grad(np.abs(masked), np.abs(weight), (h, w), stride, padding).max()
    assert grad.shape == exact_grad.shape == x.shape
    assert np.abs(grad - exact_grad).max() <= TOLERANCE * summed


def test_the_stored_kernel_rule_and_its_vgg_layers():
    """VGG's 8x8 layers at batch 1 use the kernel as stored; batch 2, or a smaller kernel, do
    not; and that path neither reads nor fills the layout cache."""
    assert K.uses_stored_kernel(512 * 512 * 9, 64)  # block5 at batch 1
    assert not K.uses_stored_kernel(512 * 512 * 9, 128)  # ... at batch 2
    assert not K.uses_stored_kernel(256 * 256 * 9, 64)  # a kernel below MIN_DIRECT_KERNEL
    block5, block1 = (512, 512, 3, 3), (64, 3, 3, 3)
    assert K.forward_path(block5, (1, 512, 8, 8), 1, 1) == K.STORED_KERNEL
    assert K.forward_path(block5, (2, 512, 8, 8), 1, 1) == K.WINOGRAD
    assert K.forward_path(block1, (1, 3, 8, 8), 1, 1) == "im2col"
    assert K.input_grad_path(block5, (1, 512, 8, 8), (8, 8), 1, 1) == K.STORED_KERNEL
    assert K.input_grad_path(block5, (2, 512, 8, 8), (8, 8), 1, 1) == K.WINOGRAD
    assert K.input_grad_path(block5, (1, 512, 4, 4), (8, 8), 2, 1) == "im2col"  # stride 2
    assert K.input_grad_path(block1, (1, 64, 8, 8), (8, 8), 1, 1) == "col2im"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 512, 8, 8)).astype(np.float32)
    weight = (rng.standard_normal((512, 512, 3, 3)) / 48).astype(np.float32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K.LAYOUTS, "get", lambda *args: pytest.fail("the layout cache was used"))
        y = K.conv2d(x, weight, 1, 1)
        grad = K.conv2d_input_grad(y, weight, (8, 8), 1, 1)
    assert relative_error(y, reference_conv(x, weight, 1, 1)) <= TOLERANCE
    assert relative_error(grad, reference_input_grad(y, weight, (8, 8), 1, 1)) <= TOLERANCE


def test_an_empty_batch_on_the_stored_kernel_path_gives_empty_results():
    """No pixels at all is "few pixels" too: both passes give (0, ...) arrays, no reshape error."""
    weight = np.zeros((512, 512, 3, 3), dtype=np.float32)
    empty = np.zeros((0, 512, 8, 8), dtype=np.float32)
    assert K.forward_path(weight.shape, empty.shape, 1, 1) == K.STORED_KERNEL
    assert K.conv2d(empty, weight, 1, 1, bias=np.zeros(512, np.float32), relu=True).shape == (
        0,
        512,
        8,
        8,
    )
    assert K.conv2d_input_grad(empty, weight, (8, 8), 1, 1, mask=empty).shape == (0, 512, 8, 8)


# -------------------------------------------- the kernel as stored: any shape, dtype, layout
#: roundoff allowed per element, relative to the sum of the magnitudes of its terms
ROUNDOFF = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def assert_within_roundoff(actual, exact, summed, dtype) -> None:
    """``|actual - exact| <= tol(dtype) * summed`` elementwise, where ``summed`` is the same sum
    over the magnitudes of its terms."""
    assert actual.shape == exact.shape
    error = np.abs(np.asarray(actual, np.float64) - exact)
    bound = ROUNDOFF[np.dtype(dtype)] * summed + 1e-300
    worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.size else ()
    assert np.all(error <= bound), (worst, error[worst], bound[worst])


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
    with stored_kernel_everywhere(), worker_count(case["workers"]):
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
    with stored_kernel_everywhere(), worker_count(case["workers"]):
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
    with stored_kernel_everywhere(), worker_count(2):
        y = K.conv2d(x, w, stride, 1, bias=bias, relu=relu)
    exact = reference_conv(x, w, stride, 1) + bias.reshape(1, -1, 1, 1)
    summed = reference_conv(np.abs(x), np.abs(w), stride, 1)
    if relu:
        exact = np.maximum(exact, 0)
    assert y.dtype == np.float64
    narrow = np.result_type(x, w)
    error = np.abs(y - exact)
    assert np.all(error <= ROUNDOFF[narrow] * summed + 1e-12 * np.abs(bias).max())


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
        for name in ("im2col_conv", "col2im_conv"):  # the jit extra's, under the same names
            patch.setattr(im2col, name, spy(name, getattr(im2col, name)))
        patch.setattr(W, "conv3x3", spy("winograd", W.conv3x3))
        patch.setattr(W4, "conv3x3", spy("winograd", W4.conv3x3))
        fused = jit.applies(x, w)  # float32: the jit extra's kernels whenever it is on
        forward = K.forward_path(w.shape, x.shape, stride, padding, fused)
        K.conv2d(x, w, stride, padding)
        backward = K.input_grad_path(w.shape, g.shape, (hw, hw), stride, padding, fused)
        first = len(calls)
        K.conv2d_input_grad(g, w, (hw, hw), stride, padding)
    expected = {
        K.STORED_KERNEL: "stored_kernel_conv",
        "im2col": "im2col_conv",
        K.WINOGRAD: "winograd",
        K.WINOGRAD_4X4: "winograd",
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
    with stored_kernel_everywhere(), worker_count(3):
        y = K.conv2d(x, w, 1, 1)
        grad = K.conv2d_input_grad(g, w, (1, 1), 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], x[:, :, 0, 0] @ w[:, :, 1, 1].T, rtol=1e-13)
    np.testing.assert_allclose(grad[:, :, 0, 0], g[:, :, 0, 0] @ w[:, :, 1, 1], rtol=1e-13)
