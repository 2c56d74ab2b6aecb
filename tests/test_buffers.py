"""The kernels' caching allocator (tinygrad_edu.kernels.buffers): reuse only what nobody holds."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu.kernels import buffers
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels.buffers import BufferPool


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_small_arrays_come_from_numpy() -> None:
    pool = BufferPool(min_bytes=1024)
    a = pool.empty((16, 8), np.float32)  # 512 bytes
    assert a.flags.owndata and pool.held_bytes() == 0


def test_a_buffer_is_reused_once_nothing_references_it() -> None:
    pool = BufferPool(min_bytes=0)
    a = pool.empty((64, 64), np.float32)
    where = address(a)
    b = pool.empty((64, 64), np.float32)
    assert address(b) != where  # ``a`` still holds its buffer
    del a
    c = pool.empty((4096,), np.int32)  # same size, another dtype and shape
    assert address(c) == where and c.shape == (4096,) and c.dtype == np.int32
    assert b.flags.c_contiguous and b.flags.writeable


def test_a_view_keeps_its_buffer_in_use() -> None:
    pool = BufferPool(min_bytes=0)
    a = pool.empty((8, 8), np.float64)
    a[...] = 7.0
    view = a.T[::2]
    del a
    b = pool.empty((8, 8), np.float64)
    b[...] = -1.0
    assert np.all(view == 7.0)
    assert pool.free_bytes() == 0
    del view
    assert pool.free_bytes() == 8 * 8 * 8


def test_zeros_are_zero_in_a_reused_buffer() -> None:
    pool = BufferPool(min_bytes=0)
    a = pool.empty((32, 32), np.float32)
    a[...] = np.nan
    del a
    z = pool.zeros((32, 32), np.float32)
    assert pool.held_bytes() == 32 * 32 * 4 and np.all(z == 0)


def test_a_smaller_request_takes_a_buffer_within_the_slack() -> None:
    pool = BufferPool(min_bytes=0, slack=2)
    del_me = pool.empty(1000, np.uint8)
    del del_me
    fits = pool.empty(600, np.uint8)  # 1000 <= 2 * 600: reused
    assert pool.held_bytes() == 1000 and fits.nbytes == 600
    del fits
    small = pool.empty(400, np.uint8)  # 1000 > 2 * 400: a new buffer
    assert small.nbytes == 400 and pool.free_bytes() in (0, 1000)


def test_the_pool_never_holds_more_than_its_peak_in_use() -> None:
    """A loop whose sizes shift keeps the memory of its first pass, not the sum of all sizes."""
    pool = BufferPool(min_bytes=0, max_free_bytes=10**9)
    sizes = [4000, 3000, 9000, 1000, 6000, 8000]
    peak = 0
    for _ in range(3):
        live = []
        for i, size in enumerate(sizes):
            live.append(pool.empty(size, np.uint8))
            peak = max(peak, sum(a.base.nbytes for a in live))  # in use right now
            assert pool.held_bytes() <= peak
            if i % 2:
                live.pop(0)
        del live
    assert pool.held_bytes() <= peak
    assert peak <= pool.slack * sum(sorted(sizes)[-2:])  # two live at once, each within slack


def test_free_buffers_are_bounded() -> None:
    pool = BufferPool(min_bytes=0, max_free_bytes=3000)
    arrays = [pool.empty(1000 * (i + 1), np.uint8) for i in range(4)]  # 10000 bytes in use
    del arrays
    big = pool.empty(20000, np.uint8)  # nothing fits: free buffers shrink to the bound
    assert pool.free_bytes() <= 3000 and big.nbytes == 20000


def test_free_buffers_are_bounded_when_a_buffer_is_reused_too() -> None:
    pool = BufferPool(min_bytes=0, max_free_bytes=3000)
    arrays = [pool.empty(size, np.uint8) for size in (1000, 2000, 3000, 4000)]
    del arrays  # 10000 bytes free
    reused = pool.empty(1000, np.uint8)  # a hit: the oldest free buffers go beyond the bound
    assert pool.free_bytes() <= 3000 and pool.held_bytes() <= 4000 + reused.nbytes


def test_release_drops_every_free_buffer() -> None:
    pool = BufferPool(min_bytes=0)
    kept = pool.empty(100, np.uint8)
    pool.empty(200, np.uint8)  # dropped at once: free
    assert pool.release() == 200
    assert pool.held_bytes() == 100 and pool.free_bytes() == 0
    del kept


def test_without_exact_reference_counts_every_array_comes_from_numpy(monkeypatch) -> None:
    monkeypatch.setattr(buffers, "EXACT_COUNTS", False)
    pool = BufferPool(min_bytes=0)
    assert pool.empty((10, 10)).flags.owndata and pool.held_bytes() == 0


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), 0, ()])
def test_empty_and_scalar_shapes(shape) -> None:
    pool = BufferPool(min_bytes=0)
    assert pool.empty(shape, np.float32).shape == np.empty(shape, np.float32).shape
    assert pool.zeros(shape, np.int8).shape == np.zeros(shape, np.int8).shape


def test_bad_shapes_fail_as_in_numpy() -> None:
    with pytest.raises(ValueError):
        BufferPool(min_bytes=0).empty((-1, 4))


_DTYPES = [np.bool_, np.int8, np.int32, np.float32, np.float64, np.complex128]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["new", "view", "drop", "release"]),
            st.integers(0, 40),
            st.sampled_from(_DTYPES),
        ),
        max_size=40,
    )
)
def test_no_live_array_is_ever_overwritten(operations) -> None:
    """Any mix of allocations, views of live arrays and drops: every array still reads the
    value it was given, whichever buffers the pool reuses."""
    pool = BufferPool(min_bytes=0, slack=3)
    live: list[tuple[np.ndarray, object]] = []
    for serial, (what, size, dtype) in enumerate(operations):
        if what == "new":
            a = pool.empty((size, 2), dtype)
            value = np.array(serial % 100, dtype=dtype)
            a[...] = value
            live.append((a, value))
        elif what == "view" and live:
            a, value = live[size % len(live)]
            live.append((a[::-1, :1], value))
        elif what == "drop" and live:
            live.pop(size % len(live))
        elif what == "release":
            pool.release()
        for a, value in live:
            assert np.all(a == value)


def test_threads_never_share_a_buffer() -> None:
    pool = BufferPool(min_bytes=0)
    failures: list[str] = []

    def work(tag: int) -> None:
        for i in range(300):
            a = pool.empty(1000 + (i % 3) * 500, np.int32)
            a[...] = tag
            if not np.all(a == tag):  # pragma: no cover - the failure this test looks for
                failures.append(f"thread {tag}, round {i}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert failures == []


def test_kernel_outputs_survive_later_calls(monkeypatch) -> None:
    """Outputs the kernels hand out stay intact while held, through calls that reuse memory."""
    monkeypatch.setattr(buffers.POOL, "min_bytes", 0)  # every output and scratch array pooled
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 64, 32, 32)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    first = K.conv2d(x, w, padding=1, relu=True)
    assert first.base is not None and first.base.dtype == np.uint8  # a view of a pool buffer
    kept = first.copy()
    for _ in range(3):
        second = K.conv2d_input_grad(x, w, (32, 32), padding=1, mask=first)
        del second
        K.conv2d(-x, w, padding=1)
    np.testing.assert_array_equal(first, kept)
