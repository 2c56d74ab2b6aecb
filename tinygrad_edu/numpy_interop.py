"""NumPy's protocols on Tensors: ``np.exp(t)``, ``ndarray * t`` and ``np.sum(t)`` keep the graph.

NumPy hands a ufunc call with a Tensor operand to :meth:`Tensor.__array_ufunc__` and a function
call (``np.sum``, ``np.stack``, ...) to :meth:`Tensor.__array_function__`; the Tensor inherits
both from :class:`NumpyProtocols`. Calls
with a Tensor method of the same meaning run that method, so they are differentiable. Anything
else is computed on the plain arrays -- which is harmless when no operand needs a gradient or
the result is boolean/integer (``np.isnan``, ``np.allclose``), and raises ``TypeError``
otherwise, because returning an ndarray would silently cut the graph -- or, inside ``jvp``,
``jacfwd`` or ``hessian``, drop the forward-mode tangent (the same error in both modes).

This module imports neither the Tensor class nor the engine: the Tensor a call starts from gives
its class (``type(self)``) and says whether an observer keeps something for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from . import dtypes


class NumpyProtocols:
    """NumPy's two dispatch protocols, for the Tensor class (see the module)."""

    __slots__ = ()

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy ufuncs on Tensors: ``np.exp(t)`` and ``ndarray * t`` run our differentiable ops.

        A ufunc the op table does not have computes on plain arrays when nothing needs a
        gradient (or its result is boolean/integer, like ``np.isnan``); otherwise it raises
        instead of silently dropping the graph.
        """
        tensor = type(self)
        name = UFUNC_METHODS.get(ufunc.__name__, ufunc.__name__)
        if method == "__call__" and not kwargs and hasattr(tensor, name):
            first, *rest = inputs
            if len(rest) == 1 and name in REFLECTED and not isinstance(first, tensor):
                # ``np.float64(2) * t`` is ``t.__rmul__(np.float64(2))``: a NumPy scalar stays a
                # weak number in the promotion, as in PyTorch
                return getattr(rest[0], REFLECTED[name])(first)
            return getattr(_as_tensor(tensor, first), name)(*rest)
        if "out" in kwargs:
            raise TypeError(f"np.{ufunc.__name__}(..., out=...) cannot write into a Tensor")
        if method == "at":  # in place: the graph's saved values would change unseen
            raise TypeError(
                f"np.{ufunc.__name__}.at cannot write into a Tensor in place (a recorded op may "
                "have saved its values); use Tensor ops such as scatter_add, or apply it to t.data"
            )
        plain = [_plain(tensor, x) for x in inputs]
        compute = functools.partial(getattr(ufunc, method), *plain, **kwargs)
        result = _on_plain_arrays(tensor, ufunc.__name__, compute, (inputs, kwargs))
        if isinstance(result, np.ndarray):
            return tensor._wrap(dtypes.check_array(result, f"np.{ufunc.__name__}"))
        return result

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """NumPy functions on Tensors: ``np.sum(t)``, ``np.mean``, ``np.stack`` ... dispatch to
        the Tensor methods; others compute on plain arrays unless that would drop a graph."""
        tensor = type(self)
        implementation = FUNCTIONS.get(func)
        if implementation is not None:
            return implementation(tensor, *args, **kwargs)
        plain_args = _plain(tensor, args)
        plain_kwargs = {k: _plain(tensor, v) for k, v in kwargs.items()}
        return _on_plain_arrays(
            tensor, func.__name__, lambda: func(*plain_args, **plain_kwargs), (args, kwargs)
        )


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


def _reduction(method: str) -> Callable[..., Any]:
    def call(tensor: type, a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
             keepdims: Any = False) -> Any:  # fmt: skip
        if dtype is not None or out is not None:
            raise TypeError(f"np.{method} on a Tensor supports axis and keepdims only")
        return getattr(_as_tensor(tensor, a), method)(axis=axis, keepdims=bool(keepdims))

    return call


def _spread(method: str) -> Callable[..., Any]:
    """``np.var``/``np.std``: NumPy's ``ddof`` is PyTorch's ``correction`` (NumPy's default 0)."""

    def call(tensor: type, a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
             ddof: Any = 0, keepdims: Any = False) -> Any:  # fmt: skip
        if dtype is not None or out is not None:
            raise TypeError(f"np.{method} on a Tensor supports axis, ddof and keepdims only")
        t = _as_tensor(tensor, a)
        return getattr(t, method)(axis, correction=ddof, keepdims=bool(keepdims))

    return call


def _scan(method: str) -> Callable[..., Any]:
    def call(tensor: type, a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
        if dtype is not None or out is not None:
            raise TypeError(f"np.{method} on a Tensor supports axis only")
        t = _as_tensor(tensor, a)
        return getattr(t if axis is not None else t.reshape(-1), method)(
            0 if axis is None else axis
        )

    return call


def _norm(tensor: type, x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    t = _as_tensor(tensor, x)
    if ord is not None and ((t.ndim > 1 and axis is None) or isinstance(axis, tuple)):
        raise TypeError("np.linalg.norm on a Tensor computes vector norms only")
    return t.norm(2 if ord is None else ord, axis=axis, keepdims=keepdims)


def _where(tensor: type, condition: Any, x: Any, y: Any) -> Any:
    """``np.where``: :meth:`Tensor.where` of ``x``, or -- when only ``y`` is a Tensor -- of ``y``
    with the condition negated (the same values and gradients, and the same promotion)."""
    if isinstance(x, tensor) or not isinstance(y, tensor):
        return _as_tensor(tensor, x).where(condition, y)
    mask = condition.data if isinstance(condition, tensor) else np.asarray(condition)
    return y.where(~mask.astype(bool), x)


#: NumPy function -> its implementation on Tensors, called with the Tensor class first
FUNCTIONS: dict[Callable, Callable[..., Any]] = {
    np.sum: _reduction("sum"),
    np.mean: _reduction("mean"),
    np.max: _reduction("max"),
    np.amax: _reduction("max"),
    np.reshape: lambda tensor, a, shape, **kw: _as_tensor(tensor, a).reshape(shape),
    np.transpose: lambda tensor, a, axes=None: _as_tensor(tensor, a).transpose(*(axes or ())),
    np.stack: lambda tensor, arrays, axis=0: tensor.stack(arrays, axis=axis),
    np.concatenate: lambda tensor, arrays, axis=0: tensor.concatenate(arrays, axis=axis),
    np.clip: lambda tensor, a, a_min=None, a_max=None: _as_tensor(tensor, a).clip(a_min, a_max),
    np.min: _reduction("min"),
    np.amin: _reduction("min"),
    np.prod: _reduction("prod"),
    np.var: _spread("var"),
    np.std: _spread("std"),
    np.cumsum: _scan("cumsum"),
    np.cumprod: _scan("cumprod"),
    np.linalg.norm: _norm,
    np.where: _where,
    np.flip: lambda tensor, m, axis=None: _as_tensor(tensor, m).flip(axis),
    np.roll: lambda tensor, a, shift, axis=None: _as_tensor(tensor, a).roll(shift, axis),
    np.moveaxis: lambda tensor, a, source, destination: _as_tensor(tensor, a).moveaxis(
        source, destination
    ),
    np.squeeze: lambda tensor, a, axis=None: _as_tensor(tensor, a).squeeze(axis),
    np.expand_dims: lambda tensor, a, axis: _as_tensor(tensor, a).unsqueeze(axis),
    np.broadcast_to: lambda tensor, array, shape: _as_tensor(tensor, array).broadcast_to(
        tuple(shape)
    ),
    np.tile: lambda tensor, a, reps: _as_tensor(tensor, a).tile(reps),
    np.repeat: lambda tensor, a, repeats, axis=None: _as_tensor(tensor, a).repeat_interleave(
        repeats, axis
    ),
    np.diagonal: lambda tensor, a, offset=0, axis1=0, axis2=1: _as_tensor(tensor, a).diagonal(
        offset, axis1, axis2
    ),
    np.tril: lambda tensor, m, k=0: _as_tensor(tensor, m).tril(k),
    np.triu: lambda tensor, m, k=0: _as_tensor(tensor, m).triu(k),
    np.einsum: lambda tensor, *args, **kwargs: tensor.einsum(*args, **kwargs),
    np.tensordot: lambda tensor, a, b, axes=2: _as_tensor(tensor, a).tensordot(
        _as_tensor(tensor, b), axes
    ),
    np.hstack: lambda tensor, tup: tensor.hstack(tup),
    np.vstack: lambda tensor, tup: tensor.vstack(tup),
}


def _as_tensor(tensor: type, value: Any) -> Any:
    return value if isinstance(value, tensor) else tensor(value)


def _plain(tensor: type, value: Any) -> Any:
    """Tensors as read-only views of their arrays: a NumPy call that would write into one
    (``np.copyto``, ``np.put``, ``np.fill_diagonal`` ...) fails instead of changing it unseen."""
    if isinstance(value, tensor):
        view = value.data.view()
        view.flags.writeable = False
        return view
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(tensor, v) for v in value)
    return value


def _any_tensor(tensor: type, values: Any, holds: Callable[[Any], bool]) -> bool:
    """Whether a Tensor in ``values`` (a Tensor, or a list, tuple or dict holding some) holds."""
    if isinstance(values, tensor):
        return holds(values)
    if isinstance(values, (list, tuple)):
        return any(_any_tensor(tensor, v, holds) for v in values)
    if isinstance(values, dict):
        return any(_any_tensor(tensor, v, holds) for v in values.values())
    return False


def _dropped(tensor: type, operands: Any) -> str | None:
    """What computing on the plain arrays of ``operands`` would drop: a graph (reverse mode), a
    tangent (forward mode: ``jvp``, ``jacfwd``, ``hessian``), or nothing (``None``)."""
    if _any_tensor(tensor, operands, lambda t: t.requires_grad):
        return "the graph of a tensor that requires grad"
    if _any_tensor(tensor, operands, lambda t: t._kept_by_observer()):
        return "the forward-mode tangent of a tensor inside jvp/jacfwd/hessian"
    return None


def _on_plain_arrays(tensor: type, name: str, compute: Callable[[], Any], operands: Any) -> Any:
    dropped = _dropped(tensor, operands)
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
