"""The engine's own contract: duplicate outputs and inputs in ``grad``, pruning, the ``Op``
protocol (constructor defaults, honest errors) and the VJP checks that name the culprit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.graph import Observer, Op, VJPError, observe
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import selections

# three outputs of two inputs; each output's gradient is known in closed form
OUTPUTS = [
    (lambda a, b: (a * b).sum(), lambda a, b: (b, a)),
    (lambda a, b: (a * a).sum(), lambda a, b: (2 * a, 0 * b)),
    (lambda a, b: (b * b * b).sum() + a.sum(), lambda a, b: (np.ones_like(a), 3 * b * b)),
]


@given(selections(len(OUTPUTS)), selections(2), st.booleans())
def test_duplicate_outputs_and_inputs_in_grad_add_up(output_picks, input_picks, create_graph):
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal(3), rng.standard_normal(3)
    a, b = Tensor(a_np, requires_grad=True), Tensor(b_np, requires_grad=True)
    inputs = [(a, b)[i] for i in input_picks]
    outputs = [OUTPUTS[k][0](a, b) for k in output_picks]
    grads = tg.grad(outputs, inputs, create_graph=create_graph, allow_unused=True)
    for position, g in zip(input_picks, grads):
        expected = sum(OUTPUTS[k][1](a_np, b_np)[position] for k in output_picks)
        np.testing.assert_allclose(np.zeros(3) if g is None else g.data, expected, rtol=1e-12)


@given(selections(len(OUTPUTS)))
def test_same_output_object_listed_twice_counts_twice(picks):
    a, b = Tensor(np.array([0.5, 2.0]), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    shared = [OUTPUTS[k][0](a, b) for k in range(len(OUTPUTS))]
    ga, gb = tg.grad([shared[k] for k in picks], [a, b], allow_unused=True)
    for g, position in ((ga, 0), (gb, 1)):
        expected = sum(OUTPUTS[k][1](a.data, b.data)[position] for k in picks)
        np.testing.assert_allclose(np.zeros(2) if g is None else g.data, expected, rtol=1e-12)


def test_grad_of_the_same_output_twice_sums_both():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    (g,) = tg.grad([y, y], [x])
    np.testing.assert_array_equal(g.data, [4.0, 8.0])
    y = (x * x).sum()
    g1, g2 = tg.grad(y, [x, x])
    np.testing.assert_array_equal(g1.data, [2.0, 4.0])
    np.testing.assert_array_equal(g2.data, [2.0, 4.0])


def test_second_order_through_a_plus_a():
    x = Tensor(np.array([1.5, -2.0]), requires_grad=True)
    y = x + x
    (g,) = tg.grad([(y * y).sum(), y.sum()], [x], create_graph=True)  # 8x + 2
    np.testing.assert_allclose(g.data, 8 * x.data + 2)
    (h,) = tg.grad([g.sum(), g.sum()], [x])
    np.testing.assert_allclose(h.data, [16.0, 16.0])


# ----------------------------------------------------------------------------- pruning
class OpCounter(Observer):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def op_applied(self, op, inputs, out) -> None:
        self.counts[op.name] = self.counts.get(op.name, 0) + 1


def _vgg_like(rng, frozen: bool):
    shapes = [(4, 3, 3, 3), (4, 4, 3, 3), (6, 4, 3, 3)]
    weights = [Tensor(rng.standard_normal(s) * 0.3, requires_grad=not frozen) for s in shapes]
    biases = [Tensor(rng.standard_normal(s[0]) * 0.1, requires_grad=not frozen) for s in shapes]

    def forward(x):
        h = x
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = F.conv2d(h, w, b, padding=1).relu()
            if i < 2:
                h = F.max_pool2d(h, 2)
        return h

    return forward, weights + biases


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "trainable-but-not-asked"])
def test_grad_with_respect_to_the_input_does_no_weight_gradient_work(frozen):
    rng = np.random.default_rng(0)
    forward, params = _vgg_like(rng, frozen)
    x = Tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    for _ in range(2):  # two steps of gradient ascent in input space, as vis does
        with observe(OpCounter()) as counter:
            objective = forward(x)[:, 1].mean()
            (gx,) = tg.grad(objective, [x])
        assert counter.counts.get("conv2d_weight_grad", 0) == 0
        assert counter.counts["conv2d_input_grad"] == 3
        with tg.no_grad():
            x = Tensor(x.data + 0.1 * gx.data, requires_grad=True)
    assert all(p.grad is None for p in params)


def test_backward_still_computes_every_weight_gradient():
    """Negative control for the pruning test: backward() asks for every leaf."""
    forward, params = _vgg_like(np.random.default_rng(0), frozen=False)
    x = Tensor(np.random.default_rng(1).standard_normal((1, 3, 8, 8)), requires_grad=True)
    with observe(OpCounter()) as counter:
        forward(x)[:, 1].mean().backward()
    assert counter.counts["conv2d_weight_grad"] == 3
    assert all(p.grad is not None for p in params)


def test_pruned_grad_equals_the_full_gradient_and_leaves_the_graph_intact():
    forward, params = _vgg_like(np.random.default_rng(0), frozen=False)
    x = Tensor(np.random.default_rng(1).standard_normal((1, 3, 8, 8)), requires_grad=True)
    out = forward(x).sum()
    (gx,) = tg.grad(out, [x], retain_graph=True)
    full = tg.grad(out, [x, *params])
    np.testing.assert_allclose(gx.data, full[0].data, rtol=1e-12)


# ----------------------------------------------------------------------------- the Op protocol
class Scale(Op):
    name = "scale"

    def __init__(self, factor: float = 2.0, offset: float = 0.0) -> None:
        self.factor, self.offset = factor, offset

    def forward(self, x):
        return x * self.factor + self.offset

    def vjp(self, g, out, x):
        return g * self.factor


def test_custom_op_constructor_defaults_work_in_apply():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    np.testing.assert_array_equal(Scale.apply(x).data, [2.0, 4.0])
    y = Scale.apply(x, offset=1.0)
    np.testing.assert_array_equal(y.data, [3.0, 5.0])
    assert tg.gradcheck(lambda t: Scale.apply(t, factor=-3.0), [x])


class Picky(Op):
    name = "picky"

    def forward(self, x):
        if (x < 0).any():
            raise ValueError("picky: negative values are not allowed")
        return np.sqrt(x)


def test_a_non_shape_value_error_keeps_its_class_and_message():
    with pytest.raises(ValueError, match="negative values are not allowed") as caught:
        Picky.apply(Tensor(np.array([-1.0])))
    assert not isinstance(caught.value, tg.ShapeError)


def test_a_numpy_shape_error_becomes_a_shape_error_naming_the_op():
    with pytest.raises(tg.ShapeError, match=r"picky|add.*\(2,\).*\(3,\)"):
        Tensor(np.ones(2)) + Tensor(np.ones(3))


def _bad_op(result):
    class Bad(Op):
        name = "bad_vjp"

        def forward(self, a, b):
            return a * b

        def vjp(self, g, out, a, b):
            return result(g, a, b)

    return Bad


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (lambda g, a, b: (g * b,), r"returned 1 gradient\(s\) for 2 input\(s\)"),
        (lambda g, a, b: (g * b, g * a, g), r"returned 3 gradient\(s\) for 2 input\(s\)"),
        (lambda g, a, b: (g.data * b.data, g * a), "returned a ndarray for input 0"),
        (lambda g, a, b: (g * b, 1.0), "returned a float for input 1"),
        (lambda g, a, b: (g * b, (g * a).sum()), r"shape \(\) for input 1 of shape \(3,\)"),
        (lambda g, a, b: (g * b, Tensor(np.ones((3, 1)))), r"shape \(3, 1\) for input 1"),
        (lambda g, a, b: (Tensor(np.ones(4)), g * a), r"shape \(4,\) for input 0"),
    ],
    ids=["too-few", "too-many", "ndarray", "float", "scalar-shape", "size-1-axis", "wrong-side"],
)
def test_a_broken_vjp_raises_vjp_error_naming_the_op(result, message):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
    with pytest.raises(VJPError, match="op 'bad_vjp'") as caught:
        tg.grad(_bad_op(result).apply(a, b).sum(), [a, b])
    assert caught.match(message)


def test_a_broadcast_shaped_vjp_result_is_allowed_and_summed_back():
    class Broadcasting(Op):
        name = "broadcasting"

        def forward(self, a):
            return a * 2

        def vjp(self, g, out, a):
            return (g * 2).broadcast_to((4, *a.shape))  # extra leading axis: summed by the engine

    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (g,) = tg.grad(Broadcasting.apply(a).sum(), [a])
    np.testing.assert_array_equal(g.data, [8.0, 8.0])


# ----------------------------------------------------------------------------- losses (issue 9)
def test_cross_entropy_with_probability_targets_gives_the_target_a_gradient():
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    target = Tensor(rng.dirichlet(np.ones(4), size=3), requires_grad=True)
    loss = F.cross_entropy(logits, target)
    gz, gt = tg.grad(loss, [logits, target])
    log_probs = logits.data - np.log(np.exp(logits.data).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(gt.data, -log_probs / 3, rtol=1e-12)
    np.testing.assert_allclose(gz.data, (np.exp(log_probs) - target.data) / 3, atol=1e-15)
    assert tg.gradcheck(F.cross_entropy, [logits, target])
