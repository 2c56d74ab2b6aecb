"""Every differentiable op against central finite differences, first and second order, in both
modes (the transpose identity between each JVP and VJP is in tests/engine/test_forward_mode.py)."""

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


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_first_order_matches_finite_differences(spec: OpSpec, data):
    """Every op's VJP (reverse mode) and JVP (forward mode) against one set of differences."""
    arrays, kwargs = spec.draw(data)
    assert tg.gradcheck(lambda *xs: spec.fn(*xs, **kwargs), _tensors(arrays), modes=("rev", "fwd"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_second_order_matches_finite_differences(spec: OpSpec, data):
    """The VJPs' own VJPs (reverse over reverse) and the JVPs of the ops each VJP is built from
    (forward over reverse), against one set of differences of the first-order gradient."""
    arrays, kwargs = spec.draw(data)
    assert tg.gradgradcheck(
        lambda *xs: spec.fn(*xs, **kwargs), _tensors(arrays), modes=("rev", "fwd")
    )


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
