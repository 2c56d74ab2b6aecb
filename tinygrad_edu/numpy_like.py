"""What makes a Tensor read like a NumPy array: ``shape``, ``ndim``, ``dtype``, ``size``,
``len(t)``, iteration, ``np.asarray(t)``, ``t.numpy()``, ``t.item()``, ``repr``, ``bool`` and
``float``. :class:`~tinygrad_edu.tensor.Tensor` inherits them from :class:`NumpyLike`; each reads
the tensor's ``data`` array.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import numpy as np


class NumpyLike:
    """The NumPy-array surface of a Tensor (see the module)."""

    __slots__ = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """The dimensions, as in NumPy."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Self]:
        """The rows along the first axis, each a differentiable ``self[i]``."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(t)``: a read-only view of the array (a write through it would change a
        value a recorded op may have saved, unseen by the in-place check), ``np.array(t)`` a
        copy; :meth:`numpy` is the writable escape hatch, shared like ``.data``."""
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        if copy:
            return self.data.copy()
        view = self.data.view()
        view.flags.writeable = False
        return view

    def numpy(self) -> np.ndarray:
        """The underlying ``numpy.ndarray`` (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a single-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a single-element tensor, got shape {self.shape}")
        return self.data.item()

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}"
        if self._node is not None:
            extra += f", op={self._node.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())
