"""The dtype contract of construction: what data becomes, explicit dtypes, refused dtypes.

``Tensor(data)`` keeps PyTorch's dtypes (Python floats float32, ints int64, bools bool; NumPy
arrays, NumPy scalars and Tensors their own); an explicit numeric ``dtype=`` is honoured by every
constructor; object, str, bytes, structured, datetime, timedelta and complex dtypes are refused
with ``TypeError`` wherever they could enter; only floating tensors can require gradients.
(Promotion between operands is tests/engine/test_promotion.py.)
"""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn

NUMERIC = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
#: explicit dtype spellings and the dtype each means (numpy.dtype's reading)
SPELLINGS = [
    (np.int32, "int32"),
    ("int32", "int32"),
    (np.dtype("i2"), "int16"),
    ("float64", "float64"),
    (float, "float64"),
    (int, "int64"),
    (bool, "bool"),
    (np.float32, "float32"),
]
#: dtypes a Tensor must refuse, one of each non-numeric kind and complex
REFUSED = [
    object,
    str,
    "U3",
    bytes,
    "S2",
    [("a", "f4"), ("b", "i4")],
    "V8",
    "datetime64[s]",
    "timedelta64[ms]",
    np.complex64,
    complex,
]


# ------------------------------------------------------------------------------ data
@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, "float32"),
        (2, "int64"),
        (True, "bool"),
        ([1.0, 2.0], "float32"),
        ([1, 2], "int64"),
        ([True, False], "bool"),
        ([1, 2.5], "float32"),
        ([True, 2], "int64"),
        ([[1, 2], [3, 4.0]], "float32"),
        ([], "float32"),
        ((1, 2), "int64"),
        (np.float64(1.0), "float64"),
        (np.int32(3), "int32"),
        ([np.float64(1.0), 2.0], "float64"),
        ([np.float32(1.0), 2.0], "float32"),
        ([np.array([1.0]), np.array([2.0])], "float64"),
        (range(3), "int64"),
    ],
)
def test_data_gets_pytorchs_dtype(data, dtype):
    assert str(Tensor(data).dtype) == dtype


@pytest.mark.parametrize("dtype", NUMERIC)
def test_numpy_arrays_keep_their_dtype_without_a_copy(dtype):
    array = np.arange(6).reshape(2, 3).astype(dtype)
    t = Tensor(array)
    assert t.dtype == array.dtype and t.data is array
    assert Tensor(t).dtype == array.dtype and np.shares_memory(Tensor(t).data, array)
    assert Tensor(array[0, 0]).dtype == array.dtype  # a NumPy scalar


@st.composite
def nested_numbers(draw):
    """Rectangular nested lists of Python numbers of one or several kinds."""
    kinds = draw(st.sets(st.sampled_from(["bool", "int", "float"]), min_size=1))
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    elements = st.one_of(
        *(
            {
                "bool": st.booleans(),
                "int": st.integers(-(2**40), 2**40),
                "float": st.floats(-1e6, 1e6, allow_nan=False),
            }[k]
            for k in sorted(kinds)
        )
    )
    size = int(np.prod(shape))
    flat = draw(st.lists(elements, min_size=size, max_size=size))

    def build(values, dims):
        if len(dims) == 1:
            return list(values)
        step = len(values) // dims[0]
        return [build(values[i * step : (i + 1) * step], dims[1:]) for i in range(dims[0])]

    return build(flat, shape)


def _rule(data) -> str:
    """The contract's dtype of nested Python numbers: any float -> float32, else any int ->
    int64, else bool."""
    flat = np.asarray(data, dtype=object).ravel().tolist()
    if any(isinstance(v, float) for v in flat):
        return "float32"
    if any(not isinstance(v, bool) for v in flat):
        return "int64"
    return "bool"


@given(nested_numbers())
def test_nested_lists_follow_the_rule_and_keep_their_values(data):
    t = Tensor(data)
    assert str(t.dtype) == _rule(data)
    np.testing.assert_array_equal(t.data, np.asarray(data).astype(t.dtype))


@given(nested_numbers())
def test_nested_lists_get_the_dtype_pytorch_gives_them(data):
    torch = pytest.importorskip("torch")
    assert str(Tensor(data).dtype) == str(torch.tensor(data).dtype).removeprefix("torch.")


def test_python_ints_beyond_int64_are_refused():
    with pytest.raises(OverflowError, match="int64"):
        Tensor(2**64)


@given(
    nested_numbers(),
    st.integers(min_value=2**63, max_value=2**70) | st.integers(max_value=-(2**63) - 1),
    st.data(),
)
def test_a_python_int_beyond_int64_anywhere_in_a_list_is_refused(data, big, draw):
    """NumPy would make such a list uint64, float64 (``[1, 2**63]`` became a float32 tensor)
    or objects; PyTorch refuses it, and so do we, with the number named."""
    flat = np.asarray(data, dtype=object)
    if flat.ndim == 0:
        return
    index = tuple(draw.draw(st.integers(0, n - 1)) for n in flat.shape)
    flat[index] = big
    with pytest.raises(OverflowError, match=f"{big} does not fit in int64"):
        Tensor(flat.tolist())


# ---------------------------------------------------------------------- explicit dtype=
CONSTRUCTORS = {
    "Tensor": lambda dtype: Tensor([1, 0, 2], dtype=dtype),
    "zeros": lambda dtype: tg.zeros(2, 3, dtype=dtype),
    "ones": lambda dtype: Tensor.ones((2,), dtype=dtype),
    "full": lambda dtype: tg.full((2,), 1.5, dtype=dtype),
    "zeros_like": lambda dtype: tg.zeros_like(Tensor([1.5, 2.5]), dtype=dtype),
    "ones_like": lambda dtype: Tensor([1, 2]).ones_like(dtype=dtype),
    "full_like": lambda dtype: Tensor([True]).full_like(3, dtype=dtype),
    "arange": lambda dtype: tg.arange(0, 4, dtype=dtype),
    "linspace": lambda dtype: tg.linspace(0, 3, 4, dtype=dtype),
    "eye": lambda dtype: tg.eye(2, 3, dtype=dtype),
    "randint": lambda dtype: tg.randint(0, 2, (3,), rng=0, dtype=dtype),
    "Parameter": lambda dtype: nn.Parameter([1, 2], requires_grad=False, dtype=dtype),
    "astype": lambda dtype: Tensor([1.5, 2.5]).astype(dtype),
}
FLOATING_ONLY = {
    "rand": lambda dtype: tg.rand(2, rng=0, dtype=dtype),
    "randn": lambda dtype: Tensor.randn(2, rng=0, dtype=dtype),
    "uniform": lambda dtype: tg.uniform(2, low=-1, high=1, rng=0, dtype=dtype),
    "normal": lambda dtype: tg.normal(2, rng=0, dtype=dtype),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
@pytest.mark.parametrize("dtype, meaning", SPELLINGS, ids=str)
def test_every_constructor_honours_an_explicit_dtype(name, dtype, meaning):
    assert str(CONSTRUCTORS[name](dtype).dtype) == meaning


@pytest.mark.parametrize("name", sorted(FLOATING_ONLY))
def test_random_constructors_honour_floating_dtypes_and_refuse_others(name):
    for dtype in (np.float64, "float16", float):
        assert CONSTRUCTORS.get(name, FLOATING_ONLY[name])(dtype).dtype.kind == "f"
    with pytest.raises(TypeError, match="floating dtype"):
        FLOATING_ONLY[name](np.int32)


def test_default_dtypes_of_the_constructors_are_pytorchs():
    assert tg.zeros(2).dtype == tg.ones(2).dtype == tg.eye(2).dtype == np.float32
    assert tg.linspace(0, 1, 3).dtype == tg.randn(2).dtype == tg.rand(2).dtype == np.float32
    assert tg.arange(5).dtype == np.int64 and tg.arange(0.5, 2).dtype == np.float32
    assert tg.arange(2**60, 2**60 + 2).data[1] == 2**60 + 1  # exact beyond float64's 2**53
    assert tg.full((1,), 2).dtype == np.int64 and tg.full((1,), False).dtype == np.bool_
    assert tg.randint(3, size=(2,)).dtype == np.int64
    assert Tensor([1, 2]).zeros_like().dtype == np.int64


def test_explicit_float64_keeps_python_floats_exact():
    assert Tensor([0.1], dtype=np.float64).data[0] == 0.1
    assert tg.full((1,), 0.1, dtype=float).data[0] == 0.1


# --------------------------------------------------------------------------- refusals
ENTRY_POINTS = {
    "Tensor(dtype=)": lambda dtype: Tensor([1, 2], dtype=dtype),
    "Tensor(data)": lambda dtype: Tensor(np.zeros(2, dtype=dtype)),
    "Tensor(0-d)": lambda dtype: Tensor(np.zeros((), dtype=dtype)),
    "Parameter": lambda dtype: nn.Parameter(np.zeros(2, dtype=dtype), requires_grad=False),
    "zeros": lambda dtype: tg.zeros(2, dtype=dtype),
    "full": lambda dtype: tg.full((2,), 1, dtype=dtype),
    "full_like": lambda dtype: Tensor([1.0]).full_like(0, dtype=dtype),
    "arange": lambda dtype: tg.arange(3, dtype=dtype),
    "eye": lambda dtype: tg.eye(2, dtype=dtype),
    "linspace": lambda dtype: tg.linspace(0, 1, 2, dtype=dtype),
    "randn": lambda dtype: tg.randn(2, dtype=dtype),
    "randint": lambda dtype: tg.randint(3, size=(2,), dtype=dtype),
    "astype": lambda dtype: Tensor([1.0]).astype(dtype),
    "operand": lambda dtype: Tensor([1.0, 2.0]) + np.zeros(2, dtype=dtype),
    "reflected operand": lambda dtype: np.zeros(2, dtype=dtype) * Tensor([1.0, 2.0]),
    "where": lambda dtype: tg.where(Tensor([True, False]), Tensor([1.0]), np.zeros(2, dtype)),
    "stack": lambda dtype: tg.stack([Tensor([1.0, 2.0]), np.zeros(2, dtype=dtype)]),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("dtype", REFUSED, ids=str)
def test_non_numeric_dtypes_are_refused_everywhere(entry, dtype):
    with pytest.raises(TypeError, match=r"dtype|bool, integer or floating"):
        ENTRY_POINTS[entry](dtype)


@pytest.mark.parametrize(
    "data",
    [
        "abc",
        ["1.5", "2"],
        None,
        [1, None],
        {"a": 1},
        b"xy",
        1 + 2j,
        [1j],
        datetime.datetime(2024, 1, 1),
        np.datetime64("2024-01-01"),
        (x for x in range(3)),
        object(),
    ],
    ids=repr,
)
def test_data_that_is_not_numbers_is_refused(data):
    with pytest.raises(TypeError, match="Tensor"):
        Tensor(data)
    with pytest.raises(TypeError):
        Tensor(data, dtype=np.float32)  # no string parsing or object conversion either


def test_numpy_interop_results_of_a_refused_dtype_are_refused():
    with pytest.raises(TypeError, match="object"):
        np.fmax(Tensor([1.0, 2.0]), np.array([1, 2], dtype=object))


def test_a_refused_astype_changes_nothing():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="object"):
        x.astype(object)
    assert x.dtype == np.float32 and x.requires_grad


# --------------------------------------------------------------------- requires_grad
NON_FLOAT_GRAD = {
    "Tensor": lambda: Tensor([1, 2], requires_grad=True),
    "Tensor(bool)": lambda: Tensor([True], requires_grad=True),
    "dtype=int": lambda: Tensor([1.5], dtype=int, requires_grad=True),
    "zeros": lambda: tg.zeros(2, dtype=np.int32, requires_grad=True),
    "full": lambda: tg.full((2,), 3, requires_grad=True),
    "full_like": lambda: Tensor([1.0]).full_like(1, dtype=bool, requires_grad=True),
    "arange": lambda: tg.arange(3, requires_grad=True),
    "eye": lambda: tg.eye(2, dtype=np.int64, requires_grad=True),
    "Parameter": lambda: nn.Parameter([1, 2]),
    "Parameter(int array)": lambda: nn.Parameter(np.arange(3)),
    "requires_grad_": lambda: Tensor([1, 2]).requires_grad_(),
}


@pytest.mark.parametrize("name", sorted(NON_FLOAT_GRAD))
def test_requires_grad_on_a_non_float_tensor_is_refused(name):
    with pytest.raises(TypeError, match="floating-point"):
        NON_FLOAT_GRAD[name]()


def test_floating_tensors_from_any_constructor_can_require_grad():
    for t in (
        Tensor([1.5], requires_grad=True),
        Tensor([1, 2], dtype=np.float64, requires_grad=True),
        tg.zeros(2, requires_grad=True),
        tg.arange(0.0, 2.0, requires_grad=True),
        tg.linspace(0, 1, 3, requires_grad=True),
        nn.Parameter([1, 2], dtype=np.float32),
    ):
        assert t.requires_grad and t.dtype.kind == "f"


def test_result_type_and_promote_types_are_exported_like_torch():
    assert tg.result_type(Tensor([1, 2]), 2.5) == np.float32
    assert tg.promote_types(np.int64, np.float32) == np.float32
