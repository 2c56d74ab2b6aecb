"""DataLoader and TensorDataset: batching, shuffling with rng, drop_last, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Tensor
from tinygrad_edu.data import DataLoader, TensorDataset


@given(
    n=st.integers(1, 30),
    batch_size=st.integers(1, 8),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
)
def test_every_sample_once_per_epoch_in_batches(n, batch_size, shuffle, drop_last):
    x, y = np.arange(n * 2.0).reshape(n, 2), np.arange(n)
    loader = DataLoader(TensorDataset(x, y), batch_size, shuffle, drop_last, rng=0)
    batches = list(loader)
    assert len(batches) == len(loader)
    sizes = [len(b[1]) for b in batches]
    assert all(s == batch_size for s in sizes[:-1])
    if drop_last:
        assert sum(sizes) == n - n % batch_size
    else:
        assert sum(sizes) == n and 1 <= sizes[-1] <= batch_size
    labels = np.concatenate([b[1].data for b in batches]) if batches else np.array([], int)
    assert len(set(labels.tolist())) == len(labels)  # no sample twice
    for xb, yb in batches:
        np.testing.assert_array_equal(xb.data, x[yb.data])  # inputs stay with their labels
    if not shuffle:
        np.testing.assert_array_equal(labels, np.arange(len(labels)))


def test_shuffling_is_reproducible_and_changes_between_epochs():
    data = np.arange(20)
    first, second = (
        DataLoader(data, 5, shuffle=True, rng=7),
        DataLoader(data, 5, shuffle=True, rng=7),
    )
    epoch1 = np.concatenate([b.data for b in first])
    np.testing.assert_array_equal(epoch1, np.concatenate([b.data for b in second]))
    assert not np.array_equal(epoch1, np.concatenate([b.data for b in first]))
    assert sorted(epoch1.tolist()) == list(range(20))


def test_dtypes_are_kept_and_generic_datasets_are_collated():
    loader = DataLoader(TensorDataset(np.ones((3, 2), np.float32), np.array([1, 2, 3])), 2)
    x, y = next(iter(loader))
    assert isinstance(x, Tensor) and x.dtype == np.float32 and y.dtype.kind == "i"

    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 2

    xs, parity = next(iter(DataLoader(Squares(), 3)))
    np.testing.assert_array_equal(xs.data, [[0, 0], [1, 1], [2, 4]])
    np.testing.assert_array_equal(parity.data, [0, 1, 0])


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="share their first axis"):
        TensorDataset(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        DataLoader(np.ones(3), 0)
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(42)
