"""Every fast kernel path equals the plain sums of :mod:`tinygrad_edu.kernels.reference`.

In float64, to 1e-12 of the sum of the magnitudes of each output's terms: im2col, col2im, Winograd
F(2x2, 3x3), the kernel as stored, the fused bias/ReLU/mask, chunked in any way, on 1-3 worker
threads, with and without cached layouts; and max pooling (the 2x2 path and the general one) with
its scatter and gather adjoints. Shapes are drawn with size-1 axes, strides, paddings and batch
sizes.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu.kernels import conv, pooling, reference
from tinygrad_edu.kernels.fast import gemm, threads, winograd
from tinygrad_edu.kernels.fast.layout_cache import LAYOUTS
from tinygrad_edu.kernels.jit import winograd4x4

#: float64 roundoff allowed, relative to the sum of magnitudes of an output's terms
EXACT = 1e-12


def assert_exact(fast: np.ndarray, exact: np.ndarray, magnitude: np.ndarray) -> None:
    """``|fast - exact| <= EXACT * magnitude`` everywhere (``magnitude``: the same sums over
    absolute values), and the same shape and dtype."""
    assert fast.shape == exact.shape and fast.dtype == exact.dtype == np.float64
    assert np.all(np.abs(fast - exact) <= EXACT * magnitude + 1e-300)


@contextmanager
def kernel_settings(workers: int, small_chunks: bool, stored_kernel: bool, cached: bool):
    """Worker threads, tiny chunk budgets (many chunks, row bands), the kernel-as-stored path
    forced everywhere, and the layout cache on or off."""
    saved = threads.workers()
    with pytest.MonkeyPatch.context() as patch:
        if workers > 1:
            pytest.importorskip("threadpoolctl")
        threads.set_workers(workers)
        if small_chunks:
            patch.setattr(gemm, "IM2COL_BUDGET", 1)
            patch.setattr(winograd, "CHUNK_BUDGET", 1)
            patch.setattr(winograd4x4, "CHUNK_BUDGET", 1)
            patch.setattr(pooling, "POOL_BUDGET", 1)
        if stored_kernel:
            patch.setattr(conv, "MIN_DIRECT_KERNEL", 1)
            patch.setattr(conv, "MAX_DIRECT_PIXELS", 10**9)
        patch.setattr(LAYOUTS, "min_bytes", 0 if cached else 2**62)
        try:
            yield
        finally:
            threads.set_workers(saved)


settings_strategy = st.tuples(
    st.integers(1, 3), st.booleans(), st.booleans(), st.booleans()
)  # workers, small chunks, stored kernel, cached


@st.composite
def convolutions(draw):
    """A convolution of any kind: channels on both sides of the Winograd (32) and col2im
    (``9 C <= K``) thresholds, kernels 1-4, strides 1-3, paddings 0-2, batches 1-3."""
    winograd_case = draw(st.booleans())
    if winograd_case:
        kh = kw = 3
        stride, padding = 1, 1
        c, k = draw(st.sampled_from([32, 33])), draw(st.sampled_from([1, 5, 32]))
    else:
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
        c, k = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 4, 27, 40]))
    n = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), 9))
    w = draw(st.integers(max(1, kw - 2 * padding), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c, h, w))
    if draw(st.booleans()):  # NHWC memory seen as NCHW, as inside a network
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    weight = rng.standard_normal((k, c, kh, kw))
    return x, weight, stride, padding, rng


@given(convolutions(), settings_strategy, st.booleans(), st.booleans())
def test_the_convolution_is_the_reference(case, settings, bias, relu):
    x, w, stride, padding, rng = case
    b = rng.standard_normal(w.shape[0]) if bias else None
    track = [0]
    with kernel_settings(*settings):
        conv.track(w, track)
        results = [conv.conv2d(x, w, stride, padding, b, relu) for _ in range(2)]  # 2nd: cached
    exact = reference.conv2d(x, w, stride, padding)
    magnitude = reference.conv2d(np.abs(x), np.abs(w), stride, padding)
    if bias:
        exact, magnitude = exact + b[:, None, None], magnitude + np.abs(b)[:, None, None]
    if relu:
        exact = np.maximum(exact, 0)
    for y in results:
        assert_exact(y, exact, magnitude)


@given(convolutions(), settings_strategy, st.booleans())
def test_the_input_gradient_is_the_reference(case, settings, masked):
    x, w, stride, padding, rng = case
    hw = x.shape[2:]
    out = reference.conv2d(x, w, stride, padding)
    g = rng.standard_normal(out.shape)
    mask = rng.standard_normal(out.shape) if masked else None
    with kernel_settings(*settings):
        conv.track(w, [0])
        results = [conv.conv2d_input_grad(g, w, hw, stride, padding, mask) for _ in range(2)]
    kept = g if mask is None else np.where(mask > 0, g, 0.0)
    exact = reference.conv2d_input_grad(kept, w, hw, stride, padding)
    magnitude = reference.conv2d_input_grad(np.abs(kept), np.abs(w), hw, stride, padding)
    for grad in results:
        assert_exact(grad, exact, magnitude)


@given(convolutions(), settings_strategy)
def test_the_weight_gradient_is_the_reference(case, settings):
    x, w, stride, padding, rng = case
    g = rng.standard_normal(reference.conv2d(x, w, stride, padding).shape)
    with kernel_settings(*settings):
        grad = conv.conv2d_weight_grad(x, g, w.shape[2:], stride, padding)
    exact = reference.conv2d_weight_grad(x, g, w.shape[2:], stride, padding)
    magnitude = reference.conv2d_weight_grad(np.abs(x), np.abs(g), w.shape[2:], stride, padding)
    assert_exact(grad, exact, magnitude)


@pytest.mark.parametrize(
    ("shape", "stride", "padding", "stored", "forward", "backward"),
    [
        ((27, 3, 3, 3), 1, 1, False, conv.IM2COL, conv.COL2IM),
        ((5, 32, 3, 3), 1, 1, False, conv.WINOGRAD, conv.IM2COL),
        ((32, 32, 3, 3), 1, 1, False, conv.WINOGRAD, conv.WINOGRAD),
        ((4, 3, 2, 3), 2, 0, False, conv.IM2COL, conv.IM2COL),
        ((4, 3, 3, 3), 1, 1, True, conv.STORED_KERNEL, conv.STORED_KERNEL),
    ],
)
def test_the_drawn_cases_reach_every_path(shape, stride, padding, stored, forward, backward):
    """The shapes :func:`convolutions` draws include one of each formulation."""
    x_shape, g_shape = (2, shape[1], 6, 6), (2, shape[0], 6 // stride, 6 // stride)
    with kernel_settings(1, False, stored, False):
        assert conv.forward_path(shape, x_shape, stride, padding) == forward
        assert conv.input_grad_path(shape, g_shape, (6, 6), stride, padding) == backward


@given(
    st.integers(1, 3),  # batch
    st.integers(1, 4),  # channels
    st.sampled_from([(2, 2), (2, 1), (3, 2), (3, 3), (1, 1)]),  # kernel, stride
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 3),  # workers
    st.booleans(),  # small chunks
    st.integers(0, 2**32 - 1),
)
def test_max_pooling_and_its_adjoints_are_the_reference(n, c, pool, h, w, workers, small, seed):
    kernel, stride = pool
    h, w = max(h, kernel), max(w, kernel)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    with kernel_settings(workers, small, False, False):
        y, choice = pooling.max_pool2d(x, kernel, stride)
        g = rng.standard_normal(y.shape)
        scattered = pooling.max_pool2d_scatter(g, choice, x.shape, kernel, stride)
        t = rng.standard_normal(x.shape)
        gathered = pooling.max_pool2d_gather(t, choice, kernel, stride)
    np.testing.assert_array_equal(y, reference.max_pool2d(x, kernel, stride))
    exact = reference.max_pool2d_input_grad(x, g, kernel, stride)
    assert_exact(scattered, exact, reference.max_pool2d_input_grad(x, np.abs(g), kernel, stride))
    # gather reads what scatter writes: <scatter(g), t> = <g, gather(t)>
    assert np.vdot(scattered, t) == pytest.approx(np.vdot(g, gathered), rel=1e-12, abs=1e-12)


def test_the_reference_convolution_is_the_textbook_sum():
    """One output of each function written out by hand: the reference's indexing is the maths."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    s, p = 2, 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    y = reference.conv2d(x, w, s, p)
    i, j = 1, 2
    assert y[0, 2, i, j] == pytest.approx(
        np.sum(xp[0, :, i * s : i * s + 3, j * s : j * s + 2] * w[2])
    )
    g = rng.standard_normal(y.shape)
    gw = reference.conv2d_weight_grad(x, g, (3, 2), s, p)
    a, b = 2, 1
    windows = xp[0, 1, a : a + s * y.shape[2] : s, b : b + s * y.shape[3] : s]
    assert gw[0, 1, a, b] == pytest.approx(np.sum(g[0, 0] * windows))
    # the input gradient is the adjoint: <conv(x, w), g> = <x, conv_input_grad(g, w)>
    gx = reference.conv2d_input_grad(g, w, (5, 4), s, p)
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, gx), rel=1e-12)
    assert np.vdot(y, g) == pytest.approx(np.vdot(w, gw), rel=1e-12)
