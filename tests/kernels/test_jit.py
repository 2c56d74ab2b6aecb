"""The fused kernels of the ``jit`` extra (:mod:`tinygrad_edu.kernels.jit`) against
:mod:`tinygrad_edu.kernels.reference`, and the switch that picks the path.

Every property runs on both paths: ``numpy`` (always) and ``jit`` (skipped without numba).
Pooling goes through the public kernels; Winograd is called directly, so that any channel count
(from 1) is tested, and through the public kernels (the dispatch) where the rule picks it. Bounds:
float64 within 1e-12 of the sum of the terms' magnitudes; float32 within 1e-5 of the float64
result relative to its scale (the NumPy path's bound, ``tests/kernel_references.py``: float32's
unit roundoff 6e-8 times the few dozen additions each output takes in these shapes), and the
fused path equal bit for bit to the NumPy path, since it does the same additions in the same
order -- also through a whole VGG16 input gradient.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import warnings
from collections.abc import Iterator

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
    before = jit.enabled()
    jit.set_enabled(path == "jit")
    try:
        yield
    finally:
        jit.set_enabled(before)


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


# -- Winograd F(2x2, 3x3) ----------------------------------------------------------------------


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


def within_roundoff(ours: np.ndarray, exact: np.ndarray, magnitude: np.ndarray) -> None:
    """float64: within 1e-12 of the terms' magnitudes; float32: within :data:`TOLERANCE` of the
    float64 result's scale."""
    if ours.dtype == np.float64:
        assert np.all(np.abs(ours - exact) <= 1e-12 * magnitude)
    else:
        assert relative_error(ours, exact) <= TOLERANCE


@pytest.mark.parametrize("path", PATHS)
@given(case=winograd_cases(), relu=st.booleans(), budget=st.sampled_from([1, 3000, None]))
def test_winograd_with_bias_and_relu_equals_the_reference(path, case, relu, budget):
    """The transforms with the zero padding, the bias and the ReLU folded in: chunks of single
    tile rows (budget 1), several images, and the default."""
    x, w, b, _, _ = case
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    u = W.transform_kernel(w)
    with kernel_path(path):
        if path == "jit":
            from tinygrad_edu.kernels.jit import winograd as fused

            y = fused.conv3x3(x_nhwc, u, bias=b, relu=relu, chunk_budget=budget)
        else:
            y = W.conv3x3(x_nhwc, w, chunk_budget=budget, u=u, bias=b, relu=relu)
    wide = reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, 1)
    exact = wide.transpose(0, 2, 3, 1) + b
    magnitude = reference.conv2d(np.abs(x), np.abs(w).astype(np.float64), 1, 1)
    magnitude = magnitude.transpose(0, 2, 3, 1) + np.abs(b)
    if relu:
        exact = np.maximum(exact, 0)
    assert y.shape == exact.shape and y.dtype == x.dtype
    within_roundoff(y, exact, magnitude)


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
    u = W.transform_kernel(w).transpose(0, 2, 1)
    with kernel_path(path):
        if path == "jit":
            from tinygrad_edu.kernels.jit import winograd as fused

            grad = fused.conv3x3(g_nhwc, u, mask=m_nhwc, order=W.FLIP_ORDER, chunk_budget=budget)
        else:
            grad = W.conv3x3(
                g_nhwc, None, chunk_budget=budget, u=u, mask=m_nhwc, order=W.FLIP_ORDER
            )
    kept = np.where(mask > 0, g_in, 0.0)
    h, wd = x.shape[2:]
    exact = reference.conv2d_input_grad(
        kept.astype(np.float64), w.astype(np.float64), (h, wd), 1, 1
    )
    magnitude = reference.conv2d_input_grad(
        np.abs(kept), np.abs(w).astype(np.float64), (h, wd), 1, 1
    )
    assert grad.shape == exact.transpose(0, 2, 3, 1).shape and grad.dtype == g.dtype
    within_roundoff(grad, exact.transpose(0, 2, 3, 1), magnitude.transpose(0, 2, 3, 1))


@given(case=winograd_cases(min_channels=K.MIN_WINOGRAD_CHANNELS), relu=st.booleans())
def test_the_fused_path_gives_the_numpy_paths_bits(case, relu):
    """Through the public kernels (the dispatch): forward with bias and ReLU, input gradient
    through the ReLU's mask, on both paths; the same operations in the same order."""
    pytest.importorskip("numba")
    x, w, b, _, _ = case
    results = {}
    for path in PATHS:
        with kernel_path(path):
            y = K.conv2d(x, w, 1, 1, bias=b, relu=relu)
            grad = K.conv2d_input_grad(y, w, x.shape[2:], 1, 1, mask=y)
        results[path] = y, grad
    assert K.forward_path(w.shape, x.shape, 1, 1) in (K.WINOGRAD, K.STORED_KERNEL)
    for ours, theirs in zip(results["jit"], results["numpy"]):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


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


def test_the_vgg16_model_takes_the_fused_path_by_default_and_gives_the_same_gradient():
    """PyTorch-style code (the model's forward, ``tg.grad``) gets the fused kernels with no
    special call, and the input gradient has the NumPy path's bits."""
    pytest.importorskip("numba")
    import tinygrad_edu as tg
    from tinygrad_edu.kernels.jit import pooling as fused_pooling
    from tinygrad_edu.kernels.jit import winograd as fused_winograd
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
    np.testing.assert_array_equal(got, expected)
