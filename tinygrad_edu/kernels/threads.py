"""Running a kernel's independent chunks on every core.

NumPy runs its elementwise passes on one core, while its BLAS (OpenBLAS) multiplies matrices on
all of them -- and keeps its worker threads spinning for a while after each product. A kernel that
alternates elementwise transforms with matrix products (Winograd, im2col) therefore uses one core
for a large part of its time while the others spin: on the 2-core machine of
``docs/performance.md`` the single-threaded Winograd loop took 2x its wall time in CPU time.

:func:`map_chunks` runs the chunks on a pool of Python threads instead, one per core, with BLAS
limited to one thread meanwhile. NumPy releases the GIL inside its ufunc loops and BLAS calls, so
the workers' transforms and products really run side by side. Limiting BLAS needs
`threadpoolctl <https://github.com/joblib/threadpoolctl>`_ (the ``threads`` extra); without it,
or on one core, the chunks run one after another in the calling thread, as before.

The limit is process-wide while a parallel kernel runs: BLAS calls made meanwhile by *other*
threads of the program also get one thread.
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

Job = TypeVar("Job")

try:
    import threadpoolctl
    from threadpoolctl import ThreadpoolController
except ImportError:  # the optional ``threads`` extra is not installed: run serially
    threadpoolctl = ThreadpoolController = None


def _cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _default_workers() -> int:
    """As many workers as BLAS would use threads (so ``OPENBLAS_NUM_THREADS=1`` and friends keep
    a program on one core), at most one per core; 1 without threadpoolctl."""
    if ThreadpoolController is None:
        return 1
    blas = [lib["num_threads"] for lib in _blas().info()]
    return max(1, min(_cores(), max(blas, default=1)))


def _blas():
    """threadpoolctl's controller of the loaded BLAS libraries (found once: it scans them)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


_workers: int | None = None  # decided on first use, when NumPy's BLAS is loaded
_pool: ThreadPoolExecutor | None = None
_controller = None
_lock = threading.Lock()


def workers() -> int:
    """How many threads :func:`map_chunks` uses (1: serial)."""
    global _workers
    if _workers is None:
        _workers = _default_workers()
    return _workers


def set_workers(count: int) -> None:
    """Use ``count`` threads for chunked kernels (1 turns threading off).

    ``count > 1`` needs threadpoolctl (the ``threads`` extra), to keep BLAS to one thread per
    worker; raises ``ImportError`` naming it otherwise."""
    global _workers, _pool
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"workers must be a positive integer, got {count!r}")
    count = int(count)
    if count > 1 and ThreadpoolController is None:
        raise ImportError(
            "parallel kernels need threadpoolctl: pip install 'tinygrad_edu[threads]'"
        )
    with _lock:
        if count != _workers:
            _pool = None  # a new pool on next use; the old one's idle threads exit with it
        _workers = count


def map_chunks(run: Callable[[Sequence[Job]], None], jobs: Sequence[Job]) -> None:
    """Call ``run`` on disjoint shares of ``jobs`` (round-robin), one share per worker thread.

    ``run`` gets its share as a list and must only write what those jobs own; it typically
    allocates its scratch buffers once and reuses them for every job of its share. Exceptions
    from any worker are re-raised here. Called from inside a worker, it runs serially.
    """
    count = min(workers(), len(jobs))
    if count <= 1 or getattr(_inside, "worker", False):
        run(list(jobs))
        return
    pool = _enter_parallel()
    try:
        futures = [pool.submit(_as_worker, run, list(jobs[i::count])) for i in range(count)]
        wait(futures)  # every share has finished (or failed) before the caller goes on
        for future in futures:
            future.result()  # the first failure, in share order
    finally:
        _leave_parallel()


def _as_worker(run: Callable[[Sequence[Job]], None], share: Sequence[Job]) -> None:
    _inside.worker = True
    run(share)


_inside = threading.local()  # .worker: this thread is one of the pool's
_active = 0  # parallel kernels running now (several callers may overlap)
_blas_limit = None  # threadpoolctl's limit while any of them runs


def _enter_parallel() -> ThreadPoolExecutor:
    """Limit BLAS to one thread (first caller in) and return the shared pool."""
    global _pool, _active, _blas_limit
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="tinygrad_edu")
        if _active == 0:
            _blas_limit = _changing_blas(lambda: _blas().limit(limits=1))
        _active += 1
        return _pool


def _leave_parallel() -> None:
    """Give BLAS its threads back when the last parallel kernel finishes."""
    global _active, _blas_limit
    with _lock:
        _active -= 1
        if _active == 0:
            _changing_blas(_blas_limit.restore_original_limits)
            _blas_limit = None


def _changing_blas(change: Callable[[], Job]) -> Job:
    """``change()`` of OpenBLAS's (process-wide) thread count, from whichever thread calls.

    threadpoolctl (>= 3.6) lets only one thread change it, the first that did, until that thread
    releases the role -- which its ``with`` blocks do and a limit kept across calls does not. The
    limit and the restore here may come from different threads (overlapping kernels: the first
    in sets, the last out restores), so the role is released before and after each change.
    """
    release = getattr(
        getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None
    )
    if release is not None:
        release(force=True)
    try:
        return change()
    finally:
        if release is not None:
            release(force=True)
