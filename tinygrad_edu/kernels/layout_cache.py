"""Reusing weight re-layouts across calls, validated by content.

Every convolution needs its kernel in a GEMM-friendly layout (im2col's ``(kh*kw*C, K)``, the
flipped kernel for the input gradient, Winograd's transformed ``U``). For frozen weights that work
repeats identically on every call -- 6.5 ms for one 512x512x3x3 kernel, which dominates a
batch-1 VGG iteration. This cache keeps the layouts of recently used kernels.

It can never serve a stale layout: each entry keeps a copy of the kernel it was computed from and
is used only while the current kernel is still equal to it (``np.array_equal``, about 7x cheaper
than the re-layout). Weights edited in place, by an optimizer or by hand, simply miss. Memory is
bounded; the least recently used kernels are dropped first.

A *frozen* kernel (:func:`.frozen.frozen_copy`: read-only, over an immutable ``bytes`` object, so
nothing can write it) needs neither the copy nor the comparison: its entry holds a weak
reference to the kernel, and serves it for as long as that very array lives; the entry goes when
the array does (or at the next lookup, if the cache was busy then).

Thread-safe: the bookkeeping runs under a lock, the re-layouts outside it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .frozen import is_frozen

#: kernels smaller than this are re-laid out every time (cheap, and not worth the memory): the
#: Winograd transform of a 32x32x3x3 kernel (36 KiB) takes ~0.06 ms, of a 64x64x3x3 one ~1 ms
MIN_BYTES = 32 * 2**10
#: upper bound for all cached kernels and layouts together
MAX_BYTES = 512 * 2**20


@dataclass
class _Entry:
    """The layouts of one kernel, and how to recognise it: a copy of its contents, or (frozen)
    a weak reference to the array that owns its memory (the entry's key says where in it)."""

    source: np.ndarray | weakref.ref
    layouts: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, w: np.ndarray, on_death: Callable[[weakref.ref], None]) -> _Entry:
        """An empty entry for ``w``; ``on_death`` is called when a frozen ``w``'s memory dies."""
        return cls(weakref.ref(_owner(w), on_death) if is_frozen(w) else np.array(w, copy=True))

    def holds(self, w: np.ndarray) -> bool:
        """Whether the layouts are ``w``'s (found under ``w``'s :func:`_place`)."""
        if isinstance(self.source, weakref.ref):
            return self.source() is _owner(w)
        return _same(self.source, w)

    @property
    def nbytes(self) -> int:
        copy = self.source.nbytes if isinstance(self.source, np.ndarray) else 0
        return copy + sum(a.nbytes for a in self.layouts.values())


class LayoutCache:
    """``get(w, kind, make)`` returns ``make(w)``, computed once per distinct kernel content."""

    def __init__(self, max_bytes: int = MAX_BYTES, min_bytes: int = MIN_BYTES) -> None:
        self.max_bytes, self.min_bytes = max_bytes, min_bytes
        self._entries: OrderedDict[Place, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._dead: list[weakref.ref] = []  # references to frozen kernels that died

    def get(self, w: np.ndarray, kind: str, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        if w.nbytes < self.min_bytes:
            return make(w)
        place = _place(w)
        with self._lock:
            self._drop_dead()
            entry = self._entries.get(place)
            if entry is None or not entry.holds(w):
                entry = self._entries[place] = _Entry.of(w, self._forget)
            self._entries.move_to_end(place)
            layout = entry.layouts.get(kind)
        if layout is None:
            layout = make(w)  # outside the lock: other kernels' lookups go on meanwhile
            with self._lock:
                layout = entry.layouts.setdefault(kind, layout)  # or another thread's, first
                self._evict()
        return layout

    def _forget(self, dead: weakref.ref) -> None:
        """A frozen kernel died: drop its entry now, or at the next lookup if the lock is taken
        (perhaps by this very thread, deep inside :meth:`get`)."""
        self._dead.append(dead)
        if self._lock.acquire(blocking=False):
            try:
                self._drop_dead()
            finally:
                self._lock.release()

    def _drop_dead(self) -> None:
        """Drop the entries of frozen kernels that died (their layouts can never be used)."""
        while self._dead:
            ref = self._dead.pop()
            for key, entry in list(self._entries.items()):
                if entry.source is ref:
                    del self._entries[key]

    def _evict(self) -> None:
        total = sum(e.nbytes for e in self._entries.values())
        while total > self.max_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            total -= dropped.nbytes


#: where a kernel's values are: its memory's owner (by ``id``), the byte offset in it, shape,
#: strides and dtype -- so a slice taken afresh on every call (a grouped convolution's kernels)
#: finds the entry of the last call's equal slice
Place = tuple[int, int, tuple[int, ...], tuple[int, ...], str]


def _owner(w: np.ndarray) -> np.ndarray:
    """The array whose memory ``w`` views (``w`` itself when it is not a view of an array)."""
    return w.base if isinstance(w.base, np.ndarray) else w


def _place(w: np.ndarray) -> Place:
    owner = _owner(w)
    offset = w.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return id(owner), offset, w.shape, w.strides, w.dtype.str


def _same(cached: np.ndarray, current: np.ndarray) -> bool:
    return (
        cached.shape == current.shape
        and cached.dtype == current.dtype
        and np.array_equal(cached, current)
    )


LAYOUTS = LayoutCache()
