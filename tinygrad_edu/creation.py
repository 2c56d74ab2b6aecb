"""The arrays behind Tensor's constructors, with PyTorch's dtypes (see :mod:`.dtypes`).

``Tensor(data)``, ``Tensor.zeros``, ``arange`` ... are thin wrappers around the functions here:
each returns the ``numpy.ndarray`` the new tensor will hold.

* Data keeps PyTorch's dtype: Python floats become float32, Python ints int64, Python bools
  bool; a nested list follows the same rules over its elements (``[1, 2.5]`` is float32); a
  NumPy array, NumPy scalar or Tensor keeps its own dtype (an array is not copied).
* An explicit ``dtype=`` is always honoured.
* Anything that is not numbers -- strings, objects, ``None``, datetimes -- raises ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from .axes import shape_argument
from .composites import integer_array
from .dtypes import DEFAULT_FLOAT, DEFAULT_INT, as_dtype, check_array

__all__ = [
    "Constructors",
    "arange",
    "array",
    "eye",
    "full",
    "full_like",
    "linspace",
    "normal",
    "randint",
    "uniform",
]

RNG = np.random.Generator | int | None


def array(data: Any, dtype: Any = None) -> np.ndarray:
    """The array ``Tensor(data, dtype=dtype)`` holds (see the module docstring)."""
    if dtype is None:
        return check_array(data if isinstance(data, np.ndarray) else _infer(data))
    dtype = as_dtype(dtype)
    values = data if isinstance(data, np.ndarray) else np.asarray(data)
    return check_array(values).astype(dtype, copy=False)


def _infer(data: Any) -> np.ndarray:
    """``data`` as an array of PyTorch's dtype for it."""
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, bool):
        return np.asarray(data)
    if isinstance(data, int):
        try:
            return np.asarray(data, dtype=DEFAULT_INT)
        except OverflowError:
            raise OverflowError(f"Tensor: the Python int {data} does not fit in int64") from None
    if isinstance(data, float):
        # np.float64 is a float too, and keeps its dtype
        return np.asarray(data, dtype=None if isinstance(data, np.generic) else DEFAULT_FLOAT)
    array = np.asarray(data)
    if isinstance(data, (list, tuple)) and array.dtype.kind in "fuO":
        _check_python_ints(data)  # NumPy's way out for big ints: uint64, float64, object
    if array.dtype == np.float64 and isinstance(data, (list, tuple)) and not _holds_float64(data):
        return array.astype(DEFAULT_FLOAT)  # Python floats in a list: float32
    return array


def _check_python_ints(items: Sequence[Any]) -> None:
    """Refuse a Python int beyond int64 in a nested list, as PyTorch does (NumPy would make
    the list uint64, float64 or objects)."""
    for item in items:
        if isinstance(item, (list, tuple)):
            _check_python_ints(item)
        elif type(item) is int and not -(2**63) <= item < 2**63:
            raise OverflowError(f"Tensor: the Python int {item} does not fit in int64")


def _holds_float64(items: Sequence[Any]) -> bool:
    """Whether a nested list holds a float64 array, NumPy scalar or Tensor (its float64 was
    asked for; Python floats alone make float32)."""
    if set(map(type, items)) <= {float, int, bool}:
        return False
    for item in items:
        if isinstance(item, (list, tuple)):
            if _holds_float64(item):
                return True
        elif getattr(item, "dtype", None) == np.float64:
            return True
    return False


def full(size: tuple[int, ...], fill_value: Any, dtype: Any = None) -> np.ndarray:
    """``fill_value`` everywhere: float32 for a float, int64 for an int, bool for a bool,
    unless ``dtype`` says otherwise (``torch.full``)."""
    value = array(fill_value)  # refuses what is not a number
    if value.ndim:
        raise TypeError(f"full: fill_value must be a number, got shape {value.shape}")
    dtype = value.dtype if dtype is None else as_dtype(dtype, "full")
    return np.full(size, fill_value, dtype=dtype)


def full_like(like: np.ndarray, fill_value: Any, dtype: Any = None) -> np.ndarray:
    """``fill_value`` in ``like``'s shape and, unless ``dtype`` is given, its dtype."""
    return full(like.shape, fill_value, like.dtype if dtype is None else dtype)


def arange(start: Any, end: Any, step: Any, dtype: Any = None) -> np.ndarray:
    """``start, start + step, ...`` below ``end``: int64 when every argument is an integer,
    else float32, unless ``dtype`` says otherwise (``torch.arange``)."""
    if step == 0:
        raise ValueError("arange: step must not be 0")
    whole = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    if dtype is None:
        dtype = DEFAULT_INT if whole else DEFAULT_FLOAT
    dtype = as_dtype(dtype, "arange")
    if whole:  # exact integers, also beyond float64's 2**53
        return np.arange(start, end, step, dtype=DEFAULT_INT).astype(dtype, copy=False)
    return np.arange(start, end, step, dtype=np.float64).astype(dtype, copy=False)


def linspace(start: float, end: float, steps: int, dtype: Any = None) -> np.ndarray:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (float32
    unless ``dtype`` says otherwise; an integer dtype truncates, as in PyTorch)."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be >= 0, got {steps}")
    dtype = DEFAULT_FLOAT if dtype is None else as_dtype(dtype, "linspace")
    return np.linspace(start, end, steps, dtype=np.float64).astype(dtype)


def eye(n: int, m: int | None = None, dtype: Any = None) -> np.ndarray:
    """The ``n x m`` identity matrix (float32 unless ``dtype`` says otherwise)."""
    return np.eye(n, m, dtype=DEFAULT_FLOAT if dtype is None else as_dtype(dtype, "eye"))


def _floating(dtype: Any, where: str) -> np.dtype:
    dtype = DEFAULT_FLOAT if dtype is None else as_dtype(dtype, where)
    if dtype.kind != "f":
        raise TypeError(
            f"{where}: samples of a continuous distribution need a floating dtype, got {dtype} "
            "(use randint for integers)"
        )
    return dtype


def uniform(size: tuple[int, ...], low: float, high: float, rng: RNG, dtype: Any) -> np.ndarray:
    """Samples from ``[low, high)`` in a floating ``dtype`` (float32 by default)."""
    dtype = _floating(dtype, "uniform")
    return np.random.default_rng(rng).uniform(low, high, size).astype(dtype, copy=False)


def normal(size: tuple[int, ...], mean: float, std: float, rng: RNG, dtype: Any) -> np.ndarray:
    """Samples from N(``mean``, ``std``^2) in a floating ``dtype`` (float32 by default)."""
    dtype = _floating(dtype, "normal")
    return np.random.default_rng(rng).normal(mean, std, size).astype(dtype, copy=False)


def randint(low: int, high: int | None, size: Sequence[int], rng: RNG, dtype: Any) -> np.ndarray:
    """Integers drawn uniformly from ``[low, high)`` (from 0 when ``high`` is omitted), int64
    unless ``dtype`` says otherwise."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: needs low < high, got {low} and {high}")
    dtype = DEFAULT_INT if dtype is None else as_dtype(dtype, "randint")
    values = np.random.default_rng(rng).integers(low, high, size=tuple(size), dtype=np.int64)
    return values.astype(dtype, copy=False)


class Constructors:
    """Tensor's constructors, as class methods over the functions above (PyTorch's defaults):
    ``Tensor.zeros(2, 3)`` and ``Tensor.zeros((2, 3))`` both work."""

    __slots__ = ()

    @classmethod
    def zeros(
        cls, *shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False
    ) -> Self:
        """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
        return cls(full(shape_argument(shape), 0.0, dtype), requires_grad=requires_grad)

    @classmethod
    def ones(
        cls, *shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False
    ) -> Self:
        """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
        return cls(full(shape_argument(shape), 1.0, dtype), requires_grad=requires_grad)

    @classmethod
    def full(
        cls,
        shape: int | Sequence[int],
        fill_value: Any,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Self:
        """A tensor of ``fill_value``: float32 for a float, int64 for an int, bool for a bool,
        unless ``dtype`` says otherwise (``torch.full``)."""
        size = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return cls(full(size, fill_value, dtype), requires_grad=requires_grad)

    def zeros_like(self, dtype: Any = None, requires_grad: bool = False) -> Self:
        """Zeros of this tensor's shape (and dtype, unless ``dtype`` is given)."""
        return self.full_like(0, dtype=dtype, requires_grad=requires_grad)

    def ones_like(self, dtype: Any = None, requires_grad: bool = False) -> Self:
        """Ones of this tensor's shape (and dtype, unless ``dtype`` is given)."""
        return self.full_like(1, dtype=dtype, requires_grad=requires_grad)

    def full_like(self, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Self:
        """``fill_value`` in this tensor's shape (and dtype, unless ``dtype`` is given)."""
        data = full_like(self.data, fill_value, dtype)
        return type(self)(data, requires_grad=requires_grad)

    @classmethod
    def arange(
        cls,
        start: float,
        end: float | None = None,
        step: float = 1,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Self:
        """``start, start + step, ...`` below ``end`` (``arange(n)`` counts ``0 .. n-1``); int64
        when every argument is an integer, else float32, unless ``dtype`` says otherwise."""
        start, end = (0, start) if end is None else (start, end)
        return cls(arange(start, end, step, dtype), requires_grad=requires_grad)

    @classmethod
    def linspace(
        cls, start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False
    ) -> Self:
        """``steps`` evenly spaced values from ``start`` to ``end``, both included (float32
        unless ``dtype`` says otherwise)."""
        return cls(linspace(start, end, steps, dtype), requires_grad=requires_grad)

    @classmethod
    def eye(
        cls, n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False
    ) -> Self:
        """The ``n x m`` identity matrix (``m`` defaults to ``n``; float32 unless ``dtype`` says
        otherwise)."""
        return cls(eye(n, m, dtype), requires_grad=requires_grad)

    @classmethod
    def uniform(
        cls,
        *shape: int | Sequence[int],
        low: float = 0.0,
        high: float = 1.0,
        rng: RNG = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Self:
        """Samples from the uniform distribution on ``[low, high)`` (an initialiser); ``rng``
        is a ``numpy.random.Generator`` or a seed, ``dtype`` floating (float32 by default)."""
        data = uniform(shape_argument(shape), low, high, rng, dtype)
        return cls(data, requires_grad=requires_grad)

    @classmethod
    def normal(
        cls,
        *shape: int | Sequence[int],
        mean: float = 0.0,
        std: float = 1.0,
        rng: RNG = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Self:
        """Samples from the normal distribution with ``mean`` and ``std`` (an initialiser)."""
        data = normal(shape_argument(shape), mean, std, rng, dtype)
        return cls(data, requires_grad=requires_grad)

    # ``rand`` and ``randn`` are uniform on [0, 1) and the standard normal: the defaults above
    rand, randn = uniform, normal

    @classmethod
    def randint(
        cls,
        low: int,
        high: int | None = None,
        size: Sequence[int] = (),
        rng: RNG = None,
        dtype: Any = None,
    ) -> Self:
        """Integers drawn uniformly from ``[low, high)`` (from 0 when ``high`` is omitted);
        int64 unless ``dtype`` says otherwise."""
        return cls(randint(low, high, size, rng, dtype))

    @classmethod
    def one_hot(cls, indices: Any, num_classes: int = -1) -> Self:
        """``out[..., c] = 1`` where ``c == indices[...]``: an int64 tensor with one more axis
        (``num_classes`` -1: one more than the largest index)."""
        index = integer_array(indices, "one_hot")
        if num_classes < 0:
            num_classes = int(index.max()) + 1 if index.size else 0
        if index.size and (index.min() < 0 or index.max() >= num_classes):
            raise ValueError(f"one_hot: class values must lie in [0, {num_classes})")
        return cls._wrap((index[..., None] == np.arange(num_classes)).astype(np.int64))
