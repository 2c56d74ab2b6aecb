"""Watched arrays: NumPy on a step's data outside an op's kernel reports itself.

A profiler sees function calls, but not ``x.data > 0`` or ``x.data[0]``: operators and indexing
call no function it sees. So while a recording watches the forward pass, the arrays of the
arguments, of the state and of every op result are swapped for :class:`Watched` views. A
:class:`Watched` computes exactly as a plain array (the same results, bit for bit), but first
tells the watcher of this thread's recording (:data:`active`) that a value was read -- unless
an op's kernel is running, where reading values is the op's own business. Its results are
plain arrays.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

#: ``active.watcher``: the watcher of this thread's recorded forward pass, if any (set while
#: it watches)
active = threading.local()


def _read_outside_ops(what: str) -> None:
    watcher = getattr(active, "watcher", None)
    if watcher is not None and watcher._depth == 0:
        watcher.note(
            f"the step computes with a tensor's array outside ops ({what}), which reads values "
            "a tape would freeze"
        )


def watched_argument(arg: Any) -> Any:
    """An array argument as the recorded step sees it: a :class:`Watched` view (a Tensor
    argument's array is watched in place)."""
    return arg.view(Watched) if arg.__class__ is np.ndarray else arg


def unwatched(array: np.ndarray) -> np.ndarray:
    """The array a :class:`Watched` view shows, also through a plain view of all of it (a
    watched array can escape the recording in a Tensor made from it: ``detach()``,
    ``Tensor(y)`` of an array argument)."""
    if array.__class__ is Watched:
        return array.base
    base = array.base
    if base.__class__ is Watched and _same_view(array, base):
        return base.base
    return array


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"] == b.__array_interface__["data"]
    )


def _plain(value: Any) -> Any:
    if value.__class__ is Watched:
        return value.view(np.ndarray)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Watched(np.ndarray):
    """A view of a step's data array while a recording watches its forward pass: NumPy on it
    outside an op's kernel (``x.data > 0``, ``x.data[0]``, ``float(x.data)``) is a value read
    the tape would freeze. Inside kernels it computes as a plain array (same results, bit for
    bit); results are plain arrays."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _read_outside_ops(f"NumPy's {ufunc.__name__}")
        return getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        _read_outside_ops(f"NumPy's {func.__name__}")
        return func(*_plain(args), **_plain(kwargs))

    def __getitem__(self, index: Any) -> Any:
        _read_outside_ops("indexing")
        return self.view(np.ndarray)[_plain(index)]

    def __setitem__(self, index: Any, value: Any) -> None:
        _read_outside_ops("an assignment into it")
        self.view(np.ndarray)[_plain(index)] = _plain(value)

    def __bool__(self) -> bool:
        _read_outside_ops("bool()")
        return bool(self.view(np.ndarray))

    def __float__(self) -> float:
        _read_outside_ops("float()")
        return float(self.view(np.ndarray))

    def __int__(self) -> int:
        _read_outside_ops("int()")
        return int(self.view(np.ndarray))

    def __index__(self) -> int:
        _read_outside_ops("an index")
        return self.view(np.ndarray).__index__()

    def __iter__(self) -> Any:
        _read_outside_ops("iteration")
        return iter(self.view(np.ndarray))

    @property
    def flat(self) -> Any:  # type: ignore[override]
        _read_outside_ops(".flat")
        return self.view(np.ndarray).flat

    @property
    def data(self) -> memoryview:  # type: ignore[override]
        _read_outside_ops("its buffer")
        return self.view(np.ndarray).data

    @property
    def ctypes(self) -> Any:  # type: ignore[override]
        _read_outside_ops("ctypes")
        return self.view(np.ndarray).ctypes
