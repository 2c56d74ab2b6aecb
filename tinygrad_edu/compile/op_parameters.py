"""An op's parameters by value: what makes two applications of an op the same computation.

An :class:`~tinygrad_edu.graph.Op` instance keeps, beside its graph links, the parameters it
was built with (axes, a shape, a slice, where's condition) and whatever its ``forward`` saved
for the VJP. Compile reads them three ways:

* two recordings ran the same program only if their ops have equal parameters
  (:func:`parameters`, with array parameters replaced by their :func:`layout`);
* a forward op *given* an array parameter (:func:`given`, :func:`has_array`) may hold a mask or
  an index computed from data, which a tape would freeze;
* an op applied again with the same parameters to the same inputs computes the same array
  (common-subexpression elimination).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from ..graph import Op

#: an op's graph links and bookkeeping, which are not parameters of its computation
_GRAPH_FIELDS = frozenset(
    {
        "inputs",
        "_needs_input_grad",
        "sequence",
        "created_at",
        "saved_versions",
        "saved_output_version",
    }
)


def parameters(op: Op, arrays: Callable[[np.ndarray], Hashable] | None = None) -> list:
    """An op's own parameters (axes, shapes, index, condition ...), without its graph links;
    with ``arrays``, each array parameter is replaced by ``arrays(array)``."""
    found = [(n, v) for n, v in sorted(vars(op).items()) if n not in _GRAPH_FIELDS]
    return found if arrays is None else _replace_arrays(found, arrays)


def given(op: Op) -> list:
    """The parameters ``op`` was constructed with (``Op.apply``'s keywords: a condition, an
    index ...), not what its ``forward`` keeps for its VJP (recomputed on every replay)."""
    names = _constructor_names(type(op))
    return [(n, v) for n, v in parameters(op) if names is None or n in names]


@functools.cache
def _constructor_names(op_type: type[Op]) -> frozenset[str] | None:
    """The keyword names of an op's constructor; ``None`` (every attribute) if unreadable."""
    try:
        return frozenset(inspect.signature(op_type.__init__).parameters)
    except (TypeError, ValueError):
        return None


def _replace_arrays(value: Any, replace: Callable[[np.ndarray], Hashable]) -> Any:
    if isinstance(value, np.ndarray):
        return replace(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_replace_arrays(v, replace) for v in value)
    if isinstance(value, dict):
        return {k: _replace_arrays(v, replace) for k, v in value.items()}
    return value


def layout(array: np.ndarray) -> Hashable:
    """An array parameter of a backward op (``like``: whose memory order a gradient takes)
    counts by its layout: forward ops with array parameters never reach a program."""
    return "array", array.dtype.str, array.shape, array.flags.c_contiguous, array.flags.f_contiguous


def has_array(value: Any) -> bool:
    """Whether ``value`` is, or holds in a tuple, list or dict, a NumPy array."""
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, (tuple, list)):
        return any(has_array(v) for v in value)
    if isinstance(value, dict):
        return any(has_array(v) for v in value.values())
    return False
