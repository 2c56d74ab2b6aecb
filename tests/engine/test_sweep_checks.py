"""The sweep's checks on each VJP result, whether or not observers watch the sweep."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.graph import Observer, Op, VJPError, observe


class _Recorder(Observer):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def vjp_applied(self, node, out, g, input_grads) -> None:
        self.seen.append(node.name)


def _op_returning(result):
    class Bad(Op):
        name = "bad_vjp"

        def forward(self, a, b):
            return a * b

        def vjp(self, g, out, a, b):
            return result(g, a, b)

    return Bad


BROKEN = [
    (lambda g, a, b: (g * b,), r"returned 1 gradient\(s\) for 2 input\(s\)"),
    (lambda g, a, b: (g.data * b.data, g * a), "returned a ndarray for input 0"),
    (lambda g, a, b: (g * b, 1.0), "returned a float for input 1"),
    (lambda g, a, b: (g * b, Tensor(np.ones((3, 1)))), r"shape \(3, 1\) for input 1"),
]


@pytest.mark.parametrize(("result", "message"), BROKEN)
def test_the_contract_runs_before_any_observer_sees_a_broken_vjp(result, message):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
    out = _op_returning(result).apply(a, b).sum()
    with observe(_Recorder()) as recorder, pytest.raises(VJPError, match=message):
        out.backward()
    assert "bad_vjp" not in recorder.seen  # the sum's VJP was seen, the broken one never


@pytest.mark.parametrize(("result", "message"), BROKEN[1:])
def test_a_broken_gradient_for_an_input_without_grad_is_refused_too(result, message):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=not message.endswith("input 1"))
    with pytest.raises(VJPError, match=message):
        _op_returning(result).apply(a, b).sum().backward()


def test_a_changed_input_is_named_by_position():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]))
    loss = (a * b).sum()
    b.data[0] = 5.0
    b._bump_version()
    with pytest.raises(RuntimeError, match="input 1 of op 'mul'"):
        loss.backward()


def test_nested_grad_in_a_hook_sees_the_recorded_masks():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    inner = []

    def hook(g):
        with tg.enable_grad():  # a sweep of its own, inside the outer one
            (gw,) = tg.grad((x * w).sum(), [w])
        inner.append(gw.data.copy())

    y = x * w
    y.register_hook(hook)
    (gx,) = tg.grad(y.sum(), [x])
    np.testing.assert_array_equal(gx.data, [3.0, 4.0])
    np.testing.assert_array_equal(inner[0], [1.0, 2.0])
