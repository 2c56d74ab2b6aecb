"""One row per differentiable op: how to draw valid inputs and how to call it.

Shared by the finite-difference property tests and the PyTorch differential tests, so adding an
op to the table tests it both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from tinygrad_edu import Tensor
from tinygrad_edu.testing import arrays, broadcastable_shapes, matmul_shapes, shapes


@dataclass(frozen=True)
class OpSpec:
    """``draw(data)`` returns ``(arrays, kwargs)``; ``fn(*tensors, **kwargs)`` runs the op."""

    name: str
    draw: Callable
    fn: Callable
    torch_fn: Callable | None = None  # same maths in PyTorch, for the differential tests


def _unary(options: dict | None = None, min_dims: int = 0):
    def draw(data):
        shape = data.draw(shapes(min_dims=min_dims), label="shape")
        return [data.draw(arrays(shape, **(options or {})), label="x")], {}

    return draw


def _binary(a_options: dict | None = None, b_options: dict | None = None):
    def draw(data):
        sa, sb = data.draw(broadcastable_shapes(2), label="shapes")
        a = data.draw(arrays(sa, **(a_options or {})), label="a")
        b = data.draw(arrays(sb, **(b_options or {})), label="b")
        return [a, b], {}

    return draw


def _axis_and_keepdims(data, ndim: int, allow_tuple: bool = True):
    choices = [st.none()]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            choices.append(
                st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
                    tuple
                )
            )
    return data.draw(st.one_of(*choices), label="axis"), data.draw(st.booleans(), label="keepdims")


def _reduction(options: dict | None = None, unique: bool = False):
    def draw(data):
        shape = data.draw(shapes(), label="shape")
        x = data.draw(arrays(shape, unique=unique, **(options or {})), label="x")
        axis, keepdims = _axis_and_keepdims(data, len(shape))
        return [x], {"axis": axis, "keepdims": keepdims}

    return draw


def _softmax_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape, low=-3, high=3), label="x")
    return [x], {"axis": data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")}


def _matmul_draw(data):
    sa, sb = data.draw(matmul_shapes(), label="shapes")
    return [data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")], {}


def _reshape_draw(data):
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape), label="x")
    size = int(np.prod(shape))
    targets = [(size,), (1, size), (-1, 1)] + ([()] if size == 1 else [])
    target = data.draw(st.sampled_from(targets), label="target")
    return [x], {"shape": target}


def _transpose_draw(data):
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape), label="x")
    axes = data.draw(st.permutations(range(len(shape))), label="axes")
    return [x], {"axes": tuple(axes)}


def _getitem_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape), label="x")
    n = shape[0]
    kind = data.draw(st.sampled_from(["int", "slice", "array", "tuple", "bool"]), label="kind")
    if kind == "int":
        index = data.draw(st.integers(-n, n - 1))
    elif kind == "slice":
        start, stop = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
        index = slice(start, stop, data.draw(st.sampled_from([1, 2, -1])))
    elif kind == "array":  # repeats allowed: the gradient must add up
        index = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)))
    elif kind == "bool":
        index = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    else:
        index = (slice(None), *([0] if len(shape) > 1 else []), None)
    return [x], {"index": index}


def _joined_draw(stacking: bool):
    def draw(data):
        shape = data.draw(shapes(min_dims=0 if stacking else 1), label="shape")
        count = data.draw(st.integers(1, 3), label="count")
        ndim = len(shape) + (1 if stacking else 0)
        axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
        xs = []
        for _ in range(count):
            this = list(shape)
            if not stacking:
                this[axis % len(shape)] = data.draw(st.integers(1, 3))
            xs.append(data.draw(arrays(tuple(this))))
        return xs, {"axis": axis}

    return draw


def _clip_draw(data):
    shape = data.draw(shapes(), label="shape")
    # values on a 0.1 grid, bounds between grid points: no sample sits on a kink
    return [data.draw(arrays(shape, spacing=0.1), label="x")], {"lo": -0.55, "hi": 0.65}


def _torch():
    import torch

    return torch


def _torch_reduce(name):
    def fn(x, axis=None, keepdims=False):
        torch = _torch()
        dim = tuple(range(x.ndim)) if axis is None else axis
        if name == "sum":
            return torch.sum(x, dim=dim, keepdim=keepdims) if x.ndim else x.sum()
        if name == "mean":
            return torch.mean(x, dim=dim, keepdim=keepdims) if x.ndim else x.mean()
        return torch.amax(x, dim=dim, keepdim=keepdims) if x.ndim else x

    return fn


def _index_for_torch(index, length: int):
    """PyTorch has no negative slice steps: spell those as the integer positions they select."""
    torch = _torch()
    if isinstance(index, slice) and (index.step or 1) < 0:
        index = np.arange(length)[index].copy()
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


SPECS = [
    OpSpec("add", _binary(), lambda a, b: a + b, lambda a, b: a + b),
    OpSpec("sub", _binary(), lambda a, b: a - b, lambda a, b: a - b),
    OpSpec("mul", _binary(), lambda a, b: a * b, lambda a, b: a * b),
    OpSpec(
        "div", _binary(b_options={"away_from_zero": 0.5}), lambda a, b: a / b, lambda a, b: a / b
    ),
    OpSpec(  # the finite-difference tests cover exponent 0; PyTorch masks it (see below)
        "pow",
        _binary(a_options={"low": 0.5, "high": 2.0}),
        lambda a, b: a**b,
        None,
    ),
    OpSpec(  # PyTorch's pow VJP returns 0 where the exponent is 0, which also zeroes the true
        # mixed second derivative d/db (b a^(b-1)) = a^(b-1) there; compare away from it
        "pow_nonzero_exponent",
        _binary(a_options={"low": 0.5, "high": 2.0}, b_options={"away_from_zero": 0.1}),
        lambda a, b: a**b,
        lambda a, b: a**b,
    ),
    OpSpec("pow_scalar", _unary({"low": 0.3, "high": 2.0}), lambda x: x**2.5, lambda x: x**2.5),
    OpSpec("rpow_scalar", _unary(), lambda x: 2.0**x, lambda x: 2.0**x),
    OpSpec("rsub_scalar", _unary(), lambda x: 1.0 - x, lambda x: 1.0 - x),
    OpSpec("rdiv_scalar", _unary({"away_from_zero": 0.5}), lambda x: 3.0 / x, lambda x: 3.0 / x),
    OpSpec("neg", _unary(), lambda x: -x, lambda x: -x),
    OpSpec("matmul", _matmul_draw, lambda a, b: a @ b, lambda a, b: a @ b),
    OpSpec("abs", _unary({"away_from_zero": 0.1}), lambda x: x.abs(), lambda x: x.abs()),
    OpSpec("exp", _unary(), lambda x: x.exp(), lambda x: x.exp()),
    OpSpec("log", _unary({"low": 0.3, "high": 3.0}), lambda x: x.log(), lambda x: x.log()),
    OpSpec("sqrt", _unary({"low": 0.3, "high": 3.0}), lambda x: x.sqrt(), lambda x: x.sqrt()),
    OpSpec("sigmoid", _unary({"low": -4, "high": 4}), lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    OpSpec("tanh", _unary(), lambda x: x.tanh(), lambda x: x.tanh()),
    OpSpec("relu", _unary({"away_from_zero": 0.1}), lambda x: x.relu(), lambda x: x.relu()),
    OpSpec("clip", _clip_draw, lambda x, lo, hi: x.clip(lo, hi), lambda x, lo, hi: x.clamp(lo, hi)),
    OpSpec("sum", _reduction(), lambda x, **k: x.sum(**k), _torch_reduce("sum")),
    OpSpec("mean", _reduction(), lambda x, **k: x.mean(**k), _torch_reduce("mean")),
    OpSpec(
        "max",
        _reduction({"spacing": 0.1, "low": -3, "high": 3}, unique=True),
        lambda x, **k: x.max(**k),
        _torch_reduce("max"),
    ),
    OpSpec(
        "softmax", _softmax_draw, lambda x, axis: x.softmax(axis), lambda x, axis: x.softmax(axis)
    ),
    OpSpec(
        "log_softmax",
        _softmax_draw,
        lambda x, axis: x.log_softmax(axis),
        lambda x, axis: x.log_softmax(axis),
    ),
    OpSpec(
        "reshape",
        _reshape_draw,
        lambda x, shape: x.reshape(shape),
        lambda x, shape: x.reshape(shape),
    ),
    OpSpec(
        "transpose",
        _transpose_draw,
        lambda x, axes: x.transpose(*axes),
        lambda x, axes: x.permute(axes),
    ),
    OpSpec("T", _unary(), lambda x: x.T, lambda x: x.permute(tuple(reversed(range(x.ndim))))),
    OpSpec(
        "flatten",
        _unary(min_dims=1),
        lambda x: x.flatten(1 if x.ndim > 1 else 0),
        lambda x: x.flatten(1 if x.ndim > 1 else 0),
    ),
    OpSpec(
        "getitem",
        _getitem_draw,
        lambda x, index: x[index],
        lambda x, index: x[_index_for_torch(index, x.shape[0])],
    ),
    OpSpec(
        "stack",
        _joined_draw(stacking=True),
        lambda *xs, axis: Tensor.stack(xs, axis=axis),
        lambda *xs, axis: _torch().stack(xs, dim=axis),
    ),
    OpSpec(
        "concatenate",
        _joined_draw(stacking=False),
        lambda *xs, axis: Tensor.concatenate(xs, axis=axis),
        lambda *xs, axis: _torch().cat(xs, dim=axis),
    ),
    OpSpec(
        "broadcast_then_sum_to",
        _binary(),
        lambda a, b: (a + b).sum_to(a.shape) * b.broadcast_to((a + b).shape).sum_to(b.shape).sum(),
        None,
    ),
]

SPECS_BY_NAME = {spec.name: spec for spec in SPECS}
