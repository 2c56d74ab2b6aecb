"""The chunked kernels on several worker threads (:mod:`tinygrad_edu.kernels.threads`).

Promises: the blocks a kernel is cut into cover every (image, row) once, as contiguous runs,
and give each worker one when they can; every kernel path gives the definition's numbers
whatever the worker count and chunk size (float64, to roundoff); BLAS gets its thread count back
after a parallel kernel, even one that raised; errors in a worker reach the caller; a kernel
called from inside a worker runs serially instead of deadlocking; a forked child runs parallel
kernels (a fresh pool, fresh locks, BLAS's threads back).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_kernels import reference_conv, reference_input_grad, relative_error

from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels import pooling
from tinygrad_edu.kernels.fast import gemm, layout, threads
from tinygrad_edu.kernels.fast import winograd as W

threadpoolctl = pytest.importorskip("threadpoolctl", reason="the threads extra is not installed")


@pytest.fixture
def workers():
    """Set the worker count for one test; restore the default after it."""
    before = threads.workers()
    yield threads.set_workers
    threads.set_workers(before)


def blas_threads() -> list[int]:
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return [lib["num_threads"] for lib in controller.info()]


@given(
    n=st.integers(1, 9),
    rows=st.integers(1, 40),
    row_bytes=st.integers(1, 50_000),
    budget=st.integers(1, 100_000),
    min_rows=st.integers(1, 64),
    count=st.integers(1, 5),
    min_share=st.sampled_from([None, 1, 2**20]),
)
def test_blocks_cover_everything_once_as_contiguous_runs(
    n, rows, row_bytes, budget, min_rows, count, min_share
):
    before = threads.workers()
    try:
        threads.set_workers(1)
        serial = layout.blocks(n, rows, row_bytes, budget, min_rows, min_share)
        threads.set_workers(count)
        jobs = layout.blocks(n, rows, row_bytes, budget, min_rows, min_share)
    finally:
        threads.set_workers(before)
    seen = np.zeros((n, rows), dtype=int)
    for images, band in jobs:
        assert 0 <= images.start < images.stop <= n and 0 <= band.start < band.stop <= rows
        if images.stop - images.start > 1:  # several images: whole ones, one run of memory
            assert (band.start, band.stop) == (0, rows)
        seen[images, band] += 1
    assert (seen == 1).all()
    work, least = n * rows * row_bytes, min_share or layout.MIN_SHARED_BYTES
    if n * rows >= count * min_rows and work >= count * least:
        assert len(jobs) >= count  # every worker gets a block of at least min_rows rows
    if work < 2 * least:
        assert jobs == serial  # too little work to share: cut as for one thread
    if row_bytes * rows > budget and count == 1:  # one image is too big: bands within budget
        assert all(band.stop - band.start <= max(1, budget // row_bytes) for _, band in jobs)


def test_map_chunks_gives_each_worker_a_disjoint_share(workers):
    """Three shares at once on three threads, the caller's among them: the barrier only opens
    when all three run side by side."""
    workers(3)
    shares, names = [], set()
    lock = threading.Lock()
    together = threading.Barrier(3, timeout=10)

    def run(share):
        together.wait()
        with lock:
            shares.append(share)
            names.add(threading.current_thread().name)

    threads.map_chunks(run, list(range(10)))
    assert sorted(shares) == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]  # round-robin, one per thread
    assert len(names) == 3 and threading.current_thread().name in names


def test_one_worker_runs_in_the_calling_thread(workers):
    workers(1)
    names = []
    threads.map_chunks(lambda share: names.append(threading.current_thread().name), [1, 2, 3])
    assert names == [threading.current_thread().name]


def test_blas_gets_its_threads_back_even_after_an_error(workers):
    workers(2)
    before = blas_threads()
    during = []

    def run(share):
        during.append(blas_threads())
        if 3 in share:
            raise RuntimeError("chunk 3 failed")

    with pytest.raises(RuntimeError, match="chunk 3 failed"):
        threads.map_chunks(run, [0, 1, 2, 3])
    assert during and all(counts == [1] * len(before) for counts in during)
    assert blas_threads() == before


def test_a_kernel_inside_a_worker_runs_serially(workers):
    workers(2)
    inner = []

    def run(share):
        outer = threading.current_thread().name
        threads.map_chunks(lambda s: inner.append((outer, threading.current_thread().name)), [0, 1])

    threads.map_chunks(run, [0, 1])
    assert len(inner) == 2 and all(outer == name for outer, name in inner)
    assert len({outer for outer, _ in inner}) == 2  # the caller's share and a worker's


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", None, True])
def test_set_workers_refuses_what_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="positive integer"):
        threads.set_workers(bad)


def test_set_workers_takes_numpy_integers(workers):
    workers(np.int64(2))
    assert threads.workers() == 2 and type(threads.workers()) is int


def test_threading_without_threadpoolctl_names_the_extra(monkeypatch):
    monkeypatch.setattr(threads, "ThreadpoolController", None)
    with pytest.raises(ImportError, match=r"tinygrad_edu\[threads\]"):
        threads.set_workers(2)
    threads.set_workers(1)  # serial stays available


@given(
    data=st.data(),
    count=st.sampled_from([1, 2, 3]),
    budget=st.sampled_from([1, 5000, 2**22]),
)
def test_every_kernel_path_is_exact_on_any_number_of_workers(data, count, budget):
    """Winograd (forward, and input gradient through a ReLU mask; chunks shared by rows or by
    output channels), im2col, col2im and the 2x2 pooling pair, on 1-3 workers and chunk sizes
    from one row to the whole batch: float64 results equal the definition to roundoff."""
    n = data.draw(st.integers(1, 3))
    h, w = data.draw(st.integers(1, 13)), data.draw(st.integers(1, 13))
    c = data.draw(st.sampled_from([2, 3, 32, 40]))
    k = data.draw(st.sampled_from([1, 4, 33]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((k, c, 3, 3))
    g = rng.standard_normal((n, k, h, w))
    mask = rng.standard_normal((n, k, h, w))
    bias = rng.standard_normal(k)
    with pytest.MonkeyPatch.context() as patch:  # setattr raises if a budget moved modules
        patch.setattr(W, "CHUNK_BUDGET", budget)
        patch.setattr(gemm, "IM2COL_BUDGET", budget)
        patch.setattr(pooling, "POOL_BUDGET", budget)
        patch.setattr(layout, "MIN_SHARED_BYTES", 1)  # share even these small inputs
        patch.setattr(pooling, "MIN_SHARED_BYTES", 1)
        patch.setattr(W, "MIN_SHARED_CHANNELS", 1)  # and their few output channels
        before = threads.workers()
        threads.set_workers(count)
        try:
            y = K.conv2d(x, weight, 1, 1, bias=bias, relu=True)
            grad = K.conv2d_input_grad(g, weight, (h, w), 1, 1, mask=mask)
            pooled, choice = pooling.max_pool2d(x, 2, 2)
            routed = pooling.max_pool2d_scatter(pooled, choice, x.shape, 2, 2)
        finally:
            threads.set_workers(before)
    exact = np.maximum(reference_conv(x, weight, 1, 1) + bias.reshape(1, -1, 1, 1), 0)
    assert relative_error(y, exact) <= 1e-12
    exact = reference_input_grad(g * (mask > 0), weight, (h, w), 1, 1)
    assert relative_error(grad, exact) <= 1e-12
    ho, wo = h // 2, w // 2
    windows = x[:, :, : 2 * ho, : 2 * wo].reshape(n, c, ho, 2, wo, 2)
    np.testing.assert_array_equal(pooled, windows.max(axis=(3, 5)))
    covered = x[:, :, : 2 * ho, : 2 * wo]
    winners = covered == np.repeat(np.repeat(pooled, 2, axis=2), 2, axis=3)
    np.testing.assert_array_equal(routed[:, :, : 2 * ho, : 2 * wo], np.where(winners, covered, 0))
    assert not routed[:, :, 2 * ho :].any() and not routed[:, :, :, 2 * wo :].any()


def test_kernels_called_from_several_user_threads_at_once(workers):
    """Overlapping parallel kernels share the pool, each gets its own result, and BLAS gets its
    threads back only when the last of them is done."""
    workers(2)
    before = blas_threads()
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((40, 36, 3, 3))
    images = [rng.standard_normal((2, 36, 10, 12)) for _ in range(4)]
    results: dict[int, np.ndarray] = {}

    def convolve(i: int) -> None:
        for _ in range(5):
            results[i] = K.conv2d(images[i], weight, 1, 1)

    callers = [threading.Thread(target=convolve, args=(i,)) for i in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    for i, x in enumerate(images):
        assert relative_error(results[i], reference_conv(x, weight, 1, 1)) <= 1e-12
    assert blas_threads() == before


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def in_forked_child(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Run ``check`` in a forked child; fail if it returns False, raises or hangs."""
    pid = os.fork()
    if pid == 0:  # the child reports through its exit status only
        code = 1
        try:
            code = 0 if check() else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung for {timeout} s (a deadlock)")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(done[1]) == 0, "the check failed in the forked child"


def _conv_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.standard_normal((4, 64, 16, 16)), rng.standard_normal((64, 64, 3, 3))


@needs_fork
def test_a_forked_child_runs_parallel_kernels(workers):
    """The parent's workers do not exist in the child: it must not wait for them."""
    workers(2)
    x, w = _conv_case()
    expected = K.conv2d(x, w, 1, 1)  # the parent's pool is up
    in_forked_child(lambda: np.array_equal(K.conv2d(x, w, 1, 1), expected))


@needs_fork
def test_locks_held_at_fork_time_do_not_hang_the_child(workers):
    """Another thread holds the pool's lock while the process forks."""
    workers(2)
    x, w = _conv_case()
    expected = K.conv2d(x, w, 1, 1)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with threads._lock:
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    try:
        in_forked_child(lambda: np.array_equal(K.conv2d(x, w, 1, 1), expected))
    finally:
        release.set()
        holder.join()


@needs_fork
def test_a_child_forked_during_a_parallel_kernel_gets_blas_threads_back(workers):
    """While a parallel kernel runs (in another thread), BLAS is held to one thread; the child
    must not inherit that limit with nobody left to lift it."""
    workers(2)
    before = blas_threads()
    inside, leave = threading.Event(), threading.Event()

    def run(share):
        inside.set()
        leave.wait()

    kernel = threading.Thread(target=threads.map_chunks, args=(run, [0, 1]))
    kernel.start()
    inside.wait()
    try:
        assert blas_threads() == [1] * len(before)
        x, w = _conv_case()
        in_forked_child(
            lambda: blas_threads() == before and np.isfinite(K.conv2d(x, w, 1, 1)).all()
        )
    finally:
        leave.set()
        kernel.join()
    assert blas_threads() == before
