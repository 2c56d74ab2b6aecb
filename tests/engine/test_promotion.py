"""dtype promotion is PyTorch's (``torch.result_type``), for every operator and its operands.

The rules (:mod:`tinygrad_edu.dtypes`): categories bool < integer < floating; operands fall into
three tiers -- tensors with axes, 0-d tensors, Python numbers -- and a lower tier counts only when
its category is higher; Python numbers are weak (bool, int64, default float32); ``/`` of integers
gives float32; ``-`` with a boolean and ``** // %`` of two booleans are refused.

The tables below are written out by hand from those rules, so the tests without PyTorch check the
library against the rules, and the tests with PyTorch (an oracle, never a dependency) check the
tables and every operator against ``torch.result_type`` itself.
"""

from __future__ import annotations

import itertools
import operator
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, dtypes
from tinygrad_edu.testing import integer_arrays, python_scalars, shapes

DTYPES = ("bool", "int32", "int64", "float32", "float64")

#: torch.promote_types of the five dtypes (symmetric; also n-d with n-d and 0-d with 0-d)
PROMOTE = {
    ("bool", "bool"): "bool",
    ("bool", "int32"): "int32",
    ("bool", "int64"): "int64",
    ("bool", "float32"): "float32",
    ("bool", "float64"): "float64",
    ("int32", "int32"): "int32",
    ("int32", "int64"): "int64",
    ("int32", "float32"): "float32",
    ("int32", "float64"): "float64",
    ("int64", "int64"): "int64",
    ("int64", "float32"): "float32",
    ("int64", "float64"): "float64",
    ("float32", "float32"): "float32",
    ("float32", "float64"): "float64",
    ("float64", "float64"): "float64",
}

#: a tensor with axes (rows) meets a 0-d tensor (columns): the 0-d one counts only when its
#: category is higher
WITH_ZERO_DIM = {
    "bool": ("bool", "int32", "int64", "float32", "float64"),
    "int32": ("int32", "int32", "int32", "float32", "float64"),
    "int64": ("int64", "int64", "int64", "float32", "float64"),
    "float32": ("float32", "float32", "float32", "float32", "float32"),
    "float64": ("float64", "float64", "float64", "float64", "float64"),
}

#: a tensor (rows, with axes or 0-d) meets the Python numbers True, 3 and 2.5 (columns)
SCALARS = (True, 3, 2.5)
WITH_SCALAR = {
    "bool": ("bool", "int64", "float32"),
    "int32": ("int32", "int32", "float32"),
    "int64": ("int64", "int64", "float32"),
    "float32": ("float32", "float32", "float32"),
    "float64": ("float64", "float64", "float64"),
}

OPERATORS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "<": operator.lt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
#: functions of two tensors (or a tensor and a number, for ``where``)
FUNCTIONS = ("maximum", "minimum", "where")
COMPARISONS = ("<", ">=", "==", "!=")
#: operators PyTorch refuses on two booleans (``-``: on any boolean operand)
NO_TWO_BOOLS = ("**", "//", "%")

# An operand: ("nd", dtype), ("0d", dtype) or ("scalar", value).
TENSOR_OPERANDS = [(rank, d) for d in DTYPES for rank in ("nd", "0d")]
OPERANDS = TENSOR_OPERANDS + [("scalar", v) for v in SCALARS]
PAIRS = [
    (a, b)
    for a, b in itertools.product(OPERANDS, OPERANDS)
    if "scalar" not in (a[0], b[0]) or a[0] != b[0]
]


def _promote(a: str, b: str) -> str:
    return PROMOTE.get((a, b)) or PROMOTE[(b, a)]


def _table_dtype(x: tuple, y: tuple) -> str:
    """The promoted dtype of two operands, looked up in the tables above."""
    if x[0] == "scalar":
        x, y = y, x
    if y[0] == "scalar":
        return WITH_SCALAR[x[1]][SCALARS.index(y[1])]
    if x[0] == y[0]:
        return _promote(x[1], y[1])
    nd, zero = (x, y) if x[0] == "nd" else (y, x)
    return WITH_ZERO_DIM[nd[1]][DTYPES.index(zero[1])]


def _is_bool(operand: tuple) -> bool:
    return operand[1] == "bool" if operand[0] != "scalar" else isinstance(operand[1], bool)


def expected(name: str, x: tuple, y: tuple) -> str | None:
    """The result dtype the rules promise for ``x <name> y``, or None where they refuse."""
    dtype = _table_dtype(x, y)
    if name == "-" and (_is_bool(x) or _is_bool(y)):
        return None
    if name in NO_TWO_BOOLS and dtype == "bool":
        return None
    if name in COMPARISONS:
        return "bool"
    if name == "/" and not dtype.startswith("float"):
        return "float32"
    return dtype


def _values(rank: str, dtype: str) -> np.ndarray:
    values = np.array([1, 2, 3]) if rank == "nd" else np.array(2)
    return values.astype(dtype)


def _ours(operand: tuple):
    return operand[1] if operand[0] == "scalar" else Tensor(_values(*operand))


MASK = np.array([True, False, True])


def _apply_ours(name: str, x, y):
    if name == "maximum":
        return tg.Tensor.maximum(x, y) if isinstance(x, Tensor) else tg.Tensor.maximum(y, x)
    if name == "minimum":
        return tg.Tensor.minimum(x, y) if isinstance(x, Tensor) else tg.Tensor.minimum(y, x)
    if name == "where":
        return tg.where(Tensor(MASK), x, y)
    return OPERATORS[name](x, y)


def _numpy_reference(name: str, x: tuple, y: tuple, dtype: str) -> np.ndarray:
    """NumPy's values of the same maths, computed in the promised dtype."""
    compute = _table_dtype(x, y) if name in COMPARISONS else dtype
    xs, ys = (
        np.asarray(o[1], dtype=compute) if o[0] == "scalar" else _values(*o).astype(compute)
        for o in (x, y)
    )
    functions = {"maximum": np.maximum, "minimum": np.minimum}
    with np.errstate(all="ignore"):
        if name == "where":
            return np.where(MASK, xs, ys)
        return np.asarray(functions.get(name, OPERATORS.get(name))(xs, ys))


ALL_NAMES = list(OPERATORS) + list(FUNCTIONS)


# ------------------------------------------------------------------- against the rules' tables
@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("x,y", PAIRS, ids=lambda o: f"{o[0]}-{o[1]}")
def test_every_operator_on_every_pair_follows_the_rules(name, x, y):
    if name in ("maximum", "minimum") and x[0] == y[0] == "scalar":
        return
    promised = expected(name, x, y)
    if promised is None:
        with pytest.raises(TypeError, match="boolean"):
            _apply_ours(name, _ours(x), _ours(y))
        return
    result = _apply_ours(name, _ours(x), _ours(y))
    assert str(result.dtype) == promised, (name, x, y, result.dtype)
    reference = _numpy_reference(name, x, y, promised)
    np.testing.assert_array_equal(result.data, reference.astype(promised))


@pytest.mark.parametrize("x,y", PAIRS, ids=lambda o: f"{o[0]}-{o[1]}")
def test_result_type_follows_the_tables(x, y):
    assert str(dtypes.result_type(_ours(x), _ours(y))) == _table_dtype(x, y)


def test_integer_true_division_is_float32_and_exact_for_small_values():
    y = Tensor([1, 2, 3]) / Tensor([2, 4, 8])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, np.array([0.5, 0.5, 0.375], dtype=np.float32))
    assert (Tensor([1, 2]) / 2).dtype == np.float32
    assert (7 / Tensor(np.array([2], dtype=np.uint8))).dtype == np.float32


def test_mixed_integer_and_floating_tensors_stay_in_the_floating_dtype():
    """NumPy makes float64 of int64 and float32; PyTorch (and we) float32."""
    y = Tensor(np.arange(3)) * Tensor(np.ones(3, dtype=np.float32))
    assert y.dtype == np.float32


def test_a_zero_dim_tensor_does_not_widen_a_tensor_of_its_category():
    x = Tensor(np.ones(3, dtype=np.float32))
    assert (x + Tensor(np.float64(2.0))).dtype == np.float32
    assert (Tensor(np.ones(3, dtype=np.int32)) + Tensor(np.int64(2))).dtype == np.int32
    assert (Tensor(np.ones(3, dtype=np.int32)) + Tensor(np.float64(2.0))).dtype == np.float64


def test_numpy_scalars_are_weak_like_python_numbers():
    x = Tensor(np.array([1, 2], dtype=np.int32))
    assert (x + np.int64(5)).dtype == np.int32
    assert (x * np.float64(0.5)).dtype == np.float32
    assert (Tensor(np.ones(2, dtype=np.float32)) + np.float64(0.1)).dtype == np.float32
    # on the left too, where NumPy hands the operation to the Tensor
    assert (np.float64(0.5) * x).dtype == np.float32 and (np.int64(5) - x).dtype == np.int32
    np.testing.assert_array_equal((np.float64(1.5) < x).data, [False, True])
    assert (np.float32(2.0) ** Tensor(np.ones(2, dtype=np.float16))).dtype == np.float16


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_python_ints_beyond_an_integer_dtype_wrap_around_like_pytorch(dtype):
    x = Tensor(np.array([1, 2], dtype=dtype))
    y = x + 300
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, (np.array([1, 2]) + 300).astype(dtype))


def test_python_ints_beyond_int64_are_refused():
    with pytest.raises(OverflowError, match="int64"):
        Tensor([1, 2]) + 2**70


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.bool_])
@pytest.mark.parametrize("scalar", [-1, 300, 2**70])
def test_true_division_by_any_python_int_divides_in_float32(dtype, scalar):
    """``uint8_t / -1`` or ``/ 2**70`` is no overflow: the division computes in float32."""
    array = np.array([0, 1, 3], dtype=dtype)
    y = Tensor(array) / scalar
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, array.astype(np.float32) / np.float32(scalar))
    back = scalar / Tensor(array[1:])
    np.testing.assert_allclose(back.data, np.float32(scalar) / array[1:].astype(np.float32))


@pytest.mark.parametrize(
    "expression",
    [
        lambda m: m - m,
        lambda m: m - True,
        lambda m: 1 - m,
        lambda m: Tensor([1.5, 2.5]) - m,
        lambda m: m**m,
        lambda m: m // m,
        lambda m: m % True,
    ],
)
def test_boolean_subtraction_and_integer_only_ops_on_two_booleans_are_refused(expression):
    mask = Tensor(np.array([True, False]))
    with pytest.raises(TypeError, match="boolean"):
        expression(mask)


def test_floating_functions_of_integer_tensors_are_float32():
    x = Tensor([1, 2, 4])
    for name in ("exp", "log", "sqrt", "sigmoid", "tanh", "sin", "log2", "rsqrt", "reciprocal"):
        result = getattr(x, name)()
        assert result.dtype == np.float32, name
        np.testing.assert_allclose(
            result.data, getattr(Tensor(x.data.astype(np.float32)), name)().data
        )
    assert x.softmax().dtype == np.float32 and x.mean().dtype == np.float32


def test_clipping_an_integer_tensor_at_a_float_bound_is_float32():
    x = Tensor([1, 2, 3])
    assert x.clip(0, 2).dtype == np.int64 and x.clamp(max=2).dtype == np.int64
    y = x.clip(1.5, 2.5)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [1.5, 2.0, 2.5])
    assert Tensor(np.array([1, 5], np.int32)).clip(0, 3).dtype == np.int32


def test_joining_tensors_promotes_like_pytorch():
    ints, floats = Tensor(np.arange(2)), Tensor(np.ones(2, dtype=np.float32))
    assert tg.cat([ints, floats]).dtype == np.float32
    assert tg.stack([ints, Tensor(np.array([True, False]))]).dtype == np.int64


def test_comparisons_give_masks_and_none_compares_unequal():
    x = Tensor([1, 2, 3])
    assert (x < 2.5).dtype == np.bool_ and (x == Tensor([1.0, 0.0, 3.0])).dtype == np.bool_
    np.testing.assert_array_equal((x >= 2).data, [False, True, True])
    assert (x == None) is False and (x != None) is True  # noqa: E711  (as in PyTorch)


def _scalar_rule(dtype: np.dtype, scalar) -> np.dtype:
    """A Python number beside a boolean or integer tensor, by the rules (not the tables)."""
    if isinstance(scalar, float):
        return np.dtype(np.float32)
    if dtype == np.bool_ and not isinstance(scalar, bool):
        return np.dtype(np.int64)
    return dtype


@given(
    integer_arrays(shapes(max_dims=2)),
    python_scalars(),
    st.sampled_from(["+", "*", "/", "//", "%", "**", "<", "=="]),
    st.booleans(),
)
def test_python_numbers_meeting_integer_tensors_follow_the_rules(array, scalar, name, reflected):
    """Values too: NumPy's result of the same maths computed in the promised dtype."""
    tensor, op = Tensor(array), OPERATORS[name]
    promoted = _scalar_rule(array.dtype, scalar)
    if promoted == np.bool_ and name in NO_TWO_BOOLS:
        with pytest.raises(TypeError, match="boolean"):
            op(scalar, tensor) if reflected else op(tensor, scalar)
        return
    compute = np.dtype(np.float32) if name == "/" and promoted.kind != "f" else promoted
    # a Python int beyond the dtype (-1 beside uint8) wraps around, as in PyTorch
    low, typed = array.astype(compute), np.asarray(scalar).astype(compute)
    divisor = low if reflected else typed
    if name in ("//", "%") and compute.kind in "biu" and not np.all(divisor):
        with pytest.raises(ZeroDivisionError):  # NumPy answers 0; PyTorch raises
            op(scalar, tensor) if reflected else op(tensor, scalar)
        return
    with np.errstate(all="ignore"):
        try:
            reference = np.asarray(op(typed, low) if reflected else op(low, typed))
        except (ValueError, ZeroDivisionError) as err:  # integers to negative powers
            with pytest.raises(type(err)):
                op(scalar, tensor) if reflected else op(tensor, scalar)
            return
        result = op(scalar, tensor) if reflected else op(tensor, scalar)
    assert result.dtype == (np.bool_ if name in COMPARISONS else compute)
    np.testing.assert_array_equal(result.data, reference)


# ---------------------------------------------------------------- gradients through promotion
def test_gradients_flow_through_promotion_casts_in_each_input_dtype():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    c = Tensor(np.float64(3.0), requires_grad=True)  # 0-d float64: the result stays float32
    n = Tensor(np.array([2, 5]))  # int64 with axes: cast to float32, a constant
    y = (x * c + n) / n
    assert y.dtype == np.float32
    gx, gc = tg.grad(y.sum(), [x, c])
    assert gx.dtype == np.float32 and gc.dtype == np.float64
    np.testing.assert_allclose(gx.data, [3 / 2, 3 / 5], rtol=1e-6)
    np.testing.assert_allclose(gc.data, 1 / 2 + 2 / 5, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(st.sampled_from(["+", "-", "*", "/", "**"]), st.booleans(), st.sampled_from([2, 0.5, -1.5]))
def test_python_numbers_keep_a_float_tensors_dtype_and_its_gradient(dtype, name, reflected, s):
    x = Tensor(np.array([0.5, 1.5, 2.0], dtype=dtype), requires_grad=True)
    op = OPERATORS[name]
    y = op(s, x) if reflected else op(x, s)
    (g,) = tg.grad(y.sum(), [x])
    assert y.dtype == dtype and g.dtype == dtype
    step, xd = 1e-6, x.data.astype(np.float64)
    f = (lambda v: op(s, v)) if reflected else (lambda v: op(v, s))
    with np.errstate(all="ignore"):
        numeric = (f(xd + step) - f(xd - step)) / (2 * step)
    finite = np.isfinite(numeric)
    np.testing.assert_allclose(g.data[finite], numeric[finite], rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------- against PyTorch itself
def _torch():
    return pytest.importorskip("torch")


def _torch_operand(torch, operand: tuple):
    return operand[1] if operand[0] == "scalar" else torch.from_numpy(_values(*operand))


def _apply_torch(torch, name: str, x, y):
    if name in ("maximum", "minimum"):
        if not isinstance(x, torch.Tensor):
            x, y = y, x
        if not isinstance(y, torch.Tensor):  # torch.maximum takes tensors only
            y = torch.tensor(y, dtype=torch.result_type(x, y))
        return getattr(torch, name)(x, y)
    if name == "where":
        return torch.where(torch.from_numpy(MASK), x, y)
    return OPERATORS[name](x, y)


def _torch_dtype_or_none(compute) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(compute().dtype).removeprefix("torch.")
    except (RuntimeError, NotImplementedError, TypeError):
        return None


def test_the_tables_are_pytorchs():
    torch = _torch()
    for (a, b), promoted in PROMOTE.items():
        assert str(torch.promote_types(getattr(torch, a), getattr(torch, b))) == f"torch.{promoted}"
    for x, y in PAIRS:
        tx, ty = _torch_operand(torch, x), _torch_operand(torch, y)
        assert str(torch.result_type(tx, ty)) == f"torch.{_table_dtype(x, y)}", (x, y)


#: PyTorch computes ``bool_t ** True`` through its shortcut for the exponents 0 and 1 (a bool
#: result) while refusing ``bool_t ** bool_t``; we refuse both (documented in tinygrad_edu.dtypes)
PYTORCH_SHORTCUT = {("**", "nd", True), ("**", "0d", True)}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_operator_on_every_pair_matches_pytorch(name):
    torch = _torch()
    for x, y in PAIRS:
        if name in ("maximum", "minimum") and "scalar" in (x[0], y[0]):
            continue
        tx, ty = _torch_operand(torch, x), _torch_operand(torch, y)
        theirs = _torch_dtype_or_none(lambda: _apply_torch(torch, name, tx, ty))  # noqa: B023
        if x[1] == "bool" and (name, x[0], y[1]) in PYTORCH_SHORTCUT:
            theirs = None
        assert expected(name, x, y) == theirs, (name, x, y)


SMALL_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")


@st.composite
def operands(draw):
    """A tensor (with axes or 0-d) of any of PyTorch's common dtypes, or a Python number."""
    kind = draw(st.sampled_from(["nd", "0d", "scalar"]))
    if kind == "scalar":
        return ("scalar", draw(st.sampled_from([True, False, 0, 3, -2, 0.5, -1.5])))
    return (kind, draw(st.sampled_from(SMALL_DTYPES)))


@settings(max_examples=300, deadline=None)
@given(operands(), operands(), operands(), st.sampled_from(["+", "*", "/", "maximum", "where"]))
def test_random_operand_mixes_promote_like_pytorch(x, y, z, name):
    """Any dtypes, ranks and numbers, chained ``(x op y) op z``: the dtype PyTorch gives."""
    torch = _torch()
    if x[0] == y[0] == "scalar":
        return

    def run(lib):
        make = (lambda o: _torch_operand(torch, o)) if lib == "torch" else _ours
        if lib == "torch":
            apply = lambda *a: _apply_torch(torch, name, *a)  # noqa: E731
        else:
            apply = lambda *a: _apply_ours(name, *a)  # noqa: E731
        first = apply(make(x), make(y))
        return apply(first, make(z))

    theirs = _torch_dtype_or_none(lambda: run("torch"))
    try:
        ours = str(run("ours").dtype)
    except TypeError:
        ours = None
    assert ours == theirs, (name, x, y, z)


def test_pytorch_constructors_and_ours_agree_on_default_dtypes():
    torch = _torch()
    for data in (1, 1.5, True, [1, 2], [1, 2.5], [[True, False]], [], np.float64(2.0)):
        assert str(Tensor(data).dtype) == str(torch.tensor(data).dtype).removeprefix("torch.")
    for args in ((5,), (0.5, 2), (1, 7, 2), (0, 1, 0.25)):
        assert str(tg.arange(*args).dtype) == str(torch.arange(*args).dtype).removeprefix("torch.")
    assert tg.full((2,), 3).dtype == np.int64 and tg.full((2,), True).dtype == np.bool_


#: functions of one tensor and their PyTorch spelling (the same unless given)
UNARY = {
    "sum": (lambda t: t.sum(), None),
    "sum(axis)": (lambda t: t.sum(axis=0), lambda t: t.sum(0)),
    "prod": (lambda t: t.prod(), None),
    "prod(axis)": (lambda t: t.prod(axis=-1), lambda t: t.prod(-1)),
    "cumsum": (lambda t: t.cumsum(0), None),
    "cumprod": (lambda t: t.cumprod(-1), None),
    "max": (lambda t: t.max(), None),
    "abs": (lambda t: t.abs(), None),
    "neg": (lambda t: -t, None),
    "exp": (lambda t: t.exp(), None),
    "sqrt": (lambda t: t.sqrt(), None),
    "sigmoid": (lambda t: t.sigmoid(), None),
    "tanh": (lambda t: t.tanh(), None),
    "relu": (lambda t: t.relu(), None),
    "square": (lambda t: t.square(), None),
    "sign": (lambda t: t.sign(), None),
    "floor": (lambda t: t.floor(), None),
    "round": (lambda t: t.round(), None),
    "norm": (lambda t: t.norm(), None),
    "logsumexp": (lambda t: t.logsumexp(0), None),
    "softmax": (lambda t: t.softmax(-1), None),
    "clip": (lambda t: t.clip(0, 1), lambda t: t.clamp(0, 1)),
    "* 2.5": (lambda t: t * 2.5, None),
    "+ 1": (lambda t: t + 1, None),
    "/ 2": (lambda t: t / 2, None),
    "** 2": (lambda t: t**2, None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_function_of_one_tensor_gives_pytorchs_dtype(name):
    """Reductions (NumPy sums uint8 in uint64, PyTorch in int64), elementwise functions and
    arithmetic with a number, on every dtype and rank: PyTorch's result dtype wherever PyTorch
    computes one (where it refuses, a clear refusal or a floating result is fine)."""
    torch = _torch()
    ours, theirs = UNARY[name]
    theirs = theirs or ours
    for dtype, shape in itertools.product(SMALL_DTYPES, [(2, 3), (3,)]):
        values = (np.arange(int(np.prod(shape))).reshape(shape) % 3).astype(dtype)
        expected = _torch_dtype_or_none(lambda: theirs(torch.from_numpy(values)))  # noqa: B023
        if expected is None:
            continue
        assert str(ours(Tensor(values)).dtype) == expected, (name, dtype, shape)


@settings(max_examples=60, deadline=None)
@given(
    integer_arrays((4,), ("int8", "uint8", "int32", "int64")),
    integer_arrays((4,), ("int8", "uint8", "int32", "int64")),
    st.sampled_from(["//", "%"]),
)
def test_integer_floor_division_and_remainder_refuse_a_zero_divisor(a, b, name):
    """NumPy answers 0 for an integer divided by 0; PyTorch raises, and so do we. Without a
    zero the result is Python's (floored, the remainder with the divisor's sign)."""
    op = OPERATORS[name]
    if not np.all(b):
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            op(Tensor(a), Tensor(b))
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            op(Tensor(a), 0)
        return
    got = op(Tensor(a), Tensor(b)).data
    assert got.tolist() == [op(int(x), int(y)) for x, y in zip(a, b)]
