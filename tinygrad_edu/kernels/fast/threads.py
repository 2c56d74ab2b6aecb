"""Running a kernel's independent chunks on every core.

NumPy runs its elementwise passes on one core, while its BLAS (OpenBLAS) multiplies matrices on
all of them -- and keeps its worker threads spinning for a while after each product. A kernel that
alternates elementwise transforms with matrix products (Winograd, im2col) therefore uses one core
for a large part of its time while the others spin: on the 2-core machine of
``docs/performance.md`` the single-threaded Winograd loop took 2x its wall time in CPU time.

:func:`map_chunks` shares the chunks among one thread per core instead (the caller and daemon
workers), with BLAS limited to one thread meanwhile. NumPy releases the GIL inside its ufunc
loops and BLAS calls, so the threads' transforms and products really run side by side. Limiting
BLAS needs `threadpoolctl <https://github.com/joblib/threadpoolctl>`_ (the ``threads`` extra);
without it, or on one core, the chunks run one after another in the calling thread, as before.

The limit is process-wide while a parallel kernel runs: BLAS calls made meanwhile by *other*
threads of the program also get one thread.

After ``os.fork()`` (``multiprocessing``'s default start method on Linux) the child has only the
forking thread: the workers are gone, and a lock another thread held stays locked. The child
therefore starts afresh -- a new pool on its first parallel kernel -- and BLAS gets its threads
back if a parallel kernel was running in the parent.

The calling thread runs the first share itself and hands the others to idle workers through a
queue: a hand-off costs tens of microseconds, and a batch-1 VGG iteration makes ~40 of them.
Kernels share their work among the workers (BLAS on one thread) whenever it can be cut, rather
than leaving the threading to BLAS: OpenBLAS's idle threads spin for a while after each product
they share and would steal a core from the next kernel's workers (measured in
``docs/convolution.md``).
"""

from __future__ import annotations

import numbers
import os
import queue
import threading
from collections.abc import Callable, Sequence
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
    """threadpoolctl's controller of the loaded BLAS libraries (found once: it scans them; again
    after :func:`rescan_blas`)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


_workers: int | None = None  # decided on first use, when NumPy's BLAS is loaded
_pool: _Pool | None = None
_controller = None
_lock = threading.Lock()


class _Pool:
    """``count`` daemon threads taking ``(run, share, index, done)`` tasks from one queue; each
    puts ``(index, exception or None)`` on the task's own ``done`` queue. ``None`` stops one."""

    def __init__(self, count: int) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.count = count
        for i in range(count):
            name = f"tinygrad_edu_{i}"
            threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        _inside.worker = True
        while (task := self.tasks.get()) is not None:
            run, share, index, done = task
            outcome = _failure(run, share)
            del task, run, share  # before the caller wakes: nothing of its kernel stays alive
            done.put((index, outcome))

    def close(self) -> None:
        for _ in range(self.count):
            self.tasks.put(None)


def _failure(run: Callable[[Sequence[Job]], None], share: Sequence[Job]) -> BaseException | None:
    """Run one share; its exception, or ``None``."""
    try:
        run(share)
    except BaseException as error:  # handed to the caller, which re-raises it
        return error
    return None


def rescan_blas() -> None:
    """Find the loaded BLAS libraries again when the next parallel kernel limits them: call after
    importing a module that loads another one (numba imports SciPy, which brings its own
    OpenBLAS). A limit already in place is restored on the libraries it limited."""
    global _controller
    with _lock:
        _controller = None


def workers() -> int:
    """How many threads :func:`map_chunks` uses, the caller's included (1: serial)."""
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
            "parallel kernels need threadpoolctl (the 'threads' extra): pip install threadpoolctl"
        )
    with _lock:
        if count != _workers and _pool is not None:
            _retired.append(_pool)  # closed once no kernel is using it
            _pool = None  # a new pool on next use
            _close_retired()
        _workers = count


def map_chunks(run: Callable[[Sequence[Job]], None], jobs: Sequence[Job]) -> None:
    """Call ``run`` on disjoint shares of ``jobs`` (round-robin), one per thread: the first in
    the calling thread, the others queued for the pool's workers (an idle worker may take two).

    ``run`` gets its share as a list and must only write what those jobs own; it typically
    allocates its scratch buffers once and reuses them for every job of its share. Every share
    has finished before this returns or raises; the first exception, in share order, is
    re-raised. Called from inside a share, it runs serially.
    """
    count = min(workers(), len(jobs))
    if count <= 1 or getattr(_inside, "worker", False):
        run(list(jobs))
        return
    shares = [list(jobs[i::count]) for i in range(count)]
    done: queue.SimpleQueue = queue.SimpleQueue()
    pool = _enter_parallel(count)
    try:
        for index in range(1, count):
            pool.tasks.put((run, shares[index], index, done))
        _inside.worker = True  # a kernel inside the caller's share runs serially too
        try:
            failures = {0: _failure(run, shares[0])}
        finally:
            _inside.worker = False
        failures.update(done.get() for _ in range(1, count))
    finally:
        _leave_parallel()
    for index in range(count):
        if failures[index] is not None:
            raise failures[index]


_inside = threading.local()  # .worker: this thread is one of the pool's
_active = 0  # parallel kernels running now (several callers may overlap)
_blas_limit = None  # threadpoolctl's limit while any of them runs
_retired: list[_Pool] = []  # pools replaced by set_workers, still in use by running kernels


def _close_retired() -> None:
    """Stop the threads of replaced pools once no kernel can still queue tasks on them
    (called with ``_lock`` held)."""
    if _active == 0:
        while _retired:
            _retired.pop().close()


def _enter_parallel(count: int) -> _Pool:
    """Limit BLAS to one thread (first caller in) and return the shared pool, with at least one
    worker for a caller of ``count`` shares (``workers()`` may have changed since it counted)."""
    global _pool, _active, _blas_limit
    with _lock:
        if _pool is None:
            _pool = _Pool(max(workers(), count) - 1)
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
            _close_retired()


def _start_afresh_after_fork() -> None:
    """In a forked child: forget the parent's workers, locks and BLAS limit."""
    global _pool, _lock, _active, _blas_limit
    _lock = threading.Lock()
    _pool = None
    _retired.clear()
    if _blas_limit is not None:  # a parallel kernel was running in another thread
        _changing_blas(_blas_limit.restore_original_limits)
    _active, _blas_limit = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_start_afresh_after_fork)


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
