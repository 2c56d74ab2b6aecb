"""Every convolution kernel path against a direct float64 reference.

Paths: im2col (any kernel, stride, padding), Winograd F(2x2, 3x3) (the default for 3x3 layers
with >= 32 input channels), col2im input gradients
(few output channels), and the fusions (bias, ReLU, ReLU mask). Inputs are float32; the reference
is the textbook sum in float64 on the same values; the error is measured relative to the largest
reference value (float32 roundoff of a sum of many products is relative to its scale, not to
each entry, which may cancel to 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels.fast import threads
from tinygrad_edu.kernels.fast import winograd as W

#: float32 roundoff bound of the default paths, relative to the result's scale
TOLERANCE = 1e-5


def reference_conv(x, w, stride=1, padding=0):
    """``y[n,k,i,j] = sum_{c,a,b} x[n,c,i*s+a-p,j*s+b-p] w[k,c,a,b]`` in float64, by definition."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (xp.shape[2] - kh) // stride + 1
    wo = (xp.shape[3] - kw) // stride + 1
    y = np.zeros((x.shape[0], k, ho, wo))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a : a + stride * ho : stride, b : b + stride * wo : stride]
            y += np.einsum("nchw,kc->nkhw", patch, w[:, :, a, b])
    return y


def reference_input_grad(g, w, input_hw, stride=1, padding=0):
    """The adjoint of :func:`reference_conv`: each output's gradient sent back through ``w``."""
    g, w = g.astype(np.float64), w.astype(np.float64)
    _, c, kh, kw = w.shape
    h, wd = input_hw
    ho, wo = g.shape[2:]
    xp = np.zeros((g.shape[0], c, h + 2 * padding + stride, wd + 2 * padding + stride))
    for a in range(kh):
        for b in range(kw):
            contribution = np.einsum("nkhw,kc->nchw", g, w[:, :, a, b])
            xp[:, :, a : a + stride * ho : stride, b : b + stride * wo : stride] += contribution
    return xp[:, :, padding : padding + h, padding : padding + wd]


def reference_weight_grad(x, g, kernel_hw, stride=1, padding=0):
    x, g = x.astype(np.float64), g.astype(np.float64)
    kh, kw = kernel_hw
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = g.shape[2:]
    out = np.zeros((g.shape[1], x.shape[1], kh, kw))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a : a + stride * ho : stride, b : b + stride * wo : stride]
            out[:, :, a, b] = np.einsum("nchw,nkhw->kc", patch, g)
    return out


def relative_error(ours, exact):
    return np.abs(ours - exact).max() / max(np.abs(exact).max(), 1e-30)


def nhwc_backed(a):
    """An NCHW array whose memory is NHWC, as the kernels' outputs are."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


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
