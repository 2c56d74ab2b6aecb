"""Reusing kernel re-layouts while the kernel does not change, told by a version counter.

Every convolution needs its kernel in a GEMM-friendly layout (im2col's ``(kh*kw*C, K)``, the
flipped kernel for the input gradient, Winograd's transformed ``U``). For weights that are not
being trained that work repeats identically on every call -- 6.5 ms for one 512x512x3x3 kernel,
which dominates a batch-1 VGG iteration. This cache keeps the layouts of recently used kernels.

How it knows a kernel is unchanged. The kernels see arrays only; whoever owns an array tells the
cache (:meth:`LayoutCache.track`) which **version counter** counts its changes: a one-element list
that its owner increments on every in-place change (the engine's tensors keep one, shared by
their views, and the backward pass checks it too). An entry is found by where the kernel's values
are -- the array that owns the memory, the offset in it, shape, strides, dtype -- so a slice taken
afresh on every call (a grouped convolution's kernels) finds the last call's entry. It holds a
weak reference to that memory's owner, the counter and the count its layouts were computed at,
and serves them while the owner lives and the counter still shows that count. So

* an array updated in place (an optimizer step, ``copy_``, ``load_state_dict``) misses once, then
  hits again until its next change -- weights that are not trained always hit;
* new memory (a rebound ``.data``) is a new entry: it never finds the old array's layouts;
* a kernel never tracked, or tracked under two different counters (two tensors over the same
  memory, each counting only its own changes), is re-laid out on every call.

Writes the counter does not count (into the NumPy array behind its owner's back) are not seen,
just as the backward pass's in-place check does not see them. Memory is bounded; the least
recently used kernels are dropped first, and an entry goes when its memory does.

Thread-safe: the bookkeeping runs under a lock, the re-layouts outside it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: kernels smaller than this are re-laid out every time (cheap, and not worth the memory): the
#: Winograd transform of a 32x32x3x3 kernel (36 KiB) takes ~0.06 ms, of a 64x64x3x3 one ~1 ms
MIN_BYTES = 32 * 2**10
#: upper bound for all cached layouts together
MAX_BYTES = 512 * 2**20

#: a version counter: a one-element list its owner increments on every change of the array
Counter = list[int]


@dataclass
class _Entry:
    """One kernel's layouts, valid while ``counter[0] == version``; ``counter`` is ``None`` once
    the kernel was tracked under two counters (nothing is cached for it then)."""

    owner: weakref.ref
    counter: Counter | None
    version: int
    layouts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.layouts.values())


class LayoutCache:
    """``get(w, kind, make)`` returns ``make(w)``, computed once per version of a tracked ``w``."""

    def __init__(self, max_bytes: int = MAX_BYTES, min_bytes: int = MIN_BYTES) -> None:
        self.max_bytes, self.min_bytes = max_bytes, min_bytes
        self._entries: OrderedDict[Place, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._dead: list[weakref.ref] = []  # references to memory owners that died

    @property
    def nbytes(self) -> int:
        """Bytes of all the layouts held."""
        with self._lock:
            return sum(entry.nbytes for entry in self._entries.values())

    def track(self, w: np.ndarray, counter: Counter) -> None:
        """Say that ``counter`` counts the changes of ``w`` from now on."""
        if w.nbytes < self.min_bytes:
            return
        with self._lock:
            self._drop_dead()
            entry = self._entry(w)
            if entry is None:
                ref = weakref.ref(_owner(w), self._dead.append)
                self._entries[_place(w)] = _Entry(ref, counter, counter[0])
            elif entry.counter is not counter:  # a second owner: trust neither
                entry.counter = None
                entry.layouts.clear()

    def get(self, w: np.ndarray, kind: str, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``make(w)``, the re-layout ``kind`` of ``w``: cached while ``w``'s counter stands."""
        with self._lock:
            entry = self._entry(w)
            if entry is None or entry.counter is None:
                layout = None
            else:
                if entry.version != entry.counter[0]:  # changed since: start afresh
                    entry.version, entry.layouts = entry.counter[0], {}
                self._entries.move_to_end(_place(w))
                layout = entry.layouts.get(kind)
        if entry is None or entry.counter is None:
            return make(w)
        if layout is None:
            version = entry.version
            layout = make(w)  # outside the lock: other kernels' lookups go on meanwhile
            with self._lock:
                if entry.version == version and entry.counter is not None:
                    layout = entry.layouts.setdefault(kind, layout)  # or another thread's, first
                    self._evict()
        return layout

    def _entry(self, w: np.ndarray) -> _Entry | None:
        """``w``'s entry (not one of dead memory whose owner's ``id`` ``w``'s now has)."""
        entry = self._entries.get(_place(w))
        return entry if entry is not None and entry.owner() is _owner(w) else None

    def _drop_dead(self) -> None:
        """Drop the entries of memory that died (their layouts can never be used)."""
        while self._dead:
            ref = self._dead.pop()
            for key, entry in list(self._entries.items()):
                if entry.owner is ref:
                    del self._entries[key]

    def _evict(self) -> None:
        total = sum(e.nbytes for e in self._entries.values())
        for key in list(self._entries):
            if total <= self.max_bytes:
                break
            total -= self._entries[key].nbytes
            self._entries[key].layouts = {}


#: where a kernel's values are: its memory's owner (by ``id``), the byte offset in it, shape,
#: strides and dtype
Place = tuple[int, int, tuple[int, ...], tuple[int, ...], str]


def _owner(w: np.ndarray) -> np.ndarray:
    """The array whose memory ``w`` views (``w`` itself when it is not a view of an array)."""
    return w.base if isinstance(w.base, np.ndarray) else w


def _place(w: np.ndarray) -> Place:
    owner = _owner(w)
    offset = w.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return id(owner), offset, w.shape, w.strides, w.dtype.str


LAYOUTS = LayoutCache()
