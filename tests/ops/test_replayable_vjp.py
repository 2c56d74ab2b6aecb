"""``Op.replayable_vjp``: each rule says whether compile may replay the backward ops it emits."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.op_specs import SPECS
from tinygrad_edu import Tensor
from tinygrad_edu.graph import Op
from tinygrad_edu.nn import functional as F

#: the rules built from Tensor ops alone (no NumPy on values, no value-derived constants)
REPLAYABLE = {
    *("neg", "exp", "log", "sqrt", "sigmoid", "tanh", "add", "sub", "mul", "div"),
    *("sigmoid_backward", "tanh_backward", "matmul", "linear", "sum", "softmax", "log_softmax"),
    *("sum_to", "broadcast_to", "reshape", "transpose", "getitem", "scatter_add", "stack"),
    *("concatenate", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh"),
    *("acosh", "atanh", "log2", "log10", "log1p", "exp2", "expm1", "rsqrt", "erf", "square"),
    *("reciprocal", "silu", "logsigmoid", "softsign", "sign", "floor", "ceil", "round"),
    *("trunc", "floor_divide", "weight_gradient"),
}


def _rules() -> set[type[Op]]:
    found, todo = set(), [Op]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_exactly_the_rules_built_from_ops_alone_are_replayable():
    flagged = {rule.name for rule in _rules() if rule.replayable_vjp}
    assert flagged == REPLAYABLE


class _Seen(tg.graph.Observer):
    def __init__(self) -> None:
        self.kinds: set[type[Op]] = set()

    def op_applied(self, op, inputs, out) -> None:
        self.kinds.add(type(op))


def test_every_replayable_rule_is_replayed_by_the_op_spec_table():
    """Each flagged rule runs (forward or backward) in some op-spec row, so the compile tests'
    replay of every row, bit for bit against eager, covers its VJP."""
    seen = _Seen()

    @settings(max_examples=1, database=None)
    @given(data=st.data())
    def run(spec, data):
        arrays, kwargs = spec.draw(data)
        inputs = [Tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
        with tg.graph.observe(seen):
            out = spec.fn(*inputs, **kwargs)
            if out.requires_grad:
                out.sum().backward(create_graph=True)

    for spec in SPECS:
        run(spec)
    missing = {rule.name for rule in _rules() if rule.replayable_vjp and rule not in seen.kinds}
    assert missing == {"linear", "weight_gradient"}  # a layer's ops, not in the table: below


def test_the_linear_layer_replays_its_gradients_bit_for_bit():
    rng = np.random.default_rng(0)
    weight = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    bias = Tensor(rng.normal(size=3), requires_grad=True)
    cosines = Tensor(np.cos(np.arange(3.0)))

    def loss(x):
        return (F.linear(x, weight, bias) * cosines).sum()

    step = tg.compile(loss)
    for _ in range(3):
        x = rng.normal(size=(5, 4))
        compiled = step(Tensor(x, requires_grad=True))
        grads = [weight.grad.data.copy(), bias.grad.data.copy()]
        weight.grad = bias.grad = None
        eager = loss(Tensor(x, requires_grad=True))
        eager.backward()
        assert compiled.item() == eager.item()
        assert all(np.array_equal(g, p.grad.data) for g, p in zip(grads, (weight, bias)))
        weight.grad = bias.grad = None
    assert step.replays == 1
