"""Feeding data to a training loop: :class:`TensorDataset` and :class:`DataLoader`.

A **dataset** is anything with ``len(ds)`` and ``ds[i]`` (one sample: an array or a tuple of
arrays). :class:`TensorDataset` wraps equally long arrays (inputs, labels, ...) and also answers
an integer *array* index with a whole batch at once. A :class:`DataLoader` walks a dataset in
mini-batches, optionally shuffled by its own ``numpy.random.Generator``, and yields Tensors that
keep the arrays' dtypes (integer labels stay integers).

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
        self.arrays = tuple(np.asarray(a.data if isinstance(a, Tensor) else a) for a in arrays)
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
        if not isinstance(batch_size, int) or batch_size < 1:
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
        else:
            samples = [self.dataset[int(i)] for i in indices]
            if isinstance(samples[0], tuple):
                fields = tuple(np.stack(column) for column in zip(*samples))
            else:
                fields = np.stack(samples)
        if isinstance(fields, tuple):
            return tuple(_as_tensor(f) for f in fields)
        return _as_tensor(fields)


class _Rows:
    """A single array as a dataset whose samples are rows (not 1-tuples)."""

    def __init__(self, dataset: TensorDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.dataset[index][0]


def _as_tensor(values: Any) -> Tensor:
    array = np.asarray(values.data if isinstance(values, Tensor) else values)
    return Tensor(array, dtype=array.dtype)
