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
    with pytest.raises(ValueError, match="batch_size must be a positive int, got True"):
        DataLoader(np.ones(3), True)  # PyTorch refuses a bool too
    with pytest.raises(ValueError, match=r"TensorDataset: array 1 is not an array \(setting"):
        TensorDataset(np.ones(2), [[1.0], [1.0, 2.0]])


class Samples:
    """A generic dataset over a list of ready-made samples."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


@pytest.mark.parametrize(
    "value, shown",
    [("red", "<U3"), (b"x", "|S1"), (None, "object"), ({"a": 1}, "object"), (object(), "object")],
)
def test_strings_and_objects_are_refused_not_batched(value, shown):
    loader = DataLoader(Samples([(np.ones(2), value)] * 3), batch_size=2)
    with pytest.raises(TypeError, match=rf"field 1 of the samples at index 0 holds {shown} data"):
        next(iter(loader))
    with pytest.raises(TypeError, match=r"array 0 holds <U1 data, not numbers"):
        TensorDataset(np.array(["a", "b"]))
    with pytest.raises(TypeError, match=r"array 1 holds object data"):
        DataLoader(TensorDataset(np.ones(2), np.array([None, 1])))


def test_ragged_samples_are_refused_instead_of_losing_fields():
    """``zip`` used to drop the fields that only some samples have."""
    ragged = Samples([(np.ones(2), 1, 5.0), (np.ones(2), 0)])
    with pytest.raises(ValueError, match=r"samples 0 and 1 differ in structure \(a tuple of 3 and"):
        next(iter(DataLoader(ragged, batch_size=2)))
    mixed = Samples([(np.ones(2), 1), np.ones(2)])
    with pytest.raises(ValueError, match=r"differ in structure \(a tuple of 2 and not a tuple\)"):
        next(iter(DataLoader(mixed, batch_size=2)))
    shapes = Samples([(np.ones(2), 1), (np.ones(3), 0)])
    with pytest.raises(ValueError, match=r"field 0 of the samples differ in shape \(\(2,\) at"):
        next(iter(DataLoader(shapes, batch_size=2)))
    nested = Samples([[[1, 2], [3]], [[1, 2], [3, 4]]])
    with pytest.raises(ValueError, match=r"the samples at index 0 is not an array"):
        next(iter(DataLoader(nested, batch_size=2)))


_FIELDS = st.one_of(
    st.sampled_from([(), (2,), (3,), (2, 2)]).map(np.ones),
    st.integers(-3, 3),
    st.floats(-1, 1),
    st.booleans(),
    st.sampled_from(["text", None, b"raw"]),
)
_SAMPLES = st.one_of(_FIELDS, st.lists(_FIELDS, min_size=1, max_size=3).map(tuple))


@given(st.lists(_SAMPLES, min_size=1, max_size=6), st.integers(1, 4))
def test_any_generic_dataset_batches_exactly_or_says_why(samples, batch_size):
    """Every batch holds every field of every sample, stacked -- or it is a clear TypeError
    (not numbers) or ValueError (different structure or shapes); never a silent loss."""
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        try:
            (batch,) = DataLoader(Samples(chunk), batch_size=batch_size)
        except (TypeError, ValueError) as err:
            assert str(err).startswith("DataLoader: "), err
            continue
        columns = list(zip(*chunk)) if isinstance(chunk[0], tuple) else [chunk]
        fields = batch if isinstance(batch, tuple) else (batch,)
        assert len(fields) == len(columns) and all(len(c) == len(chunk) for c in columns)
        for field, column in zip(fields, columns):
            np.testing.assert_array_equal(field.data, np.stack([np.asarray(v) for v in column]))
