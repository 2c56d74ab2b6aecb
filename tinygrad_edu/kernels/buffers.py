r"""A caching allocator: large kernel outputs reuse the memory of arrays nobody holds any more.

Memory that is new to a process costs more than its bytes. The first write to each 4 KiB page
traps into the operating system, which finds a page and zeroes it; freeing a large array hands
its pages back, so the next step of a loop pays again. In a VGG ascent iteration at batch 16 that
was 11% of all CPU time (``clear_page`` in ``perf``), for memory the previous step had just
freed. Deep-learning frameworks keep freed blocks for reuse (PyTorch's caching allocator); the
kernels here take their large outputs and scratch arrays from this pool, :func:`empty` and
:func:`zeros` instead of NumPy's.

**How the pool knows a buffer is free.** It keeps one reference to every buffer it made, and
hands out views of them. A view, and every view of that view, holds a reference to the buffer
(NumPy's ``base``). So when a buffer's reference count is back to the pool's own, no array can
read or write it any more, and it may be handed out again (CPython's reference counts,
:func:`sys.getrefcount`).

Bounds. Arrays under :data:`MIN_BYTES` come from NumPy directly. A free buffer serves a request
of its size or up to :data:`SLACK` times smaller (the smallest that fits). When none fits, a new
buffer is made, and free buffers are dropped, least recently used first, until the pool holds no
more than the most its buffers were ever in use at once -- so the pool never raises the peak
memory of a loop above its first pass. Whenever it hands out a buffer, it keeps at most
:data:`MAX_FREE_BYTES` of free ones. :func:`release` drops every free buffer at once. A long-lived
array may hold a buffer up to :data:`SLACK` times its size.

Where reference counts are not exact (not CPython, or a free-threaded build), every array comes
from NumPy.
"""

from __future__ import annotations

import math
import operator
import os
import sys
import sysconfig
import threading
import weakref
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

#: smaller arrays come from NumPy: glibc keeps them in its heap and reuses their pages (pooling
#: the 0.3-1 MiB scratch arrays of a batch-1 iteration only added misses)
MIN_BYTES = 4 * 2**20
#: most bytes of free buffers kept for reuse
MAX_FREE_BYTES = 512 * 2**20
#: a free buffer serves a request at most this many times smaller than itself
SLACK = 2

Shape = int | Sequence[int]


def _pooled_count() -> int:
    """The reference count :meth:`BufferPool._free` sees for a buffer only its list holds,
    measured once the same way (so it holds across CPython versions)."""
    probe = [np.empty(1, dtype=np.uint8)]
    return sys.getrefcount(probe[0])


#: whether a buffer's reference count tells that nothing uses it
EXACT_COUNTS = sys.implementation.name == "cpython" and not sysconfig.get_config_var(
    "Py_GIL_DISABLED"
)
_ONLY_THE_POOL = _pooled_count() if EXACT_COUNTS else 0


class BufferPool:
    """Buffers handed out as arrays by :meth:`empty` and :meth:`zeros`, reused once unreferenced.

    ``min_bytes``, ``max_free_bytes``, ``slack``: see :data:`MIN_BYTES`, :data:`MAX_FREE_BYTES`,
    :data:`SLACK`. Thread-safe.
    """

    def __init__(
        self, min_bytes: int = MIN_BYTES, max_free_bytes: int = MAX_FREE_BYTES, slack: float = SLACK
    ) -> None:
        self.min_bytes, self.max_free_bytes, self.slack = min_bytes, max_free_bytes, slack
        self._lock = threading.Lock()
        self._buffers: list[np.ndarray] = []  # least recently handed out first
        self._peak_in_use = 0  # the most bytes of buffers in use at once
        _POOLS.add(self)

    def empty(self, shape: Shape, dtype: DTypeLike = np.float64) -> np.ndarray:
        """Like :func:`numpy.empty`: an uninitialised C-contiguous array.

        From NumPy instead: small arrays, dtypes holding Python objects (reused bytes would be
        stale pointers) or sub-arrays, and shapes NumPy refuses (its own error then)."""
        dims, dtype = _dims(shape), np.dtype(dtype)
        nbytes = self._pooled_bytes(dims, dtype)
        if nbytes is None:
            return np.empty(dims, dtype=dtype)
        with self._lock:  # the view holds a reference before another thread looks at the buffer
            return self._take(nbytes).view(dtype).reshape(dims)

    def zeros(self, shape: Shape, dtype: DTypeLike = np.float64) -> np.ndarray:
        """Like :func:`numpy.zeros`: from the pool, every byte zeroed (0, and '' for strings)."""
        dims, dtype = _dims(shape), np.dtype(dtype)
        if self._pooled_bytes(dims, dtype) is None:
            return np.zeros(dims, dtype=dtype)
        out = self.empty(dims, dtype)
        out.reshape(-1).view(np.uint8).fill(0)
        return out

    def _pooled_bytes(self, dims: tuple[int, ...], dtype: np.dtype) -> int | None:
        """The bytes of an array the pool would hand out, ``None`` for one NumPy should make."""
        nbytes = math.prod(dims) * dtype.itemsize
        plain = not (dtype.hasobject or dtype.subdtype is not None)
        fits = min(dims, default=0) >= 0 and self.min_bytes <= nbytes <= sys.maxsize
        return nbytes if EXACT_COUNTS and plain and fits else None

    def held_bytes(self) -> int:
        """Bytes of all buffers the pool keeps, in use or free."""
        with self._lock:
            return sum(buffer.nbytes for buffer in self._buffers)

    def free_bytes(self) -> int:
        """Bytes of the free buffers, waiting for reuse."""
        with self._lock:
            return sum(self._buffers[i].nbytes for i in self._free())

    def release(self) -> int:
        """Drop every free buffer (its memory goes back to the C allocator) and forget the
        peak; returns the bytes dropped."""
        with self._lock:
            dropped = self._drop(self._free(), keep_bytes=0)
            self._peak_in_use = sum(buffer.nbytes for buffer in self._buffers)
            return dropped

    def _free(self) -> list[int]:
        """Indices of the buffers nothing but the pool references, ascending."""
        buffers = self._buffers
        return [i for i in range(len(buffers)) if sys.getrefcount(buffers[i]) == _ONLY_THE_POOL]

    def _take(self, nbytes: int) -> np.ndarray:
        """``nbytes`` of the smallest free buffer that holds them (at most ``slack`` times
        larger), or of a new buffer -- then free buffers go until the pool holds no more than
        its peak in use; at most ``max_free_bytes`` of them stay either way."""
        free = self._free()
        fits = [i for i in free if nbytes <= self._buffers[i].nbytes <= self.slack * nbytes]
        if fits:
            fit = min(fits, key=lambda i: self._buffers[i].nbytes)
            free.remove(fit)
            buffer = self._buffers.pop(fit)
            free = [i - 1 if i > fit else i for i in free]  # those after ``fit`` moved down
            self._drop(free, keep_bytes=self.max_free_bytes)
        else:
            buffer = np.empty(nbytes, dtype=np.uint8)  # may raise: then nothing changed
            held = sum(self._buffers[i].nbytes for i in free)
            in_use = sum(b.nbytes for b in self._buffers) - held + nbytes
            self._peak_in_use = max(self._peak_in_use, in_use)
            self._drop(free, keep_bytes=min(self.max_free_bytes, self._peak_in_use - in_use))
        self._buffers.append(buffer)
        return buffer[:nbytes]

    def _drop(self, free: list[int], keep_bytes: int) -> int:
        """Drop the least recently used of the free buffers at indices ``free`` (ascending)
        until at most ``keep_bytes`` of them remain; returns the bytes dropped."""
        held = sum(self._buffers[i].nbytes for i in free)
        dropped = []
        for i in free:
            if held <= keep_bytes:
                break
            held -= self._buffers[i].nbytes
            dropped.append(i)
        dropped_bytes = sum(self._buffers[i].nbytes for i in dropped)
        for i in reversed(dropped):
            del self._buffers[i]
        return dropped_bytes


def _dims(shape: Shape) -> tuple[int, ...]:
    """``shape`` as a tuple of Python ints (NumPy integers would wrap around when multiplied)."""
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return tuple(operator.index(d) for d in dims)


_POOLS: weakref.WeakSet[BufferPool] = weakref.WeakSet()


def _unlock_after_fork() -> None:
    """In a forked child only the forking thread exists: a lock another thread held when the
    process forked would stay locked, so every pool gets a new one."""
    for pool in list(_POOLS):
        pool._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_unlock_after_fork)

#: the pool the kernels allocate from
POOL = BufferPool()


def empty(shape: Shape, dtype: DTypeLike = np.float64) -> np.ndarray:
    """:meth:`BufferPool.empty` of :data:`POOL`."""
    return POOL.empty(shape, dtype)


def zeros(shape: Shape, dtype: DTypeLike = np.float64) -> np.ndarray:
    """:meth:`BufferPool.zeros` of :data:`POOL`."""
    return POOL.zeros(shape, dtype)
