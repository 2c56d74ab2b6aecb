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

This module knows dtypes only, never the Tensor class: :mod:`tinygrad_edu.tensor` applies these
rules to its operands (``operands``, the hot path of every binary operator).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_FLOAT",
    "DEFAULT_INT",
    "NUMERIC_KINDS",
    "as_dtype",
    "check_array",
    "check_dtype",
    "number_array",
    "operation_dtype",
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
            array = x if isinstance(x, np.ndarray) else getattr(x, "data", None)  # a Tensor's
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


def operation_dtype(op: str, dtype: np.dtype, a: Any, b: Any) -> np.dtype:
    """The dtype the binary ``op`` computes in, given the promoted dtype of its operands ``a``
    (a Tensor or array) and ``b``: ``"div"`` (true division) gives a floating result, ``"sub"``
    refuses a boolean operand, ``"pow"``, ``"floor_divide"`` and ``"remainder"`` two booleans;
    other names only promote."""
    if op == "div" and dtype.kind != "f":
        return DEFAULT_FLOAT  # int / int and bool / bool: float32, as in PyTorch
    if op == "sub" and BOOL in (a.dtype, _dtype_of(b)):
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
    dtype = python_dtype(x)
    return x.dtype if dtype is None else dtype


def number_array(value: Any, dtype: np.dtype) -> np.ndarray:
    """A Python number as a 0-d array of ``dtype``; an integer outside an integer dtype's range
    wraps around (two's complement), as it does in PyTorch."""
    try:
        return np.asarray(value, dtype=dtype)
    except OverflowError:
        if not -(2**63) <= value < 2**63:
            raise OverflowError(f"the Python int {value} does not fit in int64") from None
        return np.asarray(value, dtype=np.int64).astype(dtype)
