"""Indexing: every mix of basic, advanced and boolean indices, on any axis.

The gradient of ``y = x[index]`` is a scatter-*add* of the upstream gradient: a position picked
twice gets both contributions. The reference below is computed independently of the engine: index
an array of flat positions the same way, then ``np.add.at`` the upstream gradient into them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.testing import arrays, indices, shapes


def scatter_add_reference(shape: tuple[int, ...], index, upstream: np.ndarray) -> np.ndarray:
    """d<upstream, x[index]>/dx without the engine: where did each selected element come from?"""
    positions = np.arange(int(np.prod(shape))).reshape(shape)[index]
    total = np.zeros(int(np.prod(shape)))
    np.add.at(total, positions.ravel(), np.broadcast_to(upstream, positions.shape).ravel())
    return total.reshape(shape)


def as_tensor_index(index):
    """The same index with its arrays as Tensors (integer Tensors keep an integer dtype)."""
    if isinstance(index, tuple):
        return tuple(as_tensor_index(part) for part in index)
    if isinstance(index, np.ndarray):
        return Tensor(index, dtype=index.dtype)
    return index


@st.composite
def indexed(draw, max_dims: int = 4):
    shape = draw(shapes(min_dims=0, max_dims=max_dims))
    return draw(arrays(shape)), draw(indices(shape))


@given(indexed(), st.booleans())
def test_gradient_of_any_index_is_a_scatter_add(case, random_upstream):
    x, index = case
    t = Tensor(x, requires_grad=True)
    y = t[index]
    np.testing.assert_array_equal(y.data, x[index])
    rng = np.random.default_rng(0)
    upstream = rng.standard_normal(y.shape) if random_upstream else np.ones(y.shape)
    (g,) = tg.grad(y, [t], grad_outputs=Tensor(upstream), allow_unused=True)
    actual = np.zeros(x.shape) if g is None else g.data
    np.testing.assert_allclose(actual, scatter_add_reference(x.shape, index, upstream), atol=1e-12)


@given(indexed(max_dims=3))
def test_index_gradients_pass_finite_differences_first_and_second_order(case):
    x, index = case
    if x[index].size == 0:
        return  # nothing selected: no gradient to check
    t = Tensor(x, requires_grad=True)
    assert tg.gradcheck(lambda a: a[index], [t])
    assert tg.gradgradcheck(lambda a: a[index] ** 2, [t])  # scatter-add's own VJP


@given(indexed())
def test_tensor_indices_select_like_their_arrays(case):
    x, index = case
    t = Tensor(x, requires_grad=True)
    via_tensors = t[as_tensor_index(index)]
    np.testing.assert_array_equal(via_tensors.data, x[index])
    (g,) = tg.grad(via_tensors.sum(), [t], allow_unused=True)
    expected = scatter_add_reference(x.shape, index, np.ones(x[index].shape))
    np.testing.assert_array_equal(np.zeros(x.shape) if g is None else g.data, expected)


@given(shapes(min_dims=1), st.data())
def test_out_of_range_indices_raise_index_error(shape, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    side = shape[axis]
    bad = data.draw(st.one_of(st.integers(side, side + 3), st.integers(-side - 3, -side - 1)))
    as_array = data.draw(st.booleans())
    part = np.array([0, bad]) if as_array and side else bad
    index = (slice(None),) * axis + (part,)
    with pytest.raises(IndexError, match=r"getitem"):
        Tensor(np.zeros(shape))[index]


@pytest.mark.parametrize(
    "index",
    [
        np.array([0.0, 1.0]),
        [0.0, 1.0],
        Tensor(np.array([0.0, 1.0])),
        Tensor([0.0, 1.0]),  # float32: refused, not truncated
        (slice(None), Tensor(np.array([1.5]))),
        1.0,
    ],
    ids=["float-array", "float-list", "float64-tensor", "float32-tensor", "in-tuple", "scalar"],
)
def test_float_indices_raise_index_error(index):
    with pytest.raises(IndexError, match=r"integer or boolean|valid indices"):
        Tensor(np.ones((3, 3)))[index]


def test_wrong_mask_shape_raises_index_error():
    with pytest.raises(IndexError, match="boolean index"):
        Tensor(np.ones((3, 2)))[np.array([True, False])]


# ----------------------------------------------------------------------------- issue 9 cases
def test_boolean_mask_plus_repeated_integer_index_adds_up():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x[(np.array([True, False]), [1, 1])]  # picks x[0, 1] twice
    np.testing.assert_array_equal(y.data, [1.0, 1.0])
    (g,) = tg.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.data, [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    y = x[([True, False], [1, 1])]  # the same with a list mask
    (g,) = tg.grad(y.sum(), [x])
    assert g.data[0, 1] == 2.0


def test_boolean_tensor_index_selects_the_mask_rows():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    mask = Tensor(np.array([True, False, True]))
    assert mask.dtype == np.bool_
    y = x[mask]
    np.testing.assert_array_equal(y.data, [[0.0, 1.0], [4.0, 5.0]])
    (g,) = tg.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.data, [[1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(x[x > 2.5].data, [3.0, 4.0, 5.0])  # a comparison as the mask


def test_integer_tensor_index_with_repeats():
    x = Tensor(np.arange(4.0), requires_grad=True)
    y = x[Tensor(np.array([3, 3, -1, 0]), dtype=np.int64)]
    (g,) = tg.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.data, [1.0, 0.0, 0.0, 3.0])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_tensors_made_from_integer_data_index(dtype):
    """``Tensor(np.array([0, 2]))`` keeps its integer dtype, so it indexes like the array."""
    x = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    index = Tensor(np.array([0, 2, 2], dtype=dtype))
    assert index.dtype == dtype
    y = x[index]
    np.testing.assert_array_equal(y.data, x.data[[0, 2, 2]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data[:, 0], [1, 0, 2, 0])
    np.testing.assert_array_equal(x[Tensor([1, 3])].data, x.data[[1, 3]])
    mask = x > 5
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(x[mask].data, x.data[x.data > 5])
