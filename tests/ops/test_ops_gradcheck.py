"""Every differentiable op against central finite differences, first and second order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.op_specs import SPECS, OpSpec
from tinygrad_edu import Tensor


def _tensors(arrays):
    return [Tensor(a, requires_grad=True) for a in arrays]


def _forward_mode(out: Tensor, inputs: list[Tensor], tangents: list[Tensor]) -> Tensor | None:
    """``J @ tangents`` for the recorded graph of ``out``, from each node's ``jvp`` rule: the
    nodes run in creation order, each turning its inputs' tangents into its output's."""
    found, stack, seen = [], [out], set()
    while stack:
        t = stack.pop()
        if id(t) in seen or t._node is None:
            continue
        seen.add(id(t))
        found.append(t)
        stack.extend(t._node.inputs)
    tangent = {id(x): dx for x, dx in zip(inputs, tangents)}
    for t in sorted(found, key=lambda t: t._node.sequence):
        node = t._node
        given = tuple(tangent.get(id(x)) for x in node.inputs)
        if any(dx is not None for dx in given):
            result = node.jvp(given, t, *node.inputs)
            if result is not None:
                tangent[id(t)] = result.broadcast_to(t.shape)
    return tangent.get(id(out))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_first_order_matches_finite_differences(spec: OpSpec, data):
    arrays, kwargs = spec.draw(data)
    assert tg.gradcheck(lambda *xs: spec.fn(*xs, **kwargs), _tensors(arrays))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_second_order_matches_finite_differences(spec: OpSpec, data):
    arrays, kwargs = spec.draw(data)
    assert tg.gradgradcheck(lambda *xs: spec.fn(*xs, **kwargs), _tensors(arrays))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_jvp_is_the_transpose_of_the_vjp(spec: OpSpec, data):
    """Every op's forward rule against its reverse rule: v . (J t) == (J^T v) . t."""
    arrays, kwargs = spec.draw(data)
    xs = _tensors(arrays)
    out = spec.fn(*xs, **kwargs)
    rng = np.random.default_rng(0)
    tangents = [Tensor(rng.standard_normal(a.shape)) for a in arrays]
    v = rng.standard_normal(out.shape)
    with tg.no_grad():
        jt = _forward_mode(out, xs, tangents)
    forward = 0.0 if jt is None else float(np.sum(v * jt.data))
    grads = tg.grad(out, xs, grad_outputs=Tensor(v), allow_unused=True)
    reverse = sum(float(np.sum(g.data * t.data)) for g, t in zip(grads, tangents) if g is not None)
    assert forward == pytest.approx(reverse, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_forward_keeps_float32(spec: OpSpec, data):
    arrays, kwargs = spec.draw(data)
    out = spec.fn(*[Tensor(a.astype(np.float32)) for a in arrays], **kwargs)
    assert out.dtype == np.float32


def test_gradcheck_catches_a_wrong_vjp():
    """Negative control: an op whose VJP forgets the factor 2 of d(x^2)/dx must be caught."""

    class WrongSquare(tg.graph.Op):
        name = "wrong_square"

        def forward(self, x):
            return x * x

        def vjp(self, g, out, x):
            return g * x  # should be g * 2x

    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(WrongSquare.apply, [x])
    err = caught.value
    assert err.input_position == 0
    assert err.index in {(0,), (1,), (2,)}
    assert err.analytic == pytest.approx(err.numeric / 2, rel=1e-5)
    assert "input 0" in str(err) and "numeric" in str(err) and "analytic" in str(err)


def test_gradgradcheck_catches_a_constant_treated_vjp():
    """Negative control for second order: a VJP that detaches its input has wrong Hessians."""

    class DetachedCube(tg.graph.Op):
        name = "detached_cube"

        def forward(self, x):
            return x**3

        def vjp(self, g, out, x):
            return g * 3 * x.detach() ** 2  # right value, but hides x from the second derivative

    x = Tensor(np.array([0.5, -1.5]), requires_grad=True)
    assert tg.gradcheck(DetachedCube.apply, [x])
    with pytest.raises(tg.GradcheckError):
        tg.gradgradcheck(DetachedCube.apply, [x])


def test_gradcheck_warns_for_float32():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float64"):
        assert tg.gradcheck(lambda t: t.exp(), [x])


def test_gradcheck_needs_an_input_to_check():
    with pytest.raises(ValueError, match="requires_grad"):
        tg.gradcheck(lambda t: t.exp(), [Tensor(np.ones(2))])
