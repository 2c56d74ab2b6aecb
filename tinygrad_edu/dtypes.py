r"""The dtype contract: which dtypes a Tensor holds and which dtype an operation's result gets.

Tensors hold **numbers**: ``bool``, signed and unsigned integers and floating point (NumPy
kinds ``b``, ``i``, ``u``, ``f``). Everything else -- object, str, bytes, structured (void),
datetime64 and timedelta64 -- is refused with ``TypeError`` wherever it could enter. Complex
numbers are refused too: the engine's derivative rules are written for real numbers (PyTorch
has complex autograd, with conjugate Wirtinger calculus this library does not teach).

Explicit ``dtype=`` arguments follow :func:`numpy.dtype`: ``np.float32``, ``"float32"``,
``np.dtype("f4")`` and the Python types ``float`` (float64), ``int`` (int64) and ``bool``.

**Type promotion** is PyTorch's (``torch.result_type``), which differs from NumPy's in three ways:

1. *Categories*: bool < integer < floating. A floating operand decides the result's floating
   dtype alone (``int64 + float32`` is float32; NumPy says float64).
2. *Tiers*: the operands of an operation fall into three tiers -- tensors with at least one axis,
   0-d tensors, and Python numbers (NumPy scalars count as Python numbers). A lower tier takes
   part only when its category is higher than every higher tier's: ``float32_t + 1.5`` stays
   float32, ``int32_t + 1`` stays int32, ``float32_t + float64_0d`` is float32, but
   ``int32_t + float64_0d`` is float64 and ``int32_t + 1.5`` is float32.
3. *Python numbers are weak*: ``bool`` is bool, ``int`` is int64, ``float`` is the default
   float32, whatever NumPy would make of them.

True division (``/``) of integers or booleans gives float32; ``-`` with a boolean operand and
``**``, ``//``, ``%`` of two booleans are refused (as in PyTorch, which also refuses ``bool_t **
bool_t`` but, by a shortcut for the exponents 0 and 1, computes ``bool_t ** True``; here that is
refused too); comparisons give bool.

:func:`operands` is the hot path every binary operator runs: it returns its two operands as
Tensors of the promoted dtype, casting one only where NumPy alone would compute in another
dtype (a floating cast stays differentiable).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_FLOAT",
    "DEFAULT_INT",
    "NUMERIC_KINDS",
    "arrays",
    "as_dtype",
    "cast",
    "check_array",
    "check_dtype",
    "floating",
    "operands",
    "pair",
    "promote_all",
    "promote_types",
    "python_dtype",
    "result_type",
]

#: the dtype of Python floats and of floating results from integers (``torch.get_default_dtype``)
DEFAULT_FLOAT = np.dtype(np.float32)
#: the dtype of Python ints
DEFAULT_INT = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
#: the NumPy dtype kinds a Tensor may hold: bool, signed and unsigned integer, floating point
NUMERIC_KINDS = "biuf"

_KIND_NAMES = {
    "O": "object",
    "U": "str",
    "S": "bytes",
    "V": "structured (void)",
    "M": "datetime64",
    "m": "timedelta64",
    "c": "complex",
}
_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}
#: ops that PyTorch refuses on two booleans
_NO_BOOL = frozenset({"pow", "floor_divide", "remainder"})


# ------------------------------------------------------------------------------- the contract
def check_dtype(dtype: np.dtype, where: str = "Tensor") -> np.dtype:
    """``dtype`` itself if a Tensor may hold it, else ``TypeError`` naming it and ``where``."""
    if dtype.kind not in NUMERIC_KINDS:
        kind = _KIND_NAMES.get(dtype.kind, "non-numeric")
        hint = (
            " (complex numbers are not supported: the derivative rules are real)"
            if dtype.kind == "c"
            else ""
        )
        raise TypeError(
            f"{where}: dtype {dtype} is {kind}; tensors hold bool, integer or floating-point "
            f"numbers{hint}"
        )
    return dtype


def as_dtype(dtype: Any, where: str = "Tensor") -> np.dtype:
    """An explicit ``dtype=`` argument as a numeric ``numpy.dtype`` (:func:`numpy.dtype`'s
    spellings: ``np.float32``, ``"float32"``, ``float`` = float64, ``int`` = int64, ``bool``)."""
    if dtype is None:
        raise TypeError(f"{where}: dtype must be a numeric dtype, got None")
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: {dtype!r} is not a dtype ({err})") from None
    return check_dtype(resolved, where)


def check_array(array: np.ndarray, where: str = "Tensor") -> np.ndarray:
    """``array`` itself if a Tensor may hold its dtype (:func:`check_dtype`)."""
    check_dtype(array.dtype, where)
    return array


def python_dtype(value: Any) -> np.dtype | None:
    """The dtype PyTorch gives a Python (or NumPy) number in an operation -- bool, int64 or
    the default float32 -- or ``None`` if ``value`` is not a real number."""
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, (int, np.integer)):
        return DEFAULT_INT
    if isinstance(value, (float, np.floating)):
        return DEFAULT_FLOAT
    return None


# ------------------------------------------------------------------------------- promotion
def promote_types(a: Any, b: Any) -> np.dtype:
    """``torch.promote_types``: the smallest dtype both fit in, where a floating dtype beats
    any integer or bool (``int64, float32 -> float32``; NumPy says float64)."""
    return _promote(as_dtype(a, "promote_types"), as_dtype(b, "promote_types"))


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """:func:`promote_types` of two numeric ``numpy.dtype`` objects."""
    if a == b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    promoted = np.promote_types(a, b)
    if _CATEGORY.get(promoted.kind) != ca:
        raise TypeError(
            f"no {'integer' if ca == 1 else 'common'} dtype holds both {a} and {b} "
            "(PyTorch refuses this promotion too); convert one with .astype()"
        )
    return promoted


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """PyTorch's rule for a lower tier (0-d tensors, then Python numbers): it counts only when
    its category is higher than the higher tier's."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return _promote(higher, lower)
    return higher


def _tier_dtypes(operands: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """The promoted dtype of each tier: n-d tensors, 0-d tensors, Python numbers."""
    tiers: list[np.dtype | None] = [None, None, None]
    for x in operands:
        scalar = python_dtype(x)
        if scalar is not None:
            tier, dtype = 2, scalar
        else:
            array = x.data if isinstance(x, Tensor) else x
            if not isinstance(array, np.ndarray):
                raise TypeError(f"cannot promote a {type(x).__name__} (not a number or tensor)")
            tier, dtype = (0 if array.ndim else 1), check_dtype(array.dtype)
        current = tiers[tier]
        tiers[tier] = dtype if current is None else _promote(current, dtype)
    return tiers[0], tiers[1], tiers[2]


def promote_all(dtypes: list[np.dtype]) -> np.dtype:
    """:func:`promote_types` of several dtypes (``torch.cat``'s result dtype)."""
    result = check_dtype(dtypes[0])
    for dtype in dtypes[1:]:
        result = _promote(result, check_dtype(dtype))
    return result


def result_type(*operands: Any) -> np.dtype:
    """``torch.result_type`` of Tensors, arrays and Python or NumPy numbers (see the module)."""
    if not operands:
        raise TypeError("result_type needs at least one operand")
    dimensioned, zero_dim, numbers = _tier_dtypes(operands)
    result = _combine(dimensioned, _combine(zero_dim, numbers))
    assert result is not None
    return result


def _op_dtype(op: str, dtype: np.dtype, a: Tensor, b: Any) -> np.dtype:
    """The dtype ``op`` computes in, given the promoted dtype of its operands ``a`` and ``b``."""
    if op == "div" and dtype.kind != "f":
        return DEFAULT_FLOAT  # int / int and bool / bool: float32, as in PyTorch
    if op == "sub" and BOOL in (a.data.dtype, _dtype_of(b)):
        raise TypeError(
            "subtraction with a boolean operand is not supported (as in PyTorch); use ^ or "
            "logical_xor() for masks, or convert with .astype(np.int64)"
        )
    if dtype.kind == "b" and op in _NO_BOOL:
        raise TypeError(
            f"{op} of two boolean operands is not supported (as in PyTorch); convert one "
            "with .astype(np.int64) or .astype(np.float32)"
        )
    return dtype


def _dtype_of(x: Any) -> np.dtype | None:
    return x.data.dtype if isinstance(x, Tensor) else python_dtype(x)


# ------------------------------------------------------------------------------- on Tensors
def operands(a: Tensor, b: Any, op: str) -> tuple[Tensor, Tensor]:
    """``(a, b)`` as Tensors of the dtype the binary ``op`` computes in (PyTorch's promotion).

    ``op`` names the operation: ``"div"`` (true division) gives a floating result, ``"sub"``,
    ``"pow"``, ``"floor_divide"`` and ``"remainder"`` refuse two booleans; other names only
    promote. ``b`` may be a Tensor, a Python or NumPy number, or array-like data (made a Tensor
    by the constructor's rules). Operands are cast only where NumPy would compute in another
    dtype, so the common cases -- two tensors of one floating dtype, a floating tensor and a
    Python number -- cost no more than wrapping the number.
    """
    da = a.data.dtype
    if isinstance(b, Tensor):
        if b.data.dtype is da and da.kind == "f":
            return a, b
    elif b.__class__ is float or b.__class__ is int:
        kind = da.kind
        if kind == "f":
            return a, Tensor._wrap(np.asarray(b, da))
        if b.__class__ is int and kind in "iu" and op != "div":
            return a, Tensor._wrap(_number_array(b, da))
    elif python_dtype(b) is None:
        b = Tensor(b)
    return _promoted(a, b, op)


def _promoted(a: Tensor, b: Any, op: str) -> tuple[Tensor, Tensor]:
    """The general case of :func:`operands`; ``b`` is a Tensor or a number."""
    dtype = _op_dtype(op, result_type(a, b), a, b)
    if not isinstance(b, Tensor):
        return cast(a, dtype), Tensor._wrap(_number_array(b, dtype))
    if np.result_type(a.data.dtype, b.data.dtype) == dtype:
        return a, b  # NumPy computes in the promoted dtype by itself
    return cast(a, dtype), cast(b, dtype)


def cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` in ``dtype``; between floating dtypes the gradient flows through the cast (a
    tensor that requires grad is floating, and promotion never casts it to a lower category)."""
    if t.data.dtype == dtype:
        return t
    if t.requires_grad:
        return t.astype(dtype)
    return Tensor._wrap(t.data.astype(dtype))


def _number_array(value: Any, dtype: np.dtype) -> np.ndarray:
    """A Python number as a 0-d array of ``dtype``; an integer outside an integer dtype's range
    wraps around (two's complement), as it does in PyTorch."""
    try:
        return np.asarray(value, dtype=dtype)
    except OverflowError:
        if not -(2**63) <= value < 2**63:
            raise OverflowError(f"the Python int {value} does not fit in int64") from None
        return np.asarray(value, dtype=np.int64).astype(dtype)


def arrays(a: Tensor, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of ``a`` and ``b`` in their promoted dtype, for a comparison (no graph)."""
    da = a.data.dtype
    if isinstance(b, Tensor):
        if b.data.dtype is da:
            return a.data, b.data
    elif b.__class__ in _PYTHON_NUMBERS and da.kind == "f":
        return a.data, np.asarray(b, da)
    elif python_dtype(b) is None:
        b = Tensor(b)
    dtype = result_type(a, b)
    if not isinstance(b, Tensor):
        return a.data.astype(dtype, copy=False), _number_array(b, dtype)
    return a.data.astype(dtype, copy=False), b.data.astype(dtype, copy=False)


def pair(x: Any, y: Any, op: str) -> tuple[Tensor, Tensor]:
    """:func:`operands` when either or neither of ``x`` and ``y`` is a Tensor (``where``)."""
    if isinstance(x, Tensor):
        return operands(x, y, op)
    if isinstance(y, Tensor):
        b, a = operands(y, x, op)
        return a, b
    return operands(Tensor(x), y, op)


def floating(t: Tensor) -> Tensor:
    """``t`` itself if it is floating, else a float32 copy: the input of a floating function
    (``exp``, ``sqrt``, ``sin`` ... of an integer tensor give float32, as in PyTorch)."""
    if t.data.dtype.kind == "f":
        return t
    return Tensor._wrap(t.data.astype(DEFAULT_FLOAT))


#: the Python numbers of the fast paths (a bool takes the general one: ``x - True`` is refused)
_PYTHON_NUMBERS = (float, int)

# The Tensor class is defined before this module is imported (tensor.py imports it at its end).
from .tensor import Tensor  # noqa: E402
