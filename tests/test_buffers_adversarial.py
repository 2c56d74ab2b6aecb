"""Adversarial tests of the kernels' caching allocator (:mod:`tinygrad_edu.kernels.buffers`).

:mod:`test_buffers` states the pool's promises; this file tries to break them, as a reviewer who
wants to show that it corrupts data or leaks memory:

* every way a Python object can keep a handed-out array's memory alive -- views of all kinds,
  the buffer protocol, ctypes, DLPack, Tensors, closures, frames, finalizers, tracebacks,
  out-of-band pickles -- must keep the pool from handing that memory out again, and must let it
  be reused once the object dies; copies must not alias;
* the kernels (every convolution and input-gradient formulation, max pooling and its scatter
  and gather) and the autograd engine on top of them, run through a *poisoned* pool that fills
  every array it hands out with 0xFF bytes (NaN): results kept across later calls never change,
  and equal, bit for bit, what the kernels compute with the pool off;
* several Python threads running kernels while the worker count changes;
* the memory bounds (held bytes never above the peak in use, ``max_free_bytes`` after a miss),
  odd dtypes and shapes, and sizes that cannot be allocated.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import gc
import pickle
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.kernels import buffers, pooling, threads
from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels.buffers import BufferPool
from tinygrad_edu.nn import functional as F

#: a ``min_bytes`` no array reaches: every array comes from NumPy (the pool is off)
OFF = 2**62
#: 16 x 16 float64: the array most tests hand out
SHAPE, NBYTES = (16, 16), 16 * 16 * 8


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


class ProbePool(BufferPool):
    """A pool that fills the buffer of every array it hands out with 0xFF bytes (NaN in every
    float dtype, -1 in signed integers), so a live array that shares memory with a new one, or a
    kernel that reads memory it did not write, shows up; and that records the most bytes of its
    buffers ever in use at once.

    In use grows only when a buffer is handed out, so ``max_in_use`` is sampled there, inside
    :meth:`BufferPool._take` (under the pool's lock), from the very look at the reference counts
    the pool decides with: a kernel's worker thread that drops an array meanwhile cannot make
    the sample disagree with the pool's own peak."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.max_in_use = 0
        self._look: list[int] | None = None

    def empty(self, shape, dtype=np.float64) -> np.ndarray:
        out = super().empty(shape, dtype)
        if out.base is not None:  # from the pool: poison its whole buffer
            out.base.fill(0xFF)
        return out

    def _free(self) -> list[int]:
        return super()._free() if self._look is None else self._look

    def _take(self, nbytes: int) -> np.ndarray:  # called with the lock held
        self._look = super()._free()
        free = sum(self._buffers[i].nbytes for i in self._look)
        in_use = sum(buffer.nbytes for buffer in self._buffers) - free
        try:
            taken = super()._take(nbytes)
        finally:
            self._look = None
        self.max_in_use = max(self.max_in_use, in_use + taken.base.nbytes)
        return taken


@contextmanager
def kernel_thresholds() -> Iterator[None]:
    """Thresholds that let small shapes take every formulation: Winograd from 1 input channel,
    the kernel as stored from 1000 kernel elements over at most 64 output pixels (the cases
    below stay under 1000 elements unless they mean to take that path)."""
    settings = {"MIN_WINOGRAD_CHANNELS": 1, "MIN_DIRECT_KERNEL": 1000, "MAX_DIRECT_PIXELS": 64}
    with mock.patch.multiple(K, **settings):
        yield


@contextmanager
def kernel_pool(pool: BufferPool) -> Iterator[BufferPool]:
    """The kernels allocate from ``pool`` inside the block (``buffers.POOL`` restored after)."""
    with mock.patch.object(buffers, "POOL", pool):
        yield pool


# --------------------------------------------------------------------- what keeps memory alive
def _strided(a):
    return np.lib.stride_tricks.as_strided(a, shape=(8, 8), strides=(2 * a.strides[0], 16))


def _closure(a):
    def read():
        return a

    return read


def _generator(a):
    def frames(kept):
        yield
        yield kept

    g = frames(a)
    next(g)
    return g


def _finalizer(a):
    class Owner:
        pass

    owner = Owner()
    return owner, weakref.finalize(owner, lambda kept: None, a)


def _traceback(a):
    def fail(kept):
        raise RuntimeError("kept in the traceback")

    try:
        fail(a)
    except RuntimeError as error:
        return error
    raise AssertionError("unreachable")  # pragma: no cover


def _released_memoryview(a):
    view = memoryview(a)
    out = np.frombuffer(view, dtype=a.dtype)
    view.release()  # allowed: NumPy keeps a memoryview of its own
    return out


def _out_of_band_pickle(a):
    frames: list[pickle.PickleBuffer] = []
    data = pickle.dumps(a, protocol=5, buffer_callback=frames.append)
    return pickle.loads(data, buffers=frames)  # zero copy: a view of ``a``'s memory


class _ArrayLike:
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a


#: name -> (make a holder from the array, read the array's values back through the holder)
HOLDERS: dict[str, tuple[Callable, Callable]] = {
    "transpose": (lambda a: a.T, np.array),
    "reversed strided slice": (lambda a: a[::-2, 1::3], np.array),
    "reshape": (lambda a: a.reshape(-1), np.array),
    "view as another dtype": (lambda a: a.view(np.int32), np.array),
    "the buffer itself (.base)": (lambda a: a.base, np.array),
    "as_strided": (_strided, np.array),
    "sliding_window_view": (
        lambda a: np.lib.stride_tricks.sliding_window_view(a, (3, 3)),
        np.array,
    ),
    "broadcast_to": (lambda a: np.broadcast_to(a[0], (4, 16)), np.array),
    "memoryview": (memoryview, np.array),
    "arr.data": (lambda a: a.data, np.array),
    "frombuffer(memoryview)": (
        lambda a: np.frombuffer(memoryview(a), dtype=a.dtype),
        np.array,
    ),
    "frombuffer of a released memoryview": (_released_memoryview, np.array),
    "ctypes pointer (data_as)": (
        lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        lambda p: np.array(p[:256]),  # (np.ctypeslib.as_array casts: a cycle, freed by gc)
    ),
    "arr.ctypes": (
        lambda a: a.ctypes,
        lambda c: np.array(c.data_as(ctypes.POINTER(ctypes.c_double))[:256]),
    ),
    "ctypes array from_buffer": (
        lambda a: (ctypes.c_double * 256).from_buffer(a),
        lambda c: np.array(c[:]),
    ),
    "np.ctypeslib.as_ctypes": (np.ctypeslib.as_ctypes, lambda c: np.array(c)),
    "DLPack (np.from_dlpack)": (np.from_dlpack, np.array),
    "__array__ wrapper": (_ArrayLike, lambda h: np.array(np.asarray(h))),
    "flat iterator": (lambda a: a.flat, lambda f: f.copy()),
    "nditer": (np.nditer, lambda it: np.array(it.operands[0])),
    "masked array": (lambda a: np.ma.masked_array(a, copy=False), lambda m: np.array(m.data)),
    "Tensor": (Tensor, lambda t: np.array(t.data)),
    "Tensor view op": (lambda a: Tensor(a)[::2].T, lambda t: np.array(t.data)),
    "closure": (_closure, lambda f: np.array(f())),
    "suspended generator": (_generator, lambda g: np.array(g.gi_frame.f_locals["kept"])),
    "weakref.finalize argument": (_finalizer, lambda h: np.array(h[1].peek()[2][0])),
    "exception traceback": (
        _traceback,
        lambda e: np.array(e.__traceback__.tb_next.tb_frame.f_locals["kept"]),
    ),
    "functools.partial": (lambda a: functools.partial(np.copy, a), lambda p: p()),
    "out-of-band pickle (protocol 5)": (_out_of_band_pickle, np.array),
}


def _filled(pool: BufferPool) -> np.ndarray:
    a = pool.empty(SHAPE, np.float64)
    a[...] = np.arange(256.0).reshape(SHAPE)
    return a


@pytest.mark.parametrize("name", list(HOLDERS))
def test_whatever_holds_the_memory_keeps_it_from_reuse_until_it_dies(name) -> None:
    make, read = HOLDERS[name]
    pool = ProbePool(min_bytes=0)
    a = _filled(pool)
    holder = make(a)
    expected = read(holder)
    del a
    assert pool.free_bytes() == 0, f"{name} holds the memory, yet the pool counts it free"
    other = pool.empty(SHAPE, np.float64)  # poisoned: would overwrite a shared buffer
    np.testing.assert_array_equal(read(holder), expected)
    del other
    assert pool.free_bytes() == NBYTES  # ``other`` died: its buffer is free
    del holder
    assert pool.free_bytes() == 2 * NBYTES, f"{name} died, but its memory is still in use"


#: name -> a copy of the array that must not share its memory
COPIES: dict[str, Callable] = {
    "pickle": lambda a: pickle.loads(pickle.dumps(a)),
    "pickle protocol 5, in band": lambda a: pickle.loads(pickle.dumps(a, protocol=5)),
    "copy.copy": copy.copy,
    "copy.deepcopy": copy.deepcopy,
    "np.copy": np.copy,
    "np.array": np.array,
    "astype(copy=True)": lambda a: a.astype(a.dtype, copy=True),
    "tobytes + frombuffer": lambda a: np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape),
    "Tensor with a dtype conversion": lambda a: Tensor(a, dtype=np.float32).data,
}


@pytest.mark.parametrize("name", list(COPIES))
def test_a_copy_never_aliases_and_frees_the_original(name) -> None:
    pool = ProbePool(min_bytes=0)
    a = _filled(pool)
    where, kept = address(a), COPIES[name](a)
    assert not np.shares_memory(kept, a)
    del a
    assert pool.free_bytes() == NBYTES  # the copy holds nothing of the pool
    b = pool.empty(SHAPE, np.float64)  # reuses (and poisons) the original's buffer
    assert address(b) == where
    np.testing.assert_array_equal(kept, np.arange(256.0).reshape(SHAPE))


def test_a_weak_reference_does_not_hold_the_memory() -> None:
    pool = BufferPool(min_bytes=0)
    a = _filled(pool)
    died = []
    ref = weakref.ref(a, lambda _: died.append(True))
    del a
    assert died == [True] and ref() is None and pool.free_bytes() == NBYTES


def test_a_reference_cycle_holds_the_memory_until_it_is_collected() -> None:
    class Node:
        pass

    pool = ProbePool(min_bytes=0)
    node = Node()
    node.self, node.array = node, _filled(pool)
    del node
    assert pool.free_bytes() == 0  # garbage, but not yet collected: still in use
    gc.collect()
    assert pool.free_bytes() == NBYTES


def test_a_buffer_in_use_by_another_thread_is_never_handed_out() -> None:
    """A thread holds an array through a NumPy call that releases the GIL; the main thread
    drops its own references meanwhile and allocates: it gets other memory."""
    pool = ProbePool(min_bytes=0)
    a = _filled(pool)
    started, proceed = threading.Event(), threading.Event()
    seen: list[np.ndarray] = []

    def hold(array: np.ndarray) -> None:
        started.set()
        proceed.wait(30)
        seen.append(array.copy())

    worker = threading.Thread(target=hold, args=(a,))
    worker.start()
    started.wait(30)
    del a
    b = pool.empty(SHAPE, np.float64)  # poisoned, must not be the worker's array
    proceed.set()
    worker.join()
    np.testing.assert_array_equal(seen[0], np.arange(256.0).reshape(SHAPE))
    del b


# ------------------------------------------------------------------------ the pool's bookkeeping
_SIZES = st.integers(0, 5000)


@given(
    operations=st.lists(
        st.tuples(st.sampled_from(["new", "new", "view", "drop", "drop", "release"]), _SIZES),
        max_size=60,
    ),
    slack=st.sampled_from([1, 1.5, 2, 8]),
    max_free=st.sampled_from([0, 3000, 10**9]),
)
def test_held_bytes_never_exceed_the_peak_in_use(operations, slack, max_free) -> None:
    """Any mix of allocations, views, drops and releases: the pool never holds more than the
    most bytes of its buffers ever in use at once (since the last ``release``), the free
    buffers are exactly what no live array reaches, and right after a new buffer is made at
    most ``max_free_bytes`` of them remain."""
    pool = BufferPool(min_bytes=0, max_free_bytes=max_free, slack=slack)
    live: list[np.ndarray] = []
    seen: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()
    peak = 0

    def in_use() -> int:
        return sum({id(a.base): a.base.nbytes for a in live}.values())

    for what, size in operations:
        made = False
        if what == "new":
            a = pool.empty(size, np.uint8)
            made = id(a.base) not in seen
            seen[id(a.base)] = a.base
            assert a.base.nbytes >= size and (size == 0 or a.base.nbytes <= slack * size)
            live.append(a)
            del a
        elif what == "view" and live:
            live.append(live[size % len(live)][size % 7 :: 2])
        elif what == "drop" and live:
            live.pop(size % len(live))
        elif what == "release":
            assert pool.release() >= 0 and pool.free_bytes() == 0
            peak = in_use()
        peak = max(peak, in_use())
        assert pool.held_bytes() <= peak
        assert pool.held_bytes() - pool.free_bytes() == in_use()
        if made:
            assert pool.free_bytes() <= max_free


def test_the_smallest_free_buffer_that_fits_is_reused() -> None:
    pool = BufferPool(min_bytes=0, slack=2)
    arrays = [pool.empty(size, np.uint8) for size in (1900, 1000, 1500)]
    where = {a.nbytes: address(a) for a in arrays}
    del arrays
    a = pool.empty(950, np.uint8)  # 1000, 1500 and 1900 all fit; 1000 is the smallest
    assert address(a) == where[1000] and a.base.nbytes == 1000


def test_the_least_recently_handed_out_free_buffers_go_first() -> None:
    pool = BufferPool(min_bytes=0, max_free_bytes=10**9, slack=1)
    arrays = [pool.empty(1000 + i, np.uint8) for i in range(3)]
    again = pool.empty(1000, np.uint8)  # a miss: 4003 bytes in use, the peak
    where = address(again)
    del arrays, again  # all free; least recently handed out first: 1000, 1001, 1002, again
    big = pool.empty(3003, np.uint8)  # a miss with 3003 in use: keep 4003 - 3003 = 1000
    assert pool.held_bytes() == 4003 and pool.free_bytes() == 1000
    assert address(pool.empty(1000, np.uint8)) == where  # the most recent of the four stayed
    del big


def test_max_free_bytes_bounds_the_free_buffers_after_a_miss() -> None:
    pool = BufferPool(min_bytes=0, max_free_bytes=2500)
    arrays = [pool.empty(1000, np.uint8) for _ in range(8)]
    del arrays  # 8000 bytes free, peak 8000
    big = pool.empty(4000, np.uint8)  # nothing fits (slack 2): a miss
    assert pool.free_bytes() <= 2500 and big.base.nbytes == 4000
    assert pool.held_bytes() <= 8000


def test_a_long_loop_with_shifting_shapes_stays_within_its_peak() -> None:
    """300 steps of a loop whose shapes drift (like a training run over images of many sizes),
    some arrays kept into the next step: the pool never holds more than the most in use, and
    what is in use is never more than ``slack`` times what the live arrays asked for."""
    rng = np.random.default_rng(7)
    pool = ProbePool(min_bytes=0, max_free_bytes=10**9)
    kept: list[np.ndarray] = []
    most_asked = 0
    for step in range(300):
        scale = 1 + (step // 50) % 3  # phases of small, medium and large shapes
        fresh = [pool.empty(int(rng.integers(1, 4000)) * scale, np.float32) for _ in range(3)]
        most_asked = max(most_asked, sum(a.nbytes for a in kept + fresh))
        kept = [a for a in kept if rng.random() < 0.5] + fresh[: int(rng.integers(0, 3))]
        del fresh
        assert pool.held_bytes() <= pool.max_in_use <= pool.slack * most_asked
    del kept
    assert pool.free_bytes() == pool.held_bytes()
    pool.release()
    assert pool.held_bytes() == 0


# ------------------------------------------------------------------------- dtypes and shapes
_DTYPES = [
    np.bool_,
    np.int8,
    np.uint16,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.longdouble,
    np.complex64,
    np.complex128,
    np.clongdouble,
    ">f8",
    "M8[s]",
    "U3",
    "S5",
    np.dtype([("a", "<f8"), ("b", "i1")]),
]


@pytest.mark.parametrize("dtype", _DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(7, 5), (3, 0, 4), (0, 2**40), ()], ids=str)
def test_every_dtype_and_shape_is_like_numpy(dtype, shape) -> None:
    """Shape, dtype and flags as NumPy's, and no memory shared with a second array."""
    pool = ProbePool(min_bytes=0, slack=64)
    dirty = pool.empty(4096, np.uint8)
    del dirty  # free, full of 0xFF: every request below may reuse it
    a, expected = pool.empty(shape, dtype), np.empty(shape, dtype)
    assert (a.shape, a.dtype) == (expected.shape, expected.dtype)
    assert a.size == 0 or a.strides == expected.strides
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    b = pool.empty(shape, dtype)
    assert not np.shares_memory(a, b)


@pytest.mark.parametrize(
    "dtype",
    [d for d in _DTYPES if np.dtype(d).kind not in "SU"] + ["U3", "S5"],
    ids=str,
)
def test_zeros_in_a_dirty_reused_buffer_are_numpy_zeros(dtype) -> None:
    pool = ProbePool(min_bytes=0, slack=64)
    dirty = pool.empty(4096, np.uint8)
    del dirty  # free, full of 0xFF
    z = pool.zeros((7, 5), dtype)
    assert from_pool(z)
    assert z.tolist() == np.zeros((7, 5), dtype).tolist()


@pytest.mark.parametrize(
    "dtype", [object, np.dtype([("a", "f8"), ("b", "O")]), np.dtype(("f4", (3,)))], ids=str
)
def test_dtypes_a_uint8_buffer_cannot_be_viewed_as_are_made_like_numpy(dtype) -> None:
    a, expected = BufferPool(min_bytes=0).empty(4, dtype), np.empty(4, dtype)
    assert (a.shape, a.dtype) == (expected.shape, expected.dtype)


@pytest.mark.parametrize("dim", [np.uint8(16), np.int16(256)], ids=repr)
def test_small_integer_dimensions_do_not_overflow(dim) -> None:
    with np.errstate(over="ignore"):
        a = BufferPool(min_bytes=0).empty((dim, dim), np.float32)
    assert a.shape == (int(dim), int(dim))


def test_negative_dimensions_fail_as_in_numpy_and_leave_nothing_behind() -> None:
    pool = BufferPool()  # the default threshold: 2 MiB of float64 reaches the pool
    with pytest.raises(ValueError, match="negative dimensions"):
        pool.empty((-512, -512), np.float64)
    assert pool.held_bytes() == 0


@pytest.mark.parametrize(
    "shape",
    [
        (2**40, 2**40),
        (2**62, 4),
        (0, 2**62, 2**62),
        (np.int64(2**32), np.int64(2**32)),
    ],
    ids=str,
)
def test_impossible_sizes_raise_a_clear_error(shape) -> None:
    for pool in (BufferPool(), BufferPool(min_bytes=0)):
        too_big = pytest.raises((ValueError, MemoryError), match=r"big|exceed|allocate")
        with too_big, np.errstate(over="ignore"):
            pool.empty(shape, np.float64)
        assert pool.held_bytes() == 0


def test_a_failed_allocation_does_not_raise_the_peak() -> None:
    pool = BufferPool(min_bytes=0, max_free_bytes=10**9)
    with pytest.raises(ValueError):
        pool.empty((2**40, 2**40), np.float64)
    first = pool.empty(1000, np.uint8)
    del first  # the most in use so far: 1000 bytes, now free
    big = pool.empty(3000, np.uint8)  # a miss with 3000 in use: the 1000 free go
    assert pool.held_bytes() <= 3000, "the pool holds more than was ever in use at once"
    del big


# ------------------------------------------------------------------------------------ kernels
#: kernel cases: name -> the formulation :func:`forward_path` / :func:`input_grad_path` must
#: report (``None``: pooling)
CASES = {
    "conv im2col stride 2": "im2col",
    "conv im2col 2x2 bias": "im2col",
    "conv winograd F2 bias relu": "F(2x2,3x3)",
    "conv winograd F4 relu": "F(4x4,3x3)",
    "conv stored kernel": K.STORED_KERNEL,
    "input grad winograd F2 mask": "F(2x2,3x3)",
    "input grad winograd F4": "F(4x4,3x3)",
    "input grad col2im mask": "col2im",
    "input grad stored kernel mask": K.STORED_KERNEL,
    "input grad im2col stride 2 mask": "im2col",
    "max pool 2x2": None,
    "max pool 2x2 odd": None,
    "max pool 3x3 stride 2": None,
    "max pool 3x3 stride 3": None,
}
#: cases whose results are exact on integer-valued inputs (no 1/6 or 1/24 of Winograd F4)
EXACT_CASES = [name for name in CASES if "F4" not in name]


def _integers(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    return rng.integers(-3, 4, size=shape).astype(dtype)


def run_case(name: str, n: int, c: int, k: int, size: int, seed: int, dtype) -> list[np.ndarray]:
    """Run one kernel case on integer-valued inputs (under :func:`kernel_thresholds`); returns
    its outputs as the kernel gave them (views of pool memory when the pool is on)."""
    rng = np.random.default_rng(seed)
    if name.startswith("max pool"):
        kernel, stride = (2, 2) if "2x2" in name else (3, int(name[-1]))
        h = 2 * size + 1 if "odd" in name else 2 * size + 2
        x = _integers(rng, (n, c, h, h + 1), dtype)
        y, choice = pooling.max_pool2d(x, kernel, stride)
        g = _integers(rng, y.shape, dtype)
        scattered = pooling.max_pool2d_scatter(g, choice, x.shape, kernel, stride)
        gathered = pooling.max_pool2d_gather(scattered, choice, kernel, stride)
        return [y, choice, scattered, gathered]
    kh = 2 if "2x2" in name else 3
    stride = 2 if "stride 2" in name else 1
    padding = 0 if kh == 2 else 1
    precision = "fast" if "F4" in name else "default"
    h = size + 2
    if "stored" in name:  # >= 1000 kernel elements over <= 64 pixels
        c, k, h = 10, 12, 4
    elif "col2im" in name:  # kh * kw * C <= K
        c, k = 1, max(k, 9)
    elif "input grad" in name:  # not col2im
        c, k = max(c, 2), min(k, 9 * max(c, 2) - 1)
    w = _integers(rng, (k, c, kh, kh), dtype)
    if name.startswith("conv"):
        x = _integers(rng, (n, c, h, h), dtype)
        bias = _integers(rng, (k,), dtype) if "bias" in name else None
        assert K.forward_path(w.shape, x.shape, stride, padding, precision) == CASES[name]
        return [K.conv2d(x, w, stride, padding, bias, "relu" in name, precision)]
    ho = (h + 2 * padding - kh) // stride + 1
    g = _integers(rng, (n, k, ho, ho), dtype)
    mask = _integers(rng, g.shape, dtype) if "mask" in name else None
    path = K.input_grad_path(w.shape, g.shape, (h, h), stride, padding, precision)
    assert path == CASES[name]
    return [K.conv2d_input_grad(g, w, (h, h), stride, padding, mask, precision)]


def from_pool(a: np.ndarray) -> bool:
    """Whether ``a`` is a view of one of a pool's uint8 buffers."""
    return a.base is not None and a.base.dtype == np.uint8 and a.base.flags.owndata


_CASE = st.tuples(
    st.sampled_from(list(CASES)),
    st.integers(1, 3),  # batch
    st.integers(1, 6),  # input channels
    st.integers(1, 12),  # output channels
    st.integers(1, 9),  # spatial size
    st.integers(0, 2**16),  # seed
    st.sampled_from([np.float32, np.float64]),
    st.booleans(),  # keep the results (or let them go, freeing their memory)
)


@given(st.lists(_CASE, min_size=2, max_size=7), st.sampled_from([1, 2, 8]))
def test_kernel_results_stay_intact_and_equal_the_pool_off(calls, slack) -> None:
    """Every kernel path through a poisoned pool that pools every array: each result equals,
    bit for bit, the same call with the pool off, and every result kept stays so through all
    later calls, which reuse the memory of the results let go."""
    pool = ProbePool(min_bytes=0, slack=slack)
    kept: list[tuple[str, list[np.ndarray], list[np.ndarray]]] = []
    with kernel_thresholds():
        _run_and_keep(pool, calls, kept)


def _run_and_keep(pool: ProbePool, calls, kept) -> None:
    for *arguments, keep in calls:
        with kernel_pool(BufferPool(min_bytes=OFF)):
            reference = run_case(*arguments)
        with kernel_pool(pool):
            results = run_case(*arguments)
        for result, expected in zip(results, reference, strict=True):
            assert result.dtype == expected.dtype
            np.testing.assert_array_equal(result, expected, err_msg=arguments[0])
        if keep:
            kept.append((arguments[0], results, reference))
        del results
        for name, results, reference in kept:
            for result, expected in zip(results, reference):
                np.testing.assert_array_equal(result, expected, err_msg=f"{name}, kept")
        assert pool.held_bytes() <= pool.max_in_use


def test_every_kernel_case_hands_out_pool_memory() -> None:
    """The cases above really exercise the pool: at least one result of each is pool memory
    (the others come from NumPy operations on it), and once the results die, all is free."""
    pool = ProbePool(min_bytes=0)
    with kernel_pool(pool), kernel_thresholds():
        for name in CASES:
            results = run_case(name, 2, 4, 8, 5, 0, np.float32)
            assert any(from_pool(r) for r in results), name
    assert pool.held_bytes() <= pool.max_in_use


def test_a_parallel_kernel_holds_no_memory_once_its_results_die() -> None:
    pytest.importorskip("threadpoolctl", reason="the threads extra is not installed")
    original = threads.workers()
    pool = ProbePool(min_bytes=0)
    try:
        threads.set_workers(2)  # the kernel as stored shares its 12 output channels: 2 tasks
        with kernel_pool(pool), kernel_thresholds():
            results = run_case("conv stored kernel", 2, 4, 8, 5, 0, np.float32)
        assert any(from_pool(r) for r in results)
        del results
        assert pool.free_bytes() == pool.held_bytes() > 0  # (before the workers change)
    finally:
        threads.set_workers(original)


def test_a_kernel_output_kept_across_many_default_pool_calls() -> None:
    """With the real pool and its default threshold (4 MiB): a Winograd forward output and a
    pooling choice, kept while 20 later calls of several sizes reuse the pool's memory."""
    pool = ProbePool()
    rng = np.random.default_rng(3)
    with kernel_pool(pool):
        x = rng.standard_normal((2, 32, 128, 128)).astype(np.float32)  # 4 MiB
        w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
        y = K.conv2d(x, w, padding=1, relu=True)
        pooled, choice = pooling.max_pool2d(y, 2, 2)
        kept = [(y, y.copy()), (choice, choice.copy())]
        assert y.base is not None and pool.held_bytes() >= y.nbytes
        del pooled
        for i in range(20):
            size = 128 + 32 * (i % 3)
            z = K.conv2d(rng.standard_normal((2, 32, size, size)).astype(np.float32), w, padding=1)
            K.conv2d_input_grad(z, w, (size, size), padding=1, mask=z)
            pooling.max_pool2d(z, 2, 2)
        for array, copy_ in kept:
            np.testing.assert_array_equal(array, copy_)
        assert pool.held_bytes() <= pool.max_in_use


# ------------------------------------------------------------------------------------ engine
def _network_gradients(n: int = 2, c: int = 4, size: int = 12, seed: int = 11):
    """A small CNN (conv+ReLU fused, max pooling, a strided conv, an overlapping pool): the
    loss's gradients with respect to the input and every parameter, then the gradients of the
    squared gradient norm (double backward through every kernel's derivative). Returns the
    network's output and the gradients' arrays."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((n, c, size, size)), requires_grad=True)
    w1 = Tensor(rng.standard_normal((8, c, 3, 3)) * 0.3, requires_grad=True)
    b1 = Tensor(rng.standard_normal(8) * 0.1, requires_grad=True)
    w2 = Tensor(rng.standard_normal((6, 8, 3, 3)) * 0.3, requires_grad=True)
    with kernel_thresholds():
        h = F.max_pool2d(F.conv2d_relu(x, w1, b1, padding=1), 2)  # size -> size // 2
        h = F.relu(F.conv2d(h, w2, stride=2, padding=1))
        y = F.max_pool2d(h, 2, stride=1)  # overlapping windows
        loss = (y * y).sum()
        leaves = [x, w1, b1, w2]
        grads = tg.grad(loss, leaves, create_graph=True)
        norm = sum((g * g).sum() for g in grads)
        second = tg.grad(norm, leaves)
    return y, [g.data for g in grads] + [g.data for g in second]


@settings(max_examples=6)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    size=st.integers(6, 13),
    seed=st.integers(0, 2**16),
)
def test_engine_gradients_are_the_same_bits_with_the_pool_on_and_off(n, c, size, seed) -> None:
    """First and second-order gradients of a CNN, computed twice through a poisoned pool that
    pools every array (the second run reuses the first's memory): the same bits as with the
    pool off; the first run's output, kept, does not change."""
    with kernel_pool(BufferPool(min_bytes=OFF)):
        _, reference = _network_gradients(n, c, size, seed)
    pool = ProbePool(min_bytes=0)
    with kernel_pool(pool):
        first_y, first = _network_gradients(n, c, size, seed)
        kept_y = first_y.data.copy()
        _, second = _network_gradients(n, c, size, seed)
    for expected, a, b in zip(reference, first, second, strict=True):
        np.testing.assert_array_equal(a, expected)
        np.testing.assert_array_equal(b, expected)
    np.testing.assert_array_equal(first_y.data, kept_y)
    assert pool.held_bytes() <= pool.max_in_use


def _backward_three_times(pool: BufferPool) -> tuple[np.ndarray, np.ndarray]:
    """Three backward passes through one graph (retained), the forward output checked after
    each: returns the input's accumulated gradient and the output."""
    rng = np.random.default_rng(5)
    with kernel_pool(pool), kernel_thresholds():
        x = Tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
        w = Tensor(rng.standard_normal((5, 3, 3, 3)), requires_grad=True)
        y = F.max_pool2d(F.conv2d_relu(x, w, padding=1), 2)
        activations = y.data.copy()
        for _ in range(3):  # each backward frees and reuses the graph's scratch memory
            (y * y).sum().backward(retain_graph=True)
            np.testing.assert_array_equal(y.data, activations)
        return x.grad.data, y.data


def test_a_forward_output_kept_while_backward_runs_is_not_overwritten() -> None:
    expected_grad, expected_y = _backward_three_times(BufferPool(min_bytes=OFF))
    pool = ProbePool(min_bytes=0)
    grad, y = _backward_three_times(pool)
    assert from_pool(y)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)
    assert pool.held_bytes() <= pool.max_in_use


# ------------------------------------------------------------------------------- concurrency
def test_threads_running_kernels_while_the_worker_count_changes() -> None:
    """Three Python threads run every exact kernel case on inputs of their own through one
    shared poisoned pool, each checking its results against the pool-off reference, while a
    fourth switches the kernels between 1 and 2 worker threads."""
    pytest.importorskip("threadpoolctl", reason="the threads extra is not installed")
    shares = [
        [
            (name, 1 + t % 2, 2 + t, 5 + t, 2 + 2 * t, 100 * t + i, np.float64)
            for i, name in enumerate(EXACT_CASES)
        ]
        for t in range(3)
    ]
    pool = ProbePool(min_bytes=0)
    failures: list[str] = []
    stop = threading.Event()
    original = threads.workers()

    def work(t: int) -> None:
        try:
            for _ in range(3):
                for job, reference in zip(shares[t], references[t]):
                    for result, expected in zip(run_case(*job), reference, strict=True):
                        if not np.array_equal(result, expected):
                            failures.append(f"thread {t}: {job[0]}")
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(f"thread {t}: {error!r}")

    def switch() -> None:
        count = 1
        while not stop.wait(0.002):
            count = 3 - count
            threads.set_workers(count)

    with kernel_thresholds():  # patched once: mock.patch from several threads would race
        with kernel_pool(BufferPool(min_bytes=OFF)):
            references = [[run_case(*job) for job in share] for share in shares]
        switcher = threading.Thread(target=switch)
        workers = [threading.Thread(target=work, args=(t,)) for t in range(3)]
        try:
            with kernel_pool(pool):
                switcher.start()
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join(120)
        finally:
            stop.set()
            switcher.join(30)
            threads.set_workers(original)
    assert not any(worker.is_alive() for worker in workers), "a kernel thread hung"
    assert failures == []
    assert 0 < pool.held_bytes() <= pool.max_in_use
