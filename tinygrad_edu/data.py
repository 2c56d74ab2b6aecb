"""Feeding data to a training loop: :class:`TensorDataset` and :class:`DataLoader`.

A **dataset** is anything with ``len(ds)`` and ``ds[i]`` (one sample: an array or a tuple of
arrays). :class:`TensorDataset` wraps equally long arrays (inputs, labels, ...) and also answers
an integer *array* index with a whole batch at once. A :class:`DataLoader` walks a dataset in
mini-batches, optionally shuffled by its own ``numpy.random.Generator``, and yields Tensors that
keep the arrays' dtypes (integer labels stay integers). Only numbers batch into Tensors: strings
and other objects are a :class:`TypeError`, and samples of a generic dataset must all have the
same fields of the same shapes, else a :class:`ValueError` names the two that differ.

>>> import numpy as np
>>> from tinygrad_edu.data import DataLoader, TensorDataset
>>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.array([0, 1, 0, 1, 1]))
>>> for x, y in DataLoader(ds, batch_size=2):
...     print(x.shape, y.data)
(2, 2) [0 1]
(2, 2) [0 1]
(1, 2) [1]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["DataLoader", "TensorDataset"]


class TensorDataset:
    """Samples ``(a[i], b[i], ...)`` from arrays (or Tensors) sharing their first axis."""

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_array(a, f"TensorDataset: array {k}") for k, a in enumerate(arrays))
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = [a.shape for a in self.arrays]
            raise ValueError(f"TensorDataset: arrays must share their first axis, got {shapes}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)


class DataLoader:
    """Mini-batches of a dataset, as Tensors.

    Parameters
    ----------
    dataset
        A :class:`TensorDataset`, a single array (batches of its rows), or any object with
        ``__len__`` and ``__getitem__`` returning an array or a tuple of arrays per sample.
    batch_size
        Samples per batch; the last batch may be smaller unless ``drop_last``.
    shuffle
        Visit the samples in a new random order every epoch.
    drop_last
        Skip a last, incomplete batch.
    rng
        A ``numpy.random.Generator`` or seed for the shuffling (reproducible epochs).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(dataset, (np.ndarray, Tensor)):
            dataset = _Rows(TensorDataset(dataset))
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: the dataset must have __len__ and __getitem__, got "
                f"{type(dataset).__name__}"
            )
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator = np.random.default_rng(rng)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._batch(order[start : start + self.batch_size])

    def _batch(self, indices: np.ndarray) -> Any:
        if isinstance(self.dataset, (TensorDataset, _Rows)):
            fields = self.dataset[indices]  # one fancy-indexing gather per array
            if isinstance(fields, tuple):
                return tuple(Tensor(f, dtype=f.dtype) for f in fields)
            return Tensor(fields, dtype=fields.dtype)
        return _collate([int(i) for i in indices], [self.dataset[int(i)] for i in indices])


class _Rows:
    """A single array as a dataset whose samples are rows (not 1-tuples)."""

    def __init__(self, dataset: TensorDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.dataset[index][0]


def _collate(indices: list[int], samples: list[Any]) -> Tensor | tuple[Tensor, ...]:
    """One Tensor per field of equally structured samples (tuples of arrays, or arrays)."""
    widths = [len(s) if isinstance(s, tuple) else None for s in samples]
    if len(set(widths)) > 1:
        odd = next(k for k, width in enumerate(widths) if width != widths[0])
        raise ValueError(
            f"DataLoader: samples {indices[0]} and {indices[odd]} differ in structure "
            f"({_fields(widths[0])} and {_fields(widths[odd])}); every sample must have the same "
            "fields"
        )
    if widths[0] is None:
        return _stack(indices, samples, "the samples")
    return tuple(
        _stack(indices, list(column), f"field {k} of the samples")
        for k, column in enumerate(zip(*samples))
    )


def _fields(width: int | None) -> str:
    return "not a tuple" if width is None else f"a tuple of {width}"


def _stack(indices: list[int], values: list[Any], what: str) -> Tensor:
    """``values`` stacked along a new first axis: numeric arrays of one shape, else an error."""
    arrays = []
    for index, value in zip(indices, values):
        arrays.append(_array(value, f"DataLoader: {what} at index {index}"))
        if arrays[-1].shape != arrays[0].shape:
            raise ValueError(
                f"DataLoader: {what} differ in shape ({arrays[0].shape} at index {indices[0]}, "
                f"{arrays[-1].shape} at index {index}); a batch stacks equal shapes"
            )
    batch = np.stack(arrays)
    return Tensor(batch, dtype=batch.dtype)


def _array(value: Any, what: str) -> np.ndarray:
    """``value`` (an array, Tensor or nested sequence) as a numeric array, else an error naming
    ``what``: ``ValueError`` for a ragged sequence, ``TypeError`` for non-numbers."""
    try:
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
    except ValueError as err:  # a ragged nested sequence
        raise ValueError(f"{what} is not an array ({err})") from None
    _check_numeric(array, what)
    return array


def _check_numeric(array: np.ndarray, what: str) -> None:
    """:class:`TypeError` unless ``array`` holds numbers (bool, integer, float, complex)."""
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{what} holds {array.dtype} data, not numbers: only numeric arrays batch into Tensors"
        )
