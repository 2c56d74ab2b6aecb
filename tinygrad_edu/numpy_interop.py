"""NumPy's protocols on Tensors: ``np.exp(t)``, ``ndarray * t`` and ``np.sum(t)`` keep the graph.

NumPy hands a ufunc call with a Tensor operand to :meth:`Tensor.__array_ufunc__` and a function
call (``np.sum``, ``np.stack``, ...) to :meth:`Tensor.__array_function__`; both land here. Calls
with a Tensor method of the same meaning run that method, so they are differentiable. Anything
else is computed on the plain arrays -- which is harmless when no operand needs a gradient or
the result is boolean/integer (``np.isnan``, ``np.allclose``), and raises ``TypeError``
otherwise, because returning an ndarray would silently cut the graph -- or, inside ``jvp``,
``jacfwd`` or ``hessian``, drop the forward-mode tangent (the same error in both modes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import dtypes
from .forward import carries_tangent
from .tensor import Tensor, where

#: ufunc name -> Tensor method
UFUNC_METHODS = {
    "add": "__add__",
    "subtract": "__sub__",
    "multiply": "__mul__",
    "divide": "__truediv__",
    "true_divide": "__truediv__",
    "power": "__pow__",
    "matmul": "__matmul__",
    "negative": "__neg__",
    "positive": "__pos__",
    "absolute": "abs",
    "rint": "round",
    "less": "__lt__",
    "less_equal": "__le__",
    "greater": "__gt__",
    "greater_equal": "__ge__",
    "equal": "__eq__",
    "not_equal": "__ne__",
}

#: Tensor method -> the method of the other operand that computes the same thing
REFLECTED = {
    "__add__": "__radd__",
    "__sub__": "__rsub__",
    "__mul__": "__rmul__",
    "__truediv__": "__rtruediv__",
    "__pow__": "__rpow__",
    "__matmul__": "__rmatmul__",
    "__lt__": "__gt__",
    "__le__": "__ge__",
    "__gt__": "__lt__",
    "__ge__": "__le__",
    "__eq__": "__eq__",
    "__ne__": "__ne__",
}


def _reduction(method: str) -> Callable[..., Tensor]:
    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False):
        if dtype is not None or out is not None:
            raise TypeError(f"np.{method} on a Tensor supports axis and keepdims only")
        return getattr(_as_tensor(a), method)(axis=axis, keepdims=bool(keepdims))

    return call


def _spread(method: str) -> Callable[..., Tensor]:
    """``np.var``/``np.std``: NumPy's ``ddof`` is PyTorch's ``correction`` (NumPy's default 0)."""

    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
             keepdims: Any = False) -> Tensor:  # fmt: skip
        if dtype is not None or out is not None:
            raise TypeError(f"np.{method} on a Tensor supports axis, ddof and keepdims only")
        return getattr(_as_tensor(a), method)(axis, correction=ddof, keepdims=bool(keepdims))

    return call


def _scan(method: str) -> Callable[..., Tensor]:
    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tensor:
        if dtype is not None or out is not None:
            raise TypeError(f"np.{method} on a Tensor supports axis only")
        t = _as_tensor(a)
        return getattr(t if axis is not None else t.reshape(-1), method)(
            0 if axis is None else axis
        )

    return call


def _norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tensor:
    t = _as_tensor(x)
    if ord is not None and ((t.ndim > 1 and axis is None) or isinstance(axis, tuple)):
        raise TypeError("np.linalg.norm on a Tensor computes vector norms only")
    return t.norm(2 if ord is None else ord, axis=axis, keepdims=keepdims)


#: NumPy function -> implementation on Tensors
FUNCTIONS: dict[Callable, Callable[..., Tensor]] = {
    np.sum: _reduction("sum"),
    np.mean: _reduction("mean"),
    np.max: _reduction("max"),
    np.amax: _reduction("max"),
    np.reshape: lambda a, shape, **kw: _as_tensor(a).reshape(shape),
    np.transpose: lambda a, axes=None: _as_tensor(a).transpose(*(axes or ())),
    np.stack: lambda arrays, axis=0: Tensor.stack(arrays, axis=axis),
    np.concatenate: lambda arrays, axis=0: Tensor.concatenate(arrays, axis=axis),
    np.clip: lambda a, a_min=None, a_max=None: _as_tensor(a).clip(a_min, a_max),
    np.min: _reduction("min"),
    np.amin: _reduction("min"),
    np.prod: _reduction("prod"),
    np.var: _spread("var"),
    np.std: _spread("std"),
    np.cumsum: _scan("cumsum"),
    np.cumprod: _scan("cumprod"),
    np.linalg.norm: _norm,
    np.where: lambda condition, x, y: where(condition, x, y),
    np.flip: lambda m, axis=None: _as_tensor(m).flip(axis),
    np.roll: lambda a, shift, axis=None: _as_tensor(a).roll(shift, axis),
    np.moveaxis: lambda a, source, destination: _as_tensor(a).moveaxis(source, destination),
    np.squeeze: lambda a, axis=None: _as_tensor(a).squeeze(axis),
    np.expand_dims: lambda a, axis: _as_tensor(a).unsqueeze(axis),
    np.broadcast_to: lambda array, shape: _as_tensor(array).broadcast_to(tuple(shape)),
    np.tile: lambda a, reps: _as_tensor(a).tile(reps),
    np.repeat: lambda a, repeats, axis=None: _as_tensor(a).repeat_interleave(repeats, axis),
    np.diagonal: lambda a, offset=0, axis1=0, axis2=1: _as_tensor(a).diagonal(offset, axis1, axis2),
    np.tril: lambda m, k=0: _as_tensor(m).tril(k),
    np.triu: lambda m, k=0: _as_tensor(m).triu(k),
    np.einsum: Tensor.einsum,
    np.tensordot: lambda a, b, axes=2: Tensor.tensordot(_as_tensor(a), _as_tensor(b), axes),
    np.hstack: lambda tup: Tensor.hstack(tup),
    np.vstack: lambda tup: Tensor.vstack(tup),
}


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(value)


def _plain(value: Any) -> Any:
    """Tensors as read-only views of their arrays: a NumPy call that would write into one
    (``np.copyto``, ``np.put``, ``np.fill_diagonal`` ...) fails instead of changing it unseen."""
    if isinstance(value, Tensor):
        view = value.data.view()
        view.flags.writeable = False
        return view
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _needs_grad(values: Any) -> bool:
    if isinstance(values, Tensor):
        return values.requires_grad
    if isinstance(values, (list, tuple)):
        return any(_needs_grad(v) for v in values)
    if isinstance(values, dict):
        return any(_needs_grad(v) for v in values.values())
    return False


def _dropped(operands: Any) -> str | None:
    """What computing on the plain arrays of ``operands`` would drop: a graph (reverse mode), a
    tangent (forward mode: ``jvp``, ``jacfwd``, ``hessian``), or nothing (``None``)."""
    if _needs_grad(operands):
        return "the graph of a tensor that requires grad"
    if carries_tangent(operands):
        return "the forward-mode tangent of a tensor inside jvp/jacfwd/hessian"
    return None


def _on_plain_arrays(name: str, compute: Callable[[], Any], operands: Any) -> Any:
    dropped = _dropped(operands)
    try:
        result = compute()
    except ValueError as err:
        if "read-only" not in str(err):
            raise
        raise TypeError(
            f"np.{name} writes into a Tensor's array in place, unseen by the graph (a recorded "
            "op may have saved it); use Tensor operations (t.copy_(...) to overwrite it "
            "whole), or apply it to a copy (t.numpy().copy())"
        ) from err
    if dropped and np.asarray(result).dtype.kind in "fc":
        raise TypeError(
            f"np.{name} has no differentiable version in tinygrad_edu and would drop {dropped}; "
            "use the Tensor method, or pass t.detach() / t.data if you want plain values"
        )
    return result


def ufunc(fn: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``fn(*inputs)`` for :meth:`Tensor.__array_ufunc__`."""
    name = UFUNC_METHODS.get(fn.__name__, fn.__name__)
    if method == "__call__" and not kwargs and hasattr(Tensor, name):
        first, *rest = inputs
        if len(rest) == 1 and name in REFLECTED and not isinstance(first, Tensor):
            # ``np.float64(2) * t`` is ``t.__rmul__(np.float64(2))``: a NumPy scalar stays a
            # weak number in the promotion, as in PyTorch
            return getattr(rest[0], REFLECTED[name])(first)
        return getattr(_as_tensor(first), name)(*rest)
    if "out" in kwargs:
        raise TypeError(f"np.{fn.__name__}(..., out=...) cannot write into a Tensor")
    if method == "at":  # in place: the graph's saved values would change unseen
        raise TypeError(
            f"np.{fn.__name__}.at cannot write into a Tensor in place (a recorded op may have "
            "saved its values); use Tensor ops such as scatter_add, or apply it to t.data"
        )
    plain = [_plain(x) for x in inputs]
    result = _on_plain_arrays(
        fn.__name__, lambda: getattr(fn, method)(*plain, **kwargs), (inputs, kwargs)
    )
    if isinstance(result, np.ndarray):
        return Tensor._wrap(dtypes.check_array(result, f"np.{fn.__name__}"))
    return result


def function(fn: Callable, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` for :meth:`Tensor.__array_function__`."""
    implementation = FUNCTIONS.get(fn)
    if implementation is not None:
        return implementation(*args, **kwargs)
    plain_args, plain_kwargs = _plain(args), {k: _plain(v) for k, v in kwargs.items()}
    return _on_plain_arrays(fn.__name__, lambda: fn(*plain_args, **plain_kwargs), (args, kwargs))
