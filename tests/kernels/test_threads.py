"""The chunked kernels on several worker threads (:mod:`tinygrad_edu.kernels.fast.threads`).

Promises: the blocks a kernel is cut into cover every (image, row) once, as contiguous runs,
and give each worker one when they can; every kernel path gives the definition's numbers
whatever the worker count and chunk size (float64, to roundoff); BLAS gets its thread count back
after a parallel kernel, even one that raised; errors in a worker reach the caller; a kernel
called from inside a worker runs serially instead of deadlocking; a forked child runs parallel
kernels (a fresh pool, fresh locks, BLAS's threads back).

The adversarial half: shapes 1-pixel, odd and prime heights and widths, batches of 1 and many,
channel counts on both sides of every threshold (Winograd from 32 input channels, col2im while
``kh*kw*C <= K``, output channels shared among workers from ``MIN_SHARED_CHANNELS``); chunk budgets
from one byte up, work shared however small (``MIN_SHARED_BYTES = 1``), 1-4 workers; float32 and
float64, NCHW-, NHWC- and Fortran-backed, strided and reversed views, ties, NaN, +-inf and -0.0.
Also: 2x2 max pooling gives the same bits on any number of workers; autograd gradients through
``conv2d_relu`` and ``max_pool2d`` do not depend on the worker count; changing the worker count
while other threads run kernels neither deadlocks nor corrupts a result; concurrent callers of
``map_chunks`` each get all their jobs run once, and the first exception in share order reaches
the caller after every share finished.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.kernel_references import (
    TOLERANCE,
    nhwc_backed,
    reference_conv,
    reference_input_grad,
    relative_error,
    stored_kernel_everywhere,
    worker_count,
)
from tinygrad_edu import Tensor
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels import jit, pooling
from tinygrad_edu.kernels.fast import gemm, layout, threads
from tinygrad_edu.kernels.fast import winograd as W
from tinygrad_edu.kernels.jit import winograd4x4 as W4
from tinygrad_edu.nn import functional as F

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
    groups = {(images.start, images.stop) for images, _ in jobs}
    heights = {band.stop - band.start for _, band in jobs}
    assert max(b - a for a, b in groups) - min(b - a for a, b in groups) <= 1  # even groups
    assert max(heights) - min(heights) <= 1  # and even bands: no thin remainder
    for images, band in jobs:
        assert 0 <= images.start < images.stop <= n and 0 <= band.start < band.stop <= rows
        if images.stop - images.start > 1:  # several images: whole ones, one run of memory
            assert (band.start, band.stop) == (0, rows)
        seen[images, band] += 1
    assert (seen == 1).all()
    work, least = n * rows * row_bytes, min_share or layout.MIN_SHARED_BYTES
    # blocks of at least min_rows rows: bands of one image, or runs of whole images
    possible = n * (rows // min_rows) if rows >= min_rows else n // -(-min_rows // rows)
    if possible >= count and work >= count * least:
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


def test_threading_without_threadpoolctl_names_the_extra(workers, monkeypatch):
    # (fixture order: monkeypatch is undone first, so the worker count is restored with
    # threadpoolctl back in place, and later tests do not run serially)
    monkeypatch.setattr(threads, "ThreadpoolController", None)
    with pytest.raises(ImportError, match=r"threadpoolctl \(the 'threads' extra\)"):
        workers(2)
    workers(1)  # serial stays available


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
        for winograd in (W, W4):  # the NumPy path's and the fused path's
            patch.setattr(winograd, "CHUNK_BUDGET", budget)
            patch.setattr(winograd, "MIN_SHARED_CHANNELS", 1)  # and their few output channels
        patch.setattr(gemm, "IM2COL_BUDGET", budget)
        patch.setattr(pooling, "POOL_BUDGET", budget)
        patch.setattr(layout, "MIN_SHARED_BYTES", 1)  # share even these small inputs
        patch.setattr(pooling, "MIN_SHARED_BYTES", 1)
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


# ------------------------------------------------ map_chunks under concurrent callers
TIMEOUT = 30.0  # seconds: a kernel that takes longer has deadlocked


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


def test_concurrent_callers_each_get_all_their_jobs_run_once(workers):
    workers(3)
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


def test_set_workers_from_another_thread_while_kernels_run(workers):
    """Kernels on the stored-kernel path (output channels always shared) keep giving the right
    result while another thread changes the worker count between 2 and 4; nothing deadlocks,
    and once everything is idle the replaced pools' threads are gone."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 4, 4))
    w = rng.standard_normal((8, 3, 3, 3))
    exact = reference_conv(x, w, 1, 1)
    workers(2)
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
    workers(2)
    threads.map_chunks(lambda share: None, [0, 1])  # the current pool: one worker
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _pool_threads() > 1:
        time.sleep(0.01)
    assert _pool_threads() == 1 and not threads._retired


def _pool_threads() -> int:
    return sum(t.name.startswith("tinygrad_edu_") and t.is_alive() for t in threading.enumerate())


def test_set_workers_to_one_racing_a_starting_kernel_does_not_deadlock(workers):
    workers(3)
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
def test_the_first_exception_in_share_order_after_all_shares_finished(workers, failing):
    workers(3)
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


def test_the_callers_share_runs_in_the_caller_and_nested_calls_run_serially(workers):
    workers(4)
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


@pytest.mark.parametrize("last_out", ["first_in", "second_in"])
def test_blas_limit_spans_overlapping_kernels_and_is_restored_by_the_last_out(workers, last_out):
    """Two callers overlap; BLAS stays on one thread until the last one leaves, and that one
    restores it even when the limit was set from the other thread."""
    workers(2)
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


def test_a_base_exception_in_a_workers_share_reaches_the_caller(workers):
    workers(2)

    def run(share):
        if share[0] == 1:
            raise KeyboardInterrupt

    outcome = run_in_thread(lambda: threads.map_chunks(run, [0, 1]))
    assert outcome[0][0] == "error" and isinstance(outcome[0][1], KeyboardInterrupt)
    threads.map_chunks(lambda share: None, [0, 1])  # the pool still serves


#: float64 results of every convolution path stay this close to the definition
EXACT = 1e-12
#: seconds a concurrency test may take before it counts as a deadlock
DEADLINE = 60.0
#: memory layouts of an NCHW-shaped input (see :func:`laid_out`)
LAYOUTS = ("nchw", "nhwc", "fortran", "strided", "reversed")
#: values that break naive max/argmax code
SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0])


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
            patch.setattr(W4, "CHUNK_BUDGET", budget)
            patch.setattr(gemm, "IM2COL_BUDGET", budget)
            patch.setattr(pooling, "POOL_BUDGET", budget)
        if share_bytes is not None:
            patch.setattr(layout, "MIN_SHARED_BYTES", share_bytes)
            patch.setattr(pooling, "MIN_SHARED_BYTES", share_bytes)
        if share_channels is not None:
            patch.setattr(W, "MIN_SHARED_CHANNELS", share_channels)
            patch.setattr(W4, "MIN_SHARED_CHANNELS", share_channels)
        with worker_count(count):
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
    transforms = W  # the module whose input transform the convolution runs
    if jit.applies(x, weight):  # the jit extra's fused one
        from tinygrad_edu.kernels.jit import winograd4x4 as transforms
    original = transforms._tiles_in

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
            patch.setattr(transforms, "_tiles_in", failing)
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
