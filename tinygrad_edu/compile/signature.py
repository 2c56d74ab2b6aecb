"""What a program is specialised to: the call's signature, and values compared exactly.

A JIT keeps one program per *signature*. Here it is made of, per argument:

* a Tensor: its shape, dtype, ``requires_grad`` and whether it is a leaf;
* a NumPy array: its shape and dtype;
* anything else: a *static* value, part of the key by value (:func:`hashable`), so
  ``step(x, 2)`` and ``step(x, 3)`` get programs of their own;

and which arguments are the same object. Static values must compare exactly: ``1``, ``1.0``
and ``True`` are different keys, ``-0.0`` is not ``0.0``, NaN equals NaN. An object that counts
by identity and may change its attributes unseen (:func:`opaque`) cannot be a key at all.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor


def array_of(arg: Tensor | np.ndarray) -> np.ndarray:
    """The array an array argument holds: a Tensor's data, or the array itself."""
    return arg.data if isinstance(arg, Tensor) else arg


def signature(args: Sequence[Any]) -> Hashable:
    """What a program is specialised to: array shapes/dtypes, static values, argument aliasing."""
    parts: list[Hashable] = []
    for position, arg in enumerate(args):
        if isinstance(arg, Tensor):  # a result of ops outside the step is no leaf: eager
            parts.append((arg.shape, arg.dtype, arg.requires_grad, arg._node is None))
        elif isinstance(arg, np.ndarray):
            parts.append((arg.shape, arg.dtype, None))
        else:
            static = hashable(arg) if isinstance(arg, (slice, tuple)) or is_hashable(arg) else None
            if static is None:
                raise TypeError(
                    f"compile: argument {position} is a {type(arg).__name__}, which is neither a "
                    "Tensor nor an array and cannot be hashed as a static value"
                )
            parts.append(("static", static))
    ids = [id(a) for a in args]
    return tuple(parts), tuple(ids.index(i) for i in ids)


def is_hashable(value: Any) -> bool:
    """Whether ``hash(value)`` works."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


#: objects that count by identity and hold nothing a step reads as a value that could change
#: unseen (a module's attributes are guarded; a function's closure is like the step's own)
_INERT = (
    type(None),
    type(...),
    enum.Enum,
    type,
    Module,
    types.FunctionType,
    types.BuiltinFunctionType,
    np.ufunc,
    types.ModuleType,
)


def opaque(value: Any) -> bool:
    """Whether a static argument is (or holds) an object compared by identity whose attributes
    may change between calls (``cfg.scale = 5``): its hash cannot tell, nor can a guard."""
    if isinstance(value, types.MethodType):  # equal by its object's identity
        return opaque(value.__self__)
    if isinstance(value, (tuple, list, frozenset)):
        return any(map(opaque, value))
    if isinstance(value, dict):
        return any(map(opaque, value.values()))
    return type(value).__eq__ is object.__eq__ and not isinstance(value, _INERT)


def hashable(value: Any) -> Hashable | None:
    """``value`` as a hashable key that equals another's exactly when the values are the same
    (type included: ``1``, ``1.0`` and ``True`` differ); ``None`` if it cannot be told.

    Slices (unhashable before Python 3.12) count by ``(start, stop, step)``, arrays by dtype,
    shape and bytes, tuples, lists and dicts by their items.
    """
    if value is None or isinstance(value, (str, bytes, type, np.dtype)):
        return type(value), value
    if isinstance(value, (bool, int, float, complex, np.generic)):
        return type(value), value, np.asarray(value).tobytes()  # -0.0 is not 0.0, nan is nan
    if isinstance(value, slice):
        parts = tuple(hashable(v) for v in (value.start, value.stop, value.step))
        return None if None in parts else ("slice", parts)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return None
        return "array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes()
    if isinstance(value, (tuple, list, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, frozenset) else value
        parts = tuple(hashable(v) for v in items)
        return None if None in parts else (type(value), parts)
    if isinstance(value, dict):
        parts = tuple((hashable(k), hashable(v)) for k, v in value.items())
        return None if any(None in p for p in parts) else (dict, parts)
    if not is_hashable(value):
        return None
    return type(value), "object", value  # hashable objects count by their own equality


def equal_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, same shape, same values (NaN equal to NaN)."""
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
