"""Negative axes everywhere an axis is accepted: ``axis=-1`` must mean exactly ``axis=ndim - 1``,
forward *and* backward (a VJP that inverts the spelling instead of the permutation is wrong only
in backward, and silently so for square shapes)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.testing import arrays, axes, axis_permutations, shapes


def _positive(axis, ndim: int):
    if axis is None:
        return None
    if isinstance(axis, tuple):
        return tuple(a % max(ndim, 1) for a in axis)
    return axis % max(ndim, 1)


# name -> (minimum ndim, strategy of the axis argument given ndim, call)
AXIS_FUNCTIONS = {
    "sum": (0, axes, lambda x, a, k: x.sum(axis=a, keepdims=k)),
    "mean": (0, axes, lambda x, a, k: x.mean(axis=a, keepdims=k)),
    "max": (0, axes, lambda x, a, k: x.max(axis=a, keepdims=k)),
    "softmax": (1, lambda n: axes(n, False, False), lambda x, a, k: x.softmax(axis=a)),
    "log_softmax": (1, lambda n: axes(n, False, False), lambda x, a, k: x.log_softmax(axis=a)),
    "swapaxes": (
        1,
        lambda n: st.tuples(axes(n, False, False), axes(n, False, False)),
        lambda x, a, k: x.swapaxes(*a),
    ),
    "transpose": (0, axis_permutations, lambda x, a, k: x.transpose(*a)),
    "flatten": (1, lambda n: axes(n, False, False), lambda x, a, k: x.flatten(a)),
    "stack": (
        0,
        lambda n: axes(n + 1, False, False),
        lambda x, a, k: Tensor.stack([x, x * 2], axis=a),
    ),
    "concatenate": (
        1,
        lambda n: axes(n, False, False),
        lambda x, a, k: Tensor.concatenate([x, x * 2], axis=a),
    ),
}


def _positive_spelling(name: str, axis, ndim: int):
    if name == "swapaxes":
        return tuple(_positive(a, ndim) for a in axis)
    if name == "transpose":
        return tuple(_positive(a, ndim) for a in axis)
    if name == "stack":
        return _positive(axis, ndim + 1)
    return _positive(axis, ndim)


@st.composite
def axis_cases(draw):
    name = draw(st.sampled_from(sorted(AXIS_FUNCTIONS)))
    min_dims, axis_strategy, _ = AXIS_FUNCTIONS[name]
    shape = draw(shapes(min_dims=min_dims, max_dims=4))
    x = draw(arrays(shape, spacing=0.01, unique=True, low=-3, high=3))  # no ties for max
    return name, x, draw(axis_strategy(len(shape))), draw(st.booleans())


@given(axis_cases())
def test_negative_axes_mean_the_same_axes_forward_and_backward(case):
    name, x, axis, keepdims = case
    call = AXIS_FUNCTIONS[name][2]
    positive = _positive_spelling(name, axis, x.ndim)
    a, b = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    ya, yb = call(a, axis, keepdims), call(b, positive, keepdims)
    np.testing.assert_array_equal(ya.data, yb.data)
    v = Tensor(np.random.default_rng(0).standard_normal(ya.shape))
    (ga,) = tg.grad(ya, [a], grad_outputs=v)
    (gb,) = tg.grad(yb, [b], grad_outputs=v)
    np.testing.assert_array_equal(ga.data, gb.data)


@given(axis_cases())
def test_negative_axes_pass_finite_differences(case):
    name, x, axis, keepdims = case
    call = AXIS_FUNCTIONS[name][2]
    assert tg.gradcheck(lambda t: call(t, axis, keepdims), [Tensor(x, requires_grad=True)])


def test_transpose_minus_one_zero_backward_on_square_and_cubic_shapes():
    rng = np.random.default_rng(0)
    for shape, perm in [((3, 3), (-1, 0)), ((2, 2, 2), (-1, 0, 1)), ((2, 3, 4), (-1, 0, -2))]:
        x = Tensor(rng.standard_normal(shape), requires_grad=True)
        y = x.transpose(*perm)
        v = rng.standard_normal(y.shape)
        (g,) = tg.grad(y, [x], grad_outputs=Tensor(v))
        positive = tuple(p % len(shape) for p in perm)
        np.testing.assert_array_equal(g.data, v.transpose(np.argsort(positive)))
