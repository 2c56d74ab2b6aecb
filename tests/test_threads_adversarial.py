"""Adversarial tests of the chunked kernels on several worker threads (:mod:`.kernels.threads`).

:mod:`test_threads` states the promises; this file tries to break them. Shapes: 1-pixel, odd
and prime heights and widths, batches of 1 and many, channel counts on both sides of every
threshold (Winograd from 32 input channels, col2im while ``kh*kw*C <= K``, output channels
shared among workers from ``MIN_SHARED_CHANNELS``). Cuts: chunk budgets from one byte up, work
shared however small (``MIN_SHARED_BYTES = 1``), 1-4 workers. Inputs: float32 and float64,
NCHW-, NHWC- and Fortran-backed, strided and reversed views, ties, NaN, +-inf and -0.0.

Promises checked: 2x2 max pooling (forward and scatter) gives the same bits on any number of
workers; every convolution path stays within float64 roundoff (1e-12 relative) of the
definition; autograd gradients through ``conv2d_relu`` and ``max_pool2d`` do not depend on the
worker count; an error in a worker reaches the caller and BLAS gets its threads back; changing
the worker count while other threads run kernels neither deadlocks nor corrupts a result.

"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_kernels import (
    TOLERANCE,
    nhwc_backed,
    reference_conv,
    reference_input_grad,
    relative_error,
)
from test_kernels_adversarial import workers

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels import pooling
from tinygrad_edu.kernels.fast import gemm, layout, threads
from tinygrad_edu.kernels.fast import winograd as W
from tinygrad_edu.nn import functional as F

threadpoolctl = pytest.importorskip("threadpoolctl", reason="the threads extra is not installed")

#: float64 results of every convolution path stay this close to the definition
EXACT = 1e-12
#: seconds a concurrency test may take before it counts as a deadlock
DEADLINE = 60.0
#: memory layouts of an NCHW-shaped input (see :func:`laid_out`)
LAYOUTS = ("nchw", "nhwc", "fortran", "strided", "reversed")
#: values that break naive max/argmax code
SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0])


def blas_threads() -> list[int]:
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return [lib["num_threads"] for lib in controller.info()]


@contextmanager
def kernel_settings(
    count: int,
    budget: int | None = None,
    share_bytes: int | None = None,
    share_channels: int | None = None,
) -> Iterator[None]:
    """Run the kernels on ``count`` workers with the given chunk budget (bytes, for Winograd,
    im2col/col2im and pooling), least shared work and least shared output channels (``None``:
    the module's default). Everything is restored on exit."""
    with pytest.MonkeyPatch.context() as patch:
        if budget is not None:
            patch.setattr(W, "CHUNK_BUDGET", budget)
            patch.setattr(gemm, "IM2COL_BUDGET", budget)
            patch.setattr(pooling, "POOL_BUDGET", budget)
        if share_bytes is not None:
            patch.setattr(layout, "MIN_SHARED_BYTES", share_bytes)
            patch.setattr(pooling, "MIN_SHARED_BYTES", share_bytes)
        if share_channels is not None:
            patch.setattr(W, "MIN_SHARED_CHANNELS", share_channels)
        with workers(count):
            yield


#: chunk budgets (one byte: a row per block), sharing thresholds (1: share anything)
tunings = st.fixed_dictionaries(
    {
        "budget": st.sampled_from([1, 700, 5000, 2**16, None]),
        "share_bytes": st.sampled_from([1, None]),
        "share_channels": st.sampled_from([1, 2, None]),
    }
)
workers_counts = st.integers(1, 4)
dtypes = st.sampled_from([np.float32, np.float64])
sides = st.sampled_from([1, 2, 3, 4, 5, 7, 8, 11, 13])  # 1-pixel, even, odd and prime


def laid_out(a: np.ndarray, kind: str) -> np.ndarray:
    """The values of NCHW ``a`` in memory laid out as ``kind`` (always a fresh array)."""
    if kind == "nchw":
        return np.ascontiguousarray(a)
    if kind == "nhwc":
        return nhwc_backed(a)
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":  # every other element of a larger array, on every axis
        big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
        view = big[::2, ::2, ::2, ::2]
        view[...] = a
        return view
    if kind == "reversed":  # negative strides on the spatial axes
        return np.ascontiguousarray(a[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
    raise ValueError(kind)


def with_specials(rng: np.random.Generator, shape, dtype, rate: float) -> np.ndarray:
    """Small integers (many ties), a fraction ``rate`` of them replaced by NaN, +-inf, +-0."""
    a = rng.integers(-3, 4, size=shape).astype(dtype)
    hit = rng.random(shape) < rate
    a[hit] = rng.choice(SPECIALS, size=int(hit.sum())).astype(dtype)
    return a


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    """Equal shape, dtype and bytes (so NaN payloads and the sign of zero count too)."""
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


# ----------------------------------------------------------------------------- max pooling
def pool_2x2(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2x2/stride-2 pooling pair: pooled values, winners, ``g`` routed back."""
    y, choice = pooling.max_pool2d(x, 2, 2)
    return y, choice, pooling.max_pool2d_scatter(g, choice, x.shape, 2, 2)


@given(data=st.data(), count=st.integers(2, 4), tuning=tunings, dtype=dtypes)
def test_pooling_on_many_workers_gives_the_same_bits_as_on_one(data, count, tuning, dtype):
    n, c = data.draw(st.sampled_from([1, 2, 5])), data.draw(st.sampled_from([1, 2, 3, 7, 16]))
    h, w = data.draw(sides), data.draw(sides)
    rate = data.draw(st.sampled_from([0.0, 0.05, 0.5]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    values = with_specials(rng, (n, c, h, w), dtype, rate)
    x = laid_out(values, data.draw(st.sampled_from(LAYOUTS)))
    g = laid_out(rng.standard_normal((n, c, h // 2, w // 2)).astype(dtype), "nhwc")
    with kernel_settings(1, **tuning):
        serial = pool_2x2(x, g)
    with kernel_settings(count, **tuning):
        parallel = pool_2x2(x, g)
    for one, many in zip(serial, parallel):
        assert_same_bits(one, many)
    # and both are the definition: the max (NaN if any), the first maximum, its gradient
    y, choice, routed = parallel
    ho, wo = h // 2, w // 2
    windows = values[:, :, : 2 * ho, : 2 * wo].reshape(n, c, ho, 2, wo, 2)
    flat = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, 4)
    np.testing.assert_array_equal(y, flat.max(axis=4))
    clean = ~np.isnan(flat).any(axis=4)  # NaN windows: see test_a_nan_wins_its_window
    np.testing.assert_array_equal(choice.transpose(0, 3, 1, 2)[clean], flat.argmax(axis=4)[clean])
    one_hot = choice.transpose(0, 3, 1, 2)[..., None] == np.arange(4)
    expected = np.where(one_hot, g[..., None], 0).reshape(n, c, ho, wo, 2, 2)
    expected = expected.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * ho, 2 * wo)
    np.testing.assert_array_equal(routed[:, :, : 2 * ho, : 2 * wo], expected)
    assert not routed[:, :, 2 * ho :].any() and not routed[:, :, :, 2 * wo :].any()


@pytest.mark.parametrize("count", [1, 2])
def test_a_nan_wins_its_window(count):
    x = np.array([[[[1.0, np.nan], [2.0, 3.0]]]])
    with kernel_settings(count):
        y, choice = pooling.max_pool2d(x, 2, 2)
        _, overlapping = pooling.max_pool2d(x, 2, 1)  # the general path, same single window
    assert np.isnan(y).all()
    assert choice.ravel().tolist() == overlapping.ravel().tolist() == [1]


@pytest.mark.parametrize("count", [1, 2])
def test_an_infinite_gradient_reaches_only_the_winner(count):
    x = np.arange(16.0).reshape(1, 1, 4, 4)  # every window's winner is its bottom-right
    g = np.array([[[[np.inf, np.nan], [1.0, -np.inf]]]])
    with kernel_settings(count, share_bytes=1):
        _, choice = pooling.max_pool2d(x, 2, 2)
        routed = pooling.max_pool2d_scatter(g, choice, x.shape, 2, 2)
    expected = np.zeros((4, 4))
    expected[1::2, 1::2] = g[0, 0]
    np.testing.assert_array_equal(routed[0, 0], expected)


# ----------------------------------------------------------------------------- convolutions
@st.composite
def forward_cases(draw):
    """A convolution for one path: im2col (any kernel, stride, padding, channels) or Winograd
    F(2x2, 3x3) (3x3, stride 1, padding 1, >= 32 input channels; output channels around the
    multiples of MIN_SHARED_CHANNELS)."""
    path = draw(st.sampled_from(["im2col", "winograd"]))
    if path == "im2col":
        c, k = draw(st.sampled_from([1, 2, 3, 5, 31, 32, 33])), draw(st.sampled_from([1, 2, 7]))
        kh, kw, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
        padding = draw(st.integers(0, min(kh, kw) // 2))
        if K.uses_winograd(kh, kw, stride, padding, c):  # Winograd's case: stride 2
            stride = 2
    else:
        c, k = draw(st.sampled_from([32, 33, 40])), draw(st.sampled_from([1, 2, 63, 64, 65, 129]))
        kh = kw = 3
        stride = padding = 1
    h = draw(st.integers(max(1, kh - 2 * padding), 13))
    w = draw(st.integers(max(1, kw - 2 * padding), 13))
    assert K.uses_winograd(kh, kw, stride, padding, c) == (path != "im2col")
    return path, (c, k, kh, kw, stride, padding, h, w)


@given(
    data=st.data(),
    case=forward_cases(),
    count=workers_counts,
    tuning=tunings,
    dtype=dtypes,
)
def test_convolution_is_the_definition_on_any_number_of_workers(data, case, count, tuning, dtype):
    _, (c, k, kh, kw, stride, padding, h, w) = case
    n = data.draw(st.sampled_from([1, 2, 5]) if k < 100 else st.just(1))
    bias, relu = data.draw(st.booleans()), data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = laid_out(
        rng.standard_normal((n, c, h, w)).astype(dtype), data.draw(st.sampled_from(LAYOUTS))
    )
    weight = rng.standard_normal((k, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    with kernel_settings(count, **tuning):
        y = K.conv2d(x, weight, stride, padding, bias=b, relu=relu)
    exact = reference_conv(x, weight, stride, padding)
    if bias:
        exact += b.reshape(1, -1, 1, 1)
    if relu:
        exact = np.maximum(exact, 0)
    assert y.dtype == dtype and y.shape == exact.shape
    if dtype == np.float64:
        assert relative_error(y, exact) <= EXACT
    else:
        assert relative_error(y, exact) <= TOLERANCE


def input_grad_path(kh, kw, stride, padding, k, c) -> str:
    """The path :func:`conv2d_input_grad` takes (for output size = input size at Winograd)."""
    if stride == 1 and K._use_col2im(kh, kw, k, c):
        return "col2im"
    if K.uses_winograd(kh, kw, stride, padding, k):
        return "winograd"
    return "im2col"


@st.composite
def input_grad_cases(draw):
    """An input gradient for one path: col2im (stride 1, ``kh*kw*C <= K``, also exactly at the
    boundary), Winograd (3x3, stride 1, padding 1, K >= 32 and ``9*C > K``; C, the output
    channels there, around MIN_SHARED_CHANNELS), im2col (strides 2-3, or too many channels)."""
    path = draw(st.sampled_from(["col2im", "winograd", "im2col"]))
    if path == "col2im":
        c, kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        k, stride = kh * kw * c + draw(st.sampled_from([0, 1, 6])), 1
        padding = draw(st.integers(0, min(kh, kw) // 2))
    elif path == "winograd":
        k, c = draw(st.sampled_from([32, 33, 40])), draw(st.sampled_from([5, 63, 64, 65, 129]))
        kh = kw = 3
        stride = padding = 1
    else:
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, min(kh, kw) // 2))
        c, k = draw(st.sampled_from([1, 2, 5])), draw(st.sampled_from([1, 3, 33]))
        if stride == 1:  # too many input channels for col2im, too few output ones for Winograd
            c, k = max(c, 2), 1
    h = draw(st.integers(max(1, kh - 2 * padding), 13))
    w = draw(st.integers(max(1, kw - 2 * padding), 13))
    assert input_grad_path(kh, kw, stride, padding, k, c) == path
    return path, (c, k, kh, kw, stride, padding, h, w)


@given(data=st.data(), case=input_grad_cases(), count=workers_counts, tuning=tunings)
def test_input_gradient_is_the_definition_on_any_number_of_workers(data, case, count, tuning):
    path, (c, k, kh, kw, stride, padding, h, w) = case
    n = data.draw(st.sampled_from([1, 2, 5]) if c < 100 else st.just(1))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    g = laid_out(rng.standard_normal((n, k, ho, wo)), data.draw(st.sampled_from(LAYOUTS)))
    weight = rng.standard_normal((k, c, kh, kw))
    mask = None
    if data.draw(st.booleans()):  # a ReLU's output: convolve g * (mask > 0)
        mask = laid_out(np.maximum(rng.standard_normal(g.shape), 0), "nhwc")
    with kernel_settings(count, **tuning):
        grad = K.conv2d_input_grad(g, weight, (h, w), stride, padding, mask)
    masked = g if mask is None else g * (mask > 0)
    exact = reference_input_grad(masked, weight, (h, w), stride, padding)
    assert grad.shape == exact.shape == (n, c, h, w)
    assert relative_error(grad, exact) <= EXACT, path


@pytest.mark.parametrize("k", [63, 64, 65, 128, 129, 130])
@pytest.mark.parametrize("count", [2, 3, 4])
def test_winograd_shares_output_channels_of_one_small_image(k, count):
    """One image, one chunk, the default MIN_SHARED_CHANNELS: output channels are cut into
    ``k // 64`` jobs or fewer, of unequal width when ``k`` is not a multiple."""
    rng = np.random.default_rng(k * count)
    x, weight = rng.standard_normal((1, 32, 5, 7)), rng.standard_normal((k, 32, 3, 3))
    b = rng.standard_normal(k)
    with kernel_settings(count, share_bytes=1):
        y = K.conv2d(x, weight, 1, 1, bias=b, relu=True)
    exact = np.maximum(reference_conv(x, weight, 1, 1) + b.reshape(1, -1, 1, 1), 0)
    assert relative_error(y, exact) <= EXACT


@pytest.mark.parametrize("count", [2, 4])
def test_workers_never_share_scratch_buffers(count):
    """Many large-ish blocks per worker, so that workers sharing a scratch buffer (im2col's
    columns, col2im's, Winograd's tiles) would overwrite each other's data mid-block."""
    rng = np.random.default_rng(count)
    x = rng.standard_normal((4, 8, 24, 24))
    weight = rng.standard_normal((16, 8, 3, 3))
    wide, wide_weight = rng.standard_normal((2, 32, 16, 16)), rng.standard_normal((40, 32, 3, 3))
    g = rng.standard_normal((4, 80, 24, 24))
    few = rng.standard_normal((80, 8, 3, 3))  # 9 * 8 <= 80: col2im
    exact = reference_conv(x, weight, 1, 1)
    exact_wide = reference_conv(wide, wide_weight, 1, 1)
    exact_grad = reference_input_grad(g, few, (24, 24), 1, 1)
    with kernel_settings(count, budget=20_000, share_bytes=1, share_channels=1):
        for _ in range(3):
            assert relative_error(K.conv2d(x, weight, 1, 1), exact) <= EXACT
            assert relative_error(K.conv2d(wide, wide_weight, 1, 1), exact_wide) <= EXACT
            grad = K.conv2d_input_grad(g, few, (24, 24), 1, 1)
            assert relative_error(grad, exact_grad) <= EXACT


@pytest.mark.parametrize(
    "kernel",
    [
        lambda: pooling.max_pool2d(np.zeros((0, 3, 4, 4)), 2, 2)[0],
        lambda: pooling.max_pool2d_scatter(
            np.zeros((0, 3, 2, 2)), np.zeros((0, 2, 2, 3), np.int8), (0, 3, 4, 4), 2, 2
        ),
        lambda: K.conv2d(np.zeros((0, 3, 5, 5)), np.ones((4, 3, 3, 3)), 1, 1),
        lambda: K.conv2d(np.zeros((0, 32, 5, 5)), np.ones((4, 32, 3, 3)), 1, 1),
        lambda: K.conv2d_input_grad(np.zeros((0, 27, 5, 5)), np.ones((27, 3, 3, 3)), (5, 5), 1, 1),
        lambda: K.conv2d_input_grad(np.zeros((0, 32, 5, 5)), np.ones((32, 8, 3, 3)), (5, 5), 1, 1),
        lambda: K.conv2d_input_grad(np.zeros((0, 4, 3, 3)), np.ones((4, 3, 3, 3)), (5, 5), 2, 1),
    ],
    ids=["pool", "pool-scatter", "im2col", "winograd", "col2im", "winograd-grad", "im2col-grad"],
)
@pytest.mark.parametrize("count", [1, 2])
def test_an_empty_batch_gives_an_empty_result(kernel, count):
    with kernel_settings(count):
        result = kernel()
    assert result.shape[0] == 0


def test_an_empty_batch_pools_through_the_functional_api():
    assert F.max_pool2d(Tensor(np.zeros((0, 3, 4, 4))), 2).shape == (0, 3, 2, 2)


# ----------------------------------------------------------------------------- autograd
@given(data=st.data(), count=st.integers(2, 4), tuning=tunings)
def test_gradients_do_not_depend_on_the_worker_count(data, count, tuning):
    """``max_pool2d(conv2d_relu(x, w, b))``: values, first and second derivatives on ``count``
    workers equal one worker's to float64 roundoff; a pooling layer alone, bit for bit."""
    n, c = data.draw(st.integers(1, 3)), data.draw(st.sampled_from([3, 32, 33]))
    k = data.draw(st.sampled_from([4, 34, 65]))
    h, w = data.draw(st.integers(2, 11)), data.draw(st.integers(2, 11))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    arrays = [rng.standard_normal(s) for s in ((n, c, h, w), (k, c, 3, 3), (k,))]
    r = rng.standard_normal((n, k, h // 2, w // 2))
    v = rng.standard_normal((n, c, h, w))
    dtype = data.draw(dtypes)
    pool_input = with_specials(rng, (n, k, h, w), dtype, 0.05)
    pool_grad = rng.standard_normal((n, k, h // 2, w // 2)).astype(dtype)

    def run(workers: int):
        with kernel_settings(workers, **tuning):
            x, weight, b = (Tensor(a, requires_grad=True) for a in arrays)
            y = F.max_pool2d(F.conv2d_relu(x, weight, b, padding=1), 2)
            gx, gw, gb = tg.grad(y, [x, weight, b], grad_outputs=Tensor(r), create_graph=True)
            (hw,) = tg.grad((gx * Tensor(v)).sum(), [weight])  # through the ReLU mask
            p = Tensor(pool_input, requires_grad=True)
            (gp,) = tg.grad(F.max_pool2d(p, 2), [p], grad_outputs=Tensor(pool_grad))
            return [t.data for t in (y, gx, gw, gb, hw)], gp.data

    serial, serial_pool = run(1)
    parallel, parallel_pool = run(count)
    for one, many in zip(serial, parallel):
        assert relative_error(many, one) <= EXACT
    assert_same_bits(serial_pool, parallel_pool)


# ----------------------------------------------------------------------------- threads
def release_blas_control() -> None:
    """Let any thread set OpenBLAS's thread count again. Recent threadpoolctl (3.8) lets only the
    thread that first set it change it until that thread lets go (or exits); other threads'
    limits silently do nothing. Older versions have no such rule (nothing to release)."""
    clear = getattr(
        getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None
    )
    if clear is not None:
        clear(force=True)


@pytest.fixture
def blas():
    """BLAS on >= 2 threads, no thread owning its limit; after the test, each library's thread
    count as before and no owner, whatever the kernels left behind."""
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    before = {lib["prefix"]: lib["num_threads"] for lib in controller.info()}
    release_blas_control()
    controller.limit(limits=max(2, *before.values(), 0))
    release_blas_control()
    if max(blas_threads(), default=1) < 2:
        pytest.skip("this BLAS runs on one thread only: nothing to limit")
    yield
    release_blas_control()
    controller.limit(limits=before)
    release_blas_control()


def test_an_error_inside_a_real_kernel_reaches_the_caller_and_leaves_things_working(blas):
    """A worker of a Winograd convolution fails mid-way: the caller gets that error, BLAS its
    threads, and the next convolution on the same pool is right."""
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((4, 32, 9, 9)), rng.standard_normal((8, 32, 3, 3))
    before = blas_threads()
    calls, limits = [], []
    lock = threading.Lock()
    original = W._tiles_in

    def failing(*args, **kwargs):
        with lock:
            calls.append(threading.current_thread().name)
            limits.append(blas_threads())
            third = len(calls) == 3
        if third:
            raise MemoryError("tile buffer")
        return original(*args, **kwargs)

    with kernel_settings(2, budget=1, share_bytes=1):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(W, "_tiles_in", failing)
            with pytest.raises(MemoryError, match="tile buffer"):
                K.conv2d(x, weight, 1, 1)
        assert len(set(calls)) == 2  # the caller's share and a worker's
        assert limits[:3] == [[1] * len(before)] * 3  # BLAS held to one thread meanwhile
        assert blas_threads() == before
        y = K.conv2d(x, weight, 1, 1)
    assert relative_error(y, reference_conv(x, weight, 1, 1)) <= EXACT
    assert blas_threads() == before


def test_map_chunks_waits_for_every_share_before_raising(blas):
    finished = threading.Event()
    limits = []

    def run(share):
        if 0 in share:
            raise RuntimeError("share 0 failed")
        time.sleep(0.3)
        limits.append(blas_threads())
        finished.set()

    try:
        with kernel_settings(2):
            with pytest.raises(RuntimeError, match="share 0 failed"):
                threads.map_chunks(run, [0, 1])
            returned_early = not finished.is_set()
    finally:
        finished.wait(DEADLINE)  # leave no worker of this test running into the next one
    assert not returned_early, "map_chunks raised while another share was still running"
    assert limits == [[1] * len(blas_threads())], "BLAS was released under a running share"


def test_blas_stays_limited_until_the_last_overlapping_kernel_finishes(blas):
    """Kernel A (another thread) enters first and leaves first while kernel B (this thread)
    still runs: B's shares must still see BLAS held to one thread."""
    b_entered, a_left = threading.Event(), threading.Event()
    seen_by_b = []

    def kernel_a() -> None:
        threads.map_chunks(lambda share: b_entered.wait(DEADLINE), [0, 1])
        a_left.set()

    def run_b(share) -> None:
        b_entered.set()
        a_left.wait(DEADLINE)
        seen_by_b.append(blas_threads())

    with kernel_settings(4):
        a = threading.Thread(target=kernel_a, daemon=True)
        a.start()
        time.sleep(0.05)  # let A enter first (it owns the BLAS limit then)
        threads.map_chunks(run_b, [0, 1])
        a.join(DEADLINE)
    assert a_left.is_set() and seen_by_b == [[1] * len(blas_threads())] * 2


def test_blas_is_limited_for_a_kernel_called_from_any_thread(blas):
    seen = []
    with kernel_settings(2):
        threads.map_chunks(lambda share: None, [0, 1])  # a kernel in this thread first
        other = threading.Thread(
            target=threads.map_chunks, args=(lambda share: seen.append(blas_threads()), [0, 1])
        )
        other.start()
        other.join(DEADLINE)
    assert seen == [[1] * len(blas_threads())] * 2


def test_blas_gets_its_threads_back_whichever_overlapping_kernel_ends_last(blas):
    before = blas_threads()
    other_entered, this_left = threading.Event(), threading.Event()

    def run_other(share) -> None:
        other_entered.set()
        this_left.wait(DEADLINE)

    other = threading.Thread(target=threads.map_chunks, args=(run_other, [0, 1]), daemon=True)

    def run_this(share) -> None:
        if 0 in share:  # this kernel has entered (and limited BLAS): start the other one
            other.start()
            other_entered.wait(DEADLINE)

    with kernel_settings(4):
        threads.map_chunks(run_this, [0, 1])
        this_left.set()
        other.join(DEADLINE)
        assert not other.is_alive(), "a kernel hung"
    assert blas_threads() == before


def test_a_real_kernel_inside_a_worker_runs_serially_and_right():
    rng = np.random.default_rng(5)
    x, weight = rng.standard_normal((2, 33, 6, 5)), rng.standard_normal((9, 33, 3, 3))
    results = {}

    def run(share):
        for job in share:
            results[job] = K.conv2d(x, weight, 1, 1, relu=job % 2 == 1)

    with kernel_settings(2, budget=1, share_bytes=1, share_channels=1):
        threads.map_chunks(run, [0, 1, 2, 3])
    exact = reference_conv(x, weight, 1, 1)
    for job, y in results.items():
        assert relative_error(y, np.maximum(exact, 0) if job % 2 else exact) <= EXACT
    assert sorted(results) == [0, 1, 2, 3]


def test_changing_the_worker_count_while_kernels_run_neither_deadlocks_nor_corrupts(blas):
    """Three threads run Winograd, im2col and pooling kernels in a loop while a fourth keeps
    changing the worker count between 1 and 4 (a new pool each time): every result is right,
    and everything finishes in time. (Whether BLAS gets its threads back when such kernels
    overlap: test_blas_gets_its_threads_back_whichever_overlapping_kernel_ends_last.)"""
    rng = np.random.default_rng(11)
    cases = {
        "winograd": (rng.standard_normal((2, 36, 10, 12)), rng.standard_normal((40, 36, 3, 3))),
        "im2col": (rng.standard_normal((3, 3, 9, 11)), rng.standard_normal((8, 3, 3, 3))),
    }
    exact = {name: reference_conv(x, w, 1, 1) for name, (x, w) in cases.items()}
    pool_input = with_specials(rng, (2, 8, 11, 13), np.float64, 0.1)
    with kernel_settings(1):
        pooled = pooling.max_pool2d(pool_input, 2, 2)
    before = threads.workers()
    errors: list[BaseException] = []
    stop = threading.Event()

    def convolve(name: str) -> None:
        x, w = cases[name]
        try:
            for _ in range(8):
                assert relative_error(K.conv2d(x, w, 1, 1), exact[name]) <= EXACT
        except BaseException as error:
            errors.append(error)

    def pool() -> None:
        try:
            for _ in range(8):
                for one, many in zip(pooled, pooling.max_pool2d(pool_input, 2, 2)):
                    assert_same_bits(one, many)
        except BaseException as error:
            errors.append(error)

    def toggle() -> None:
        count = 0
        while not stop.is_set():
            threads.set_workers(count % 4 + 1)
            count += 1
            time.sleep(0.001)

    with kernel_settings(2, budget=5000, share_bytes=1, share_channels=1):
        toggler = threading.Thread(target=toggle, daemon=True)
        runners = [
            threading.Thread(target=convolve, args=("winograd",), daemon=True),
            threading.Thread(target=convolve, args=("im2col",), daemon=True),
            threading.Thread(target=pool, daemon=True),
        ]
        toggler.start()
        for runner in runners:
            runner.start()
        deadline = time.monotonic() + DEADLINE
        for runner in runners:
            runner.join(max(0.0, deadline - time.monotonic()))
        stop.set()
        toggler.join(DEADLINE)
        assert not any(t.is_alive() for t in [*runners, toggler]), "a kernel thread hung"
    assert not errors, errors
    assert threads.workers() == before
