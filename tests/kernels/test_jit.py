"""The fused kernels of the ``jit`` extra (:mod:`tinygrad_edu.kernels.jit`) against
:mod:`tinygrad_edu.kernels.reference`, and the switch that picks the path.

Every property runs on both paths: ``numpy`` (always) and ``jit`` (skipped without numba).
Pooling goes through the public kernels; Winograd is called directly, so that any channel count
(from 1) is tested, and through the public kernels (the dispatch) where the rule picks it.

Bounds: float64 within 1e-12 of the sum of the terms' magnitudes. float32: Winograd within a
small multiple of float32's roundoff of the largest sum of the terms' magnitudes
(:func:`within_roundoff` says why not of the result); im2col and col2im within 1e-5 of the
float64 result's scale (the NumPy path's bound, ``tests/kernel_references.py``) and, like the
fused pooling, equal bit for bit to the NumPy path's, since they make the same comparisons and
additions in the same order. Winograd differs between the paths on purpose: F(2x2, 3x3) on the
NumPy path, F(4x4, 3x3) on the fused one, whose float32 error is bounded here too (and checked
through a whole VGG16 input gradient).
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import warnings
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.kernel_references import LAYOUTS, POISON, TOLERANCE, layout_variant, relative_error
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels import jit, pooling, reference
from tinygrad_edu.kernels.fast import winograd as W

PATHS = ("numpy", "jit")


@contextlib.contextmanager
def kernel_path(path: str) -> Iterator[None]:
    """The kernels of ``path`` for the block; the jit path skips the test without numba."""
    if path == "jit":
        pytest.importorskip("numba")
    with jit.using(path == "jit"):
        yield


# -- max pooling, 2x2 --------------------------------------------------------------------------


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    few = draw(st.booleans())  # few distinct values: many ties in every window
    values = rng.integers(-2, 3, (n, c, h, w)) if few else rng.standard_normal((n, c, h, w))
    x = layout_variant(values.astype(dtype), draw(st.sampled_from(LAYOUTS)))
    g = rng.standard_normal((n, c, h // 2, w // 2)).astype(dtype)
    return x, layout_variant(g, draw(st.sampled_from(LAYOUTS)))


@pytest.mark.parametrize("path", PATHS)
@given(case=pool_cases())
def test_max_pool_2x2_and_its_gradient_equal_the_reference(path, case):
    """Values, and the gradient routed to the first maximum in row-major order (ties included,
    odd rows and columns no window reads get 0): exactly the reference's."""
    x, g = case
    with kernel_path(path):
        y, choice = pooling.max_pool2d(x, 2, 2)
        grad = pooling.max_pool2d_scatter(g, choice, x.shape, 2, 2)
    np.testing.assert_array_equal(y, reference.max_pool2d(np.asarray(x), 2, 2))
    assert y.dtype == x.dtype and grad.dtype == g.dtype
    np.testing.assert_array_equal(grad, reference.max_pool2d_input_grad(x, g, 2, 2))
    with kernel_path("numpy"):
        _, numpy_choice = pooling.max_pool2d(x, 2, 2)
    np.testing.assert_array_equal(choice, numpy_choice)


def test_a_nan_wins_its_window_on_the_fused_path_as_on_the_numpy_path():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]], [[2.0, 2.0], [np.inf, np.nan]]]], np.float32)
    results = {}
    for path in PATHS:
        with kernel_path(path):
            y, choice = pooling.max_pool2d(x, 2, 2)
            grad = pooling.max_pool2d_scatter(np.ones_like(y), choice, x.shape, 2, 2)
        results[path] = y, choice, grad
    np.testing.assert_array_equal(results["jit"][1].ravel(), [1, 3])
    for ours, theirs in zip(results["jit"], results["numpy"]):
        np.testing.assert_array_equal(ours, theirs)


@given(case=pool_cases(), workers=st.integers(2, 4))
def test_fused_pooling_shares_its_rows_among_threads_exactly(case, workers):
    """Rows cut anywhere (mid-image, odd last rows no window reads) among 2-4 threads: the same
    values, winners and gradient as the reference."""
    pytest.importorskip("numba")
    from tinygrad_edu.kernels.fast import threads
    from tinygrad_edu.kernels.jit import pooling as fused_pooling

    x, g = case
    with pytest.MonkeyPatch.context() as patch, kernel_path("jit"):
        patch.setattr(pooling, "MIN_SHARED_BYTES", 1)  # share even the smallest arrays
        patch.setattr(threads, "workers", lambda: workers)
        cuts = fused_pooling._row_runs(x.shape[0] * x.shape[2], x.nbytes, 1)
        y, choice = pooling.max_pool2d(x, 2, 2)
        grad = pooling.max_pool2d_scatter(g, choice, x.shape, 2, 2)
    assert len(cuts) == min(workers, x.shape[0] * x.shape[2])
    np.testing.assert_array_equal(y, reference.max_pool2d(np.asarray(x), 2, 2))
    np.testing.assert_array_equal(grad, reference.max_pool2d_input_grad(x, g, 2, 2))


# -- Winograd: F(2x2, 3x3) on the NumPy path, F(4x4, 3x3) fused on the jit path ---------------


@st.composite
def winograd_cases(draw, min_channels: int = 1):
    """Odd and even sizes (1 pixel up), batch 1 up, channels from 1, float32 or float64."""
    n = draw(st.integers(1, 3))
    c, k = draw(st.integers(min_channels, 40)), draw(st.integers(1, 40))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((k, c, 3, 3)).astype(dtype)
    bias = rng.standard_normal(k).astype(dtype)
    g = rng.standard_normal((n, k, h, w)).astype(dtype)
    mask = rng.standard_normal(g.shape).astype(dtype)  # a ReLU's output, the shape of g
    return x, weight, bias, g, mask


def within_roundoff(
    ours: np.ndarray, exact: np.ndarray, magnitude: np.ndarray, scale: float, tile: int
) -> None:
    """Within roundoff (NHWC arrays, ``tile`` the side of the Winograd's output block). float64:
    within 1e-12 of the terms' magnitudes summed over the block each output is computed with.
    float32: within :data:`FLOAT32` of ``scale``, the largest output any input of the same
    largest magnitude could give (``max|x| * max_k sum|w_k|``, plus the bias).

    Why per block: Winograd computes a block from its whole input tile at once, and its error
    is bounded by the magnitudes of all of the tile's terms, not of the output's own. An output
    whose own terms are all zero (a masked-off corner) can get a roundoff from its neighbours.
    F(2x2, 3x3)'s transforms happen to cancel exactly there; F(4x4, 3x3)'s do not.

    Why that scale in float32: the transformed kernel mixes all nine weights, so an output's
    roundoff follows every weight of its channel, not only the few its own terms use; and where
    the terms cancel to a small result (a 1x1 image of 40 channels: -0.093 from terms summing to
    24.9) a bound relative to the result fails for a correct kernel. Relative to the result or
    to the terms, both paths' tests failed so in a few of 2000 draws."""
    if ours.dtype == np.float64:
        n, h, w, k = magnitude.shape
        th, tw = -(-h // tile), -(-w // tile)
        padded = np.zeros((n, th * tile, tw * tile, k))
        padded[:, :h, :w] = magnitude
        blocks = padded.reshape(n, th, tile, tw, tile, k).sum(axis=(2, 4), keepdims=True)
        block = np.broadcast_to(blocks, (n, th, tile, tw, tile, k)).reshape(padded.shape)
        assert np.all(np.abs(ours - exact) <= 1e-12 * block[:, :h, :w])
    else:
        assert np.abs(ours - exact).max() <= FLOAT32[tile] * scale


#: float32 bounds relative to the largest possible output, per Winograd block side: 5x and 4x
#: the worst of 3000 random layers measured (9.2e-8 for F(2x2, 3x3), 7.8e-7 for F(4x4, 3x3);
#: 1-40 channels, 1-11 pixels, forward and input gradient)
FLOAT32 = {1: 5e-7, 4: 3e-6}
#: the output block side of each path's Winograd
TILE = {"numpy": 1, "jit": 4}


def winograd_conv(path: str, x_nhwc, w, budget, backward: bool = False, **options):
    """The path's Winograd convolution of NHWC ``x_nhwc`` by ``w`` (its input gradient, the
    rotated kernel through the forward's transform, when ``backward``)."""
    if path == "jit":
        from tinygrad_edu.kernels.jit import winograd4x4 as fused

        u = fused.transform_kernel(w)
        if backward:
            u, options["order"] = u.transpose(0, 2, 1), fused.FLIP_ORDER
        return fused.conv3x3(x_nhwc, u, chunk_budget=budget, **options)
    u = W.transform_kernel(w)
    if backward:
        u, options["order"] = u.transpose(0, 2, 1), W.FLIP_ORDER
    return W.conv3x3(x_nhwc, None, chunk_budget=budget, u=u, **options)


@pytest.mark.parametrize("path", PATHS)
@given(case=winograd_cases(), relu=st.booleans(), budget=st.sampled_from([1, 3000, None]))
def test_winograd_with_bias_and_relu_equals_the_reference(path, case, relu, budget):
    """The transforms with the zero padding, the bias and the ReLU folded in: chunks of single
    tile rows (budget 1), several images, and the default."""
    x, w, b, _, _ = case
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    with kernel_path(path):
        y = winograd_conv(path, x_nhwc, w, budget, bias=b, relu=relu)
    wide = reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, 1)
    exact = wide.transpose(0, 2, 3, 1) + b
    magnitude = reference.conv2d(np.abs(x), np.abs(w).astype(np.float64), 1, 1)
    magnitude = magnitude.transpose(0, 2, 3, 1) + np.abs(b)
    if relu:
        exact = np.maximum(exact, 0)
    assert y.shape == exact.shape and y.dtype == x.dtype
    scale = np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max() + np.abs(b).max()
    within_roundoff(y, exact, magnitude, scale, TILE[path])


@pytest.mark.parametrize("path", PATHS)
@given(case=winograd_cases(), budget=st.sampled_from([1, 3000, None]), poison=st.booleans())
def test_winograd_input_gradient_through_a_relu_mask_equals_the_reference(
    path, case, budget, poison
):
    """The rotated kernel through the forward's transform (positions permuted), with the ReLU's
    mask applied as the input is read: an inf or NaN where the mask is off gives 0."""
    x, w, _, g, mask = case
    g_in = g.copy()
    if poison:  # values that must not leak through where the mask is off
        off = mask <= 0
        g_in[off] = np.resize(np.array(POISON, g.dtype), off.sum())
    g_nhwc = np.ascontiguousarray(g_in.transpose(0, 2, 3, 1))
    m_nhwc = np.ascontiguousarray(mask.transpose(0, 2, 3, 1))
    with kernel_path(path):
        grad = winograd_conv(path, g_nhwc, w, budget, backward=True, mask=m_nhwc)
    kept = np.where(mask > 0, g_in, 0.0)
    h, wd = x.shape[2:]
    exact = reference.conv2d_input_grad(
        kept.astype(np.float64), w.astype(np.float64), (h, wd), 1, 1
    )
    magnitude = reference.conv2d_input_grad(
        np.abs(kept), np.abs(w).astype(np.float64), (h, wd), 1, 1
    )
    assert grad.shape == exact.transpose(0, 2, 3, 1).shape and grad.dtype == g.dtype
    exact, magnitude = exact.transpose(0, 2, 3, 1), magnitude.transpose(0, 2, 3, 1)
    scale = np.abs(kept).max() * np.abs(w).sum(axis=(0, 2, 3)).max()
    within_roundoff(grad, exact, magnitude, scale, TILE[path])


def test_the_f4x4_matrices_compute_the_convolution_exactly_and_commute_with_the_flip():
    """In exact rational arithmetic, ``A^T [(G g) * (B^T d)]`` is the 1-D correlation of every
    ``d`` (6) with every ``g`` (3), and reversing ``g`` permutes ``G g`` by ``FLIP_ORDER``: the
    two facts the kernels rest on."""
    from tinygrad_edu.kernels.jit import winograd4x4 as fused

    def rational(matrix: np.ndarray) -> list[list[Fraction]]:
        return [[Fraction(float(v)).limit_denominator(1000) for v in row] for row in matrix]

    at, g, bt = (rational(m) for m in (fused.AT, fused.G, fused.BT))
    assert np.array_equal(np.array(g, float), fused.G)  # the rationals are the matrices
    for i, k, t in itertools.product(range(4), range(3), range(6)):
        term = sum(at[i][j] * g[j][k] * bt[j][t] for j in range(6))
        assert term == (1 if t == i + k else 0), (i, k, t)
    for j in range(6):
        assert g[j][::-1] == g[fused.FLIP_ORDER[j]]


def test_f4x4_float32_error_is_a_few_roundoffs_of_the_terms():
    """The price of F(4x4, 3x3): in float32 its error relative to the sum of the terms'
    magnitudes stays below 2e-6 (about 30 roundoffs; measured 1.5e-6 here, border tiles
    included, where F(2x2, 3x3) gives ~1e-7), on 256 channels where the products' sums are long."""
    pytest.importorskip("numba")
    from tinygrad_edu.kernels.jit import winograd4x4 as fused

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 256, 16, 16))
    w = rng.standard_normal((64, 256, 3, 3)) / np.sqrt(9 * 256)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)
    y = fused.conv3x3(x_nhwc, fused.transform_kernel(w.astype(np.float32)))
    x32 = x_nhwc.transpose(0, 3, 1, 2).astype(np.float64)  # the inputs as float32 saw them
    w32 = w.astype(np.float32).astype(np.float64)
    exact = reference.conv2d(x32, w32, 1, 1).transpose(0, 2, 3, 1)
    magnitude = reference.conv2d(np.abs(x32), np.abs(w32), 1, 1).transpose(0, 2, 3, 1)
    error = np.abs(y - exact) / magnitude
    assert 1e-8 < error.max() < 2e-6  # not float64 in disguise, and not worse than measured


@given(case=winograd_cases(min_channels=K.MIN_WINOGRAD_CHANNELS), relu=st.booleans())
def test_the_dispatch_takes_f4x4_on_the_fused_path_and_agrees_with_the_numpy_path(case, relu):
    """Through the public kernels: forward with bias and ReLU, input gradient through the ReLU's
    mask. The path names say F(4x4, 3x3) on the fused path, F(2x2, 3x3) on the NumPy path (unless
    the kernel is multiplied as stored), and both results are within roundoff of each other."""
    pytest.importorskip("numba")
    x, w, b, _, _ = case
    results = {}
    for path in PATHS:
        with kernel_path(path):
            y = K.conv2d(x, w, 1, 1, bias=b, relu=relu)
            mask = results["numpy"][0] if results else y  # one mask for both
            grad = K.conv2d_input_grad(mask, w, x.shape[2:], 1, 1, mask=mask)
        results[path] = y, grad
    forward = K.forward_path(w.shape, x.shape, 1, 1, fused=True)
    assert forward in (K.WINOGRAD_4X4, K.STORED_KERNEL)
    assert K.forward_path(w.shape, x.shape, 1, 1) in (K.WINOGRAD, K.STORED_KERNEL)
    scales = (  # the largest possible outputs (within_roundoff), forward and input gradient
        np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max() + np.abs(b).max(),
        np.maximum(mask, 0).max() * np.abs(w).sum(axis=(0, 2, 3)).max(),
    )
    for (ours, theirs), scale in zip(zip(results["jit"], results["numpy"]), scales):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        bound = 1e-12 if ours.dtype == np.float64 else FLOAT32[4] + FLOAT32[1]
        assert np.abs(ours - theirs).max() <= bound * scale


@pytest.mark.parametrize("n, side, channels", [(1, 8, 160), (1, 16, 130), (2, 4, 200)])
def test_few_tiles_through_a_transposed_kernel_in_narrow_products(n, side, channels):
    """The input gradient of a layer of few tiles (at most FEW_TILES per product) and more
    channels than NARROW_COLUMNS multiplies the transposed kernel a block of columns at a time,
    the last block narrower: still the reference's gradient (float64, to roundoff)."""
    pytest.importorskip("numba")
    from tinygrad_edu.kernels.jit import winograd4x4

    rng = np.random.default_rng(side)
    w = rng.standard_normal((48, channels, 3, 3))
    g = rng.standard_normal((n, 48, side, side))
    mask = rng.standard_normal(g.shape)
    assert n * (side // 4) ** 2 <= winograd4x4.FEW_TILES
    assert channels % winograd4x4.NARROW_COLUMNS != 0
    with kernel_path("jit"):
        assert K.input_grad_path(w.shape, g.shape, (side, side), 1, 1, True) == K.WINOGRAD_4X4
        ours = K.conv2d_input_grad(g, w, (side, side), 1, 1, mask=mask)
    kept = np.where(mask > 0, g, 0.0)
    exact = reference.conv2d_input_grad(kept, w, (side, side), 1, 1)
    magnitude = reference.conv2d_input_grad(np.abs(kept), np.abs(w), (side, side), 1, 1)
    nhwc = (0, 2, 3, 1)
    within_roundoff(*(a.transpose(nhwc) for a in (ours, exact, magnitude)), 0.0, 4)


# -- im2col and col2im -------------------------------------------------------------------------


@st.composite
def gemm_cases(draw):
    """Layers the rule sends to im2col (forward) and col2im (input gradient, stride 1): few input
    channels, any kernel size, stride and padding; float32 or float64."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    side, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, side - 1))
    k = draw(st.integers(1, 2)) * side * side * c  # col2im needs kh * kw * C <= K
    h, w = draw(st.integers(side, 10)), draw(st.integers(side, 10))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((k, c, side, side)).astype(dtype)
    bias = rng.standard_normal(k).astype(dtype)
    return x, weight, bias, stride, padding


@given(case=gemm_cases(), relu=st.booleans(), poison=st.booleans())
def test_im2col_and_col2im_equal_the_reference_and_the_numpy_paths_bits(case, relu, poison):
    """The gather with the padding folded in, the bias and ReLU in one pass, the input gradient
    with the ReLU's mask applied as its chunk is copied (an inf or NaN where the mask is off
    gives 0) and the shifted adds summed per input pixel: the NumPy path's additions in the
    same order, so the same bits, and both within roundoff of the reference."""
    pytest.importorskip("numba")
    x, w, b, stride, padding = case
    h, wd = x.shape[2:]
    results = {}
    for path in PATHS:
        with kernel_path(path):
            y = K.conv2d(x, w, stride, padding, bias=b, relu=relu)
            g = y.copy()
            if poison:  # values that must not leak through where the mask is off
                off = y <= 0
                g[off] = np.resize(np.array(POISON, g.dtype), off.sum())
            grad = K.conv2d_input_grad(g, w, (h, wd), stride, padding, mask=y)
        results[path] = y, grad
    assert K.forward_path(w.shape, x.shape, stride, padding, fused=True) in (
        K.IM2COL,
        K.STORED_KERNEL,
    )
    for ours, theirs in zip(results["jit"], results["numpy"]):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    y, grad = results["jit"]
    exact = reference.conv2d(x.astype(np.float64), w.astype(np.float64), stride, padding)
    exact = exact + b.reshape(1, -1, 1, 1)
    assert relative_error(y, np.maximum(exact, 0) if relu else exact) <= TOLERANCE
    kept = np.where(y > 0, y, 0.0)
    exact_grad = reference.conv2d_input_grad(kept, w.astype(np.float64), (h, wd), stride, padding)
    assert relative_error(grad, exact_grad) <= TOLERANCE


def test_the_rgb_layer_takes_the_fused_im2col_and_col2im():
    """VGG's first layer (3 -> 64 channels): fused gather forward, fused col2im backward."""
    pytest.importorskip("numba")
    from tinygrad_edu.kernels.jit import im2col

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    calls = []
    with pytest.MonkeyPatch.context() as patch, kernel_path("jit"):
        for name in ("im2col_conv", "col2im_conv"):
            original = getattr(im2col, name)
            patch.setattr(im2col, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
        y = K.conv2d(x, w, 1, 1, relu=True)
        K.conv2d_input_grad(y, w, (16, 16), 1, 1, mask=y)
    assert calls == ["im2col_conv", "col2im_conv"]


# -- the switch --------------------------------------------------------------------------------


def run_python(code: str, **env: str) -> str:
    import os

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return done.stdout.strip()


def test_a_numba_that_does_not_import_leaves_the_numpy_path_with_a_warning(monkeypatch):
    monkeypatch.setattr(jit, "_available", None)
    monkeypatch.setattr(jit, "_enabled", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.setattr(jit.importlib.util, "find_spec", lambda name: object())  # "installed"
    with pytest.warns(RuntimeWarning, match="cannot be imported"):
        assert not jit.available()
    assert not jit.enabled()
    x = np.array([[[[1.0, 3.0], [2.0, 0.0]]]], np.float32)
    assert pooling.max_pool2d(x, 2, 2)[0].ravel().tolist() == [3.0]


def test_importing_the_package_compiles_nothing_and_does_not_import_numba():
    code = "import sys, tinygrad_edu, tinygrad_edu.kernels.conv; print('numba' in sys.modules)"
    assert run_python(code) == "False"


def test_the_environment_variable_switches_the_fused_path_off():
    code = "from tinygrad_edu.kernels import jit; print(jit.enabled(), jit.available())"
    assert run_python(code, TINYGRAD_EDU_JIT="0").split()[0] == "False"
    enabled, available = run_python(code, TINYGRAD_EDU_JIT="1").split()
    assert enabled == available  # on whenever numba can be imported


def test_numpy_path_restores_the_previous_choice():
    before = jit.enabled()
    with jit.numpy_path():
        assert not jit.enabled()
    assert jit.enabled() == before
    with pytest.raises(KeyError), jit.numpy_path():  # also when the block raises
        raise KeyError
    assert jit.enabled() == before


def test_switching_on_without_numba_says_what_to_install(monkeypatch):
    monkeypatch.setattr(jit, "available", lambda: False)
    with pytest.raises(RuntimeError, match=r"tinygrad_edu\[jit\]"):
        jit.set_enabled(True)


def test_other_dtypes_take_the_numpy_path():
    pytest.importorskip("numba")
    with kernel_path("jit"):
        assert jit.applies(np.zeros(1, np.float32), np.zeros(1, np.float32))
        assert not jit.applies(np.zeros(1, np.float16))
        assert not jit.applies(np.zeros(1, np.float32), np.zeros(1, np.float64))
        x = np.array([[[[1, 2], [3, 4]]]], np.int64)
        y, choice = pooling.max_pool2d(x, 2, 2)
    assert y.ravel().tolist() == [4] and choice.ravel().tolist() == [3]


def test_without_a_writable_cache_the_kernel_still_compiles_with_a_warning(monkeypatch):
    """A read-only package directory and no writable user cache: numba refuses ``cache=True``."""
    numba = pytest.importorskip("numba")
    from tinygrad_edu.kernels.jit import compiler

    real = numba.njit

    def refusing(*args, cache=False, **options):
        if cache:
            raise RuntimeError("cannot cache function 'add_one': no locator available")
        return real(*args, cache=cache, **options)

    monkeypatch.setattr(numba, "njit", refusing)

    def add_one(x):
        return x + 1

    kernel = compiler.fused(add_one)  # nothing compiled yet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert kernel(1) == 2
    assert any("cannot cache" in str(w.message) and "add_one" in str(w.message) for w in caught)


def test_the_vgg16_model_takes_the_fused_path_by_default_and_gives_the_gradient():
    """PyTorch-style code (the model's forward, ``tg.grad``) gets the fused kernels with no
    special call, and the input gradient agrees with the NumPy path's within float32 roundoff
    (this input flips no ReLU and swaps no pooling winner between the two paths)."""
    pytest.importorskip("numba")
    import tinygrad_edu as tg
    from tinygrad_edu.kernels.jit import pooling as fused_pooling
    from tinygrad_edu.kernels.jit import winograd4x4 as fused_winograd
    from tinygrad_edu.models.vgg import vgg16

    model = vgg16(rng=0).requires_grad_(False)
    x = np.random.default_rng(0).uniform(-20, 20, (2, 3, 32, 32)).astype(np.float32)

    def input_gradient() -> np.ndarray:
        image = tg.Tensor(x, requires_grad=True)
        loss = model(image, until="block4_conv3").sum()  # every filter: a live gradient
        return tg.grad(loss, [image])[0].data

    with kernel_path("numpy"):
        expected = input_gradient()
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for module, name in [
            (fused_winograd, "conv3x3"),
            (fused_pooling, "max_pool_2x2"),
            (fused_pooling, "max_pool_2x2_scatter"),
        ]:
            original = getattr(module, name)
            patch.setattr(
                module,
                name,
                lambda *a, _f=original, _n=name, **k: (calls.append(_n), _f(*a, **k))[1],
            )
        with kernel_path("jit"):
            got = input_gradient()
    assert {"conv3x3", "max_pool_2x2", "max_pool_2x2_scatter"} <= set(calls)
    assert np.abs(expected).max() > 0
    assert relative_error(got, expected) <= TOLERANCE


# -- preloading --------------------------------------------------------------------------------

#: a child with an empty numba cache: a cold pooling call must compile (the recorder sees it);
#: then, after preload(), a VGG-like block forward and backward must compile nothing more
PRELOAD_COVERS = """
import numpy as np
from numba.core import event
import tinygrad_edu as tg
from tinygrad_edu.kernels import pooling
from tinygrad_edu.kernels.jit.preload import preload
from tinygrad_edu.nn import functional as F

def compiles(work):
    with event.install_recorder("numba:compile") as recorder:
        work()
    return len(recorder.buffer)

def cold():
    pooling.max_pool2d(np.ones((1, 1, 4, 4)), 2, 2)

def block():
    rng = np.random.default_rng(1)
    image = tg.Tensor(rng.standard_normal((2, 3, 20, 20)).astype(np.float32), requires_grad=True)
    y = image
    for c_in in (3, 64):
        w = tg.Tensor(rng.standard_normal((64, c_in, 3, 3)).astype(np.float32) / 8)
        b = tg.Tensor(rng.standard_normal(64).astype(np.float32))
        y = F.conv2d_relu(y, w, b, 1, 1)
    F.max_pool2d(y, 2).mean().backward()

print(compiles(cold), preload() > 0, compiles(block))
"""


def test_preload_readies_every_kernel_a_vgg_block_calls(tmp_path):
    pytest.importorskip("numba")
    output = run_python(PRELOAD_COVERS, NUMBA_CACHE_DIR=str(tmp_path), TINYGRAD_EDU_JIT="1")
    cold, preloaded, later = output.split()
    assert int(cold) > 0 and preloaded == "True"
    assert later == "0"


def test_preload_does_nothing_on_the_numpy_path():
    with jit.using(False):
        from tinygrad_edu.kernels.jit.preload import preload

        assert preload() == 0.0
