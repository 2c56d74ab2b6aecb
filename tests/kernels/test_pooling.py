"""The 2x2 max pooling kernel and its scatter, and the bitwise ``select`` they route gradients
with: exact bits (NaN wins its window, the first maximum in row-major order takes the gradient,
+0.0 elsewhere) on any memory layout and any number of workers.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.kernel_references import LAYOUTS, layout_variant, worker_count
from tinygrad_edu.kernels import pooling
from tinygrad_edu.kernels.fast.layout import select
from tinygrad_edu.testing import EDGE_VALUES

SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0)


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
        with pool_threads_everywhere(), worker_count(k):
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
