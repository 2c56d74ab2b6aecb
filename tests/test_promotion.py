"""dtype promotion: integer, boolean and floating tensors meeting Python numbers.

Python numbers are *weak* (NumPy 2's NEP 50, PyTorch's rule): they adapt to the tensor's dtype when
it can hold them. The one deliberate difference from NumPy: a Python float meeting an integer or
boolean tensor gives float32 (PyTorch's default float), never float64 and never a truncated integer.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.testing import integer_arrays, python_scalars, shapes

BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "pow": operator.pow,
}
COMPARISONS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _numpy_outcome(compute):
    """NumPy's result, or the exception class it raises (we must raise the same)."""
    with np.errstate(all="ignore"):
        try:
            return compute(), None
        except (TypeError, ValueError, OverflowError) as err:
            return None, type(err)


def _check(op, array: np.ndarray, scalar, reflected: bool, expected_dtype=None) -> None:
    tensor = Tensor(array, dtype=array.dtype)
    ours = (lambda: op(scalar, tensor)) if reflected else (lambda: op(tensor, scalar))
    if expected_dtype is None:
        reference, error = _numpy_outcome(
            (lambda: op(scalar, array)) if reflected else (lambda: op(array, scalar))
        )
    else:  # NumPy's value of the same maths, computed in the dtype we promise
        low = array.astype(expected_dtype)
        typed = expected_dtype.type(scalar)
        reference, error = _numpy_outcome(
            (lambda: op(typed, low)) if reflected else (lambda: op(low, typed))
        )
    if error is not None:
        with pytest.raises(error):
            ours()
        return
    result = ours()
    assert result.dtype == reference.dtype, (array.dtype, scalar, result.dtype, reference.dtype)
    np.testing.assert_array_equal(result.data, reference)


@st.composite
def integer_tensor_cases(draw, dtypes=None):
    shape = draw(shapes(max_dims=2))
    array = draw(integer_arrays(shape) if dtypes is None else integer_arrays(shape, dtypes))
    return array, draw(st.sampled_from(sorted(BINARY))), draw(st.booleans())


@given(integer_tensor_cases(), python_scalars(allow_float=False))
def test_python_ints_and_bools_promote_like_numpy(case, scalar):
    array, name, reflected = case
    _check(BINARY[name], array, scalar, reflected)


@pytest.mark.parametrize(
    "dtype",
    [
        np.bool_,
        np.int8,
        np.uint8,
        np.int16,
        np.int32,
        np.int64,
    ],
    ids=lambda d: np.dtype(d).name,
)
@given(data=st.data())
def test_python_floats_meeting_integer_tensors_give_float32(dtype, data):
    array, name, reflected = data.draw(integer_tensor_cases(dtypes=[dtype]))
    scalar = data.draw(python_scalars(allow_bool=False, allow_int=False))
    _check(BINARY[name], array, scalar, reflected, expected_dtype=np.dtype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_python_numbers_keep_a_float_tensors_dtype(dtype, data):
    shape = data.draw(shapes(max_dims=2))
    array = np.random.default_rng(data.draw(st.integers(0, 99))).uniform(0.5, 2, shape)
    array = array.astype(dtype)
    name, reflected = data.draw(st.sampled_from(sorted(BINARY))), data.draw(st.booleans())
    _check(BINARY[name], array, data.draw(python_scalars()), reflected)


@given(integer_tensor_cases(), python_scalars(), st.sampled_from(sorted(COMPARISONS)))
def test_comparisons_with_python_numbers_agree_with_numpy(case, scalar, name):
    array = case[0]
    result = COMPARISONS[name](Tensor(array, dtype=array.dtype), scalar)
    assert result.dtype == np.bool_ and not result.requires_grad
    np.testing.assert_array_equal(result.data, COMPARISONS[name](array, scalar))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(python_scalars(), st.sampled_from(sorted(BINARY)), st.booleans())
def test_gradients_through_python_numbers_keep_the_dtype(dtype, scalar, name, reflected):
    x = Tensor(np.array([0.5, 1.5, 2.0], dtype=dtype), requires_grad=True)
    if name == "truediv" and reflected is False and scalar == 0:
        scalar = 2  # x / 0 has no finite derivative to compare
    y = BINARY[name](scalar, x) if reflected else BINARY[name](x, scalar)
    (g,) = tg.grad(y.sum(), [x])
    assert y.dtype == dtype and g.dtype == dtype
    step = 1e-6
    xd = x.data.astype(np.float64)
    s = float(scalar)
    f = (lambda v: BINARY[name](s, v)) if reflected else (lambda v: BINARY[name](v, s))
    with np.errstate(all="ignore"):
        numeric = (f(xd + step) - f(xd - step)) / (2 * step)
    finite = np.isfinite(numeric) & (np.abs(numeric) < 1e6)
    np.testing.assert_allclose(g.data[finite], numeric[finite], rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- issue 9 cases
def test_int_tensor_times_a_half_is_not_truncated():
    y = Tensor(np.array([1, 2, 3], dtype=np.int8), dtype=np.int8) * 0.5
    np.testing.assert_array_equal(y.data, [0.5, 1.0, 1.5])
    assert y.dtype == np.float32


def test_int32_tensor_times_a_half_is_float32():
    y = Tensor([1, 2, 3], dtype=np.int32) * 0.5
    np.testing.assert_array_equal(y.data, [0.5, 1.0, 1.5])
    assert y.dtype == np.float32


def test_int32_tensor_times_a_half_has_the_right_values():
    np.testing.assert_array_equal((Tensor([1, 2, 3], dtype=np.int32) * 0.5).data, [0.5, 1, 1.5])


def test_boolean_tensors_meet_numbers_like_numpy():
    mask = Tensor(np.array([True, False]))
    np.testing.assert_array_equal((mask * 2.5).data, [2.5, 0.0])
    np.testing.assert_array_equal((mask + 1).data, [2, 1])
    assert (mask + 1).dtype == np.int64 and (mask * 2.5).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.bool_])
@pytest.mark.parametrize("scalar", [-1, 300, 2**70])
def test_true_division_by_ints_beyond_the_tensor_dtype_divides_like_numpy(dtype, scalar):
    """Integers divide as float64 in NumPy, so ``uint8_t / -1`` is no overflow."""
    array = np.array([0, 1, 3], dtype=dtype)
    _check(operator.truediv, array, scalar, reflected=False)
    _check(operator.truediv, array[1:], scalar, reflected=True)
