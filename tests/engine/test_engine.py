"""The backward sweep: accumulation, graph lifetime, grad modes, higher order, errors; and the
engine's own contract: duplicate outputs and inputs in ``grad``, pruning, the ``Op`` protocol
(constructor defaults, honest errors) and the VJP checks that name the culprit."""

from __future__ import annotations

import gc
import sys
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.graph import Observer, Op, VJPError, observe
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import selections


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ----------------------------------------------------------------------------- accumulation
def test_diamond_sums_both_paths():
    x = leaf(3.0)
    y = x * x
    (y * y + y).backward()  # d/dx (x^4 + x^2) = 4x^3 + 2x
    assert x.grad.item() == pytest.approx(4 * 27 + 6)


def test_same_tensor_twice():
    a = leaf([1.0, -2.0])
    (a + a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])


def test_repeated_backward_accumulates_like_pytorch():
    x = leaf([1.0, 2.0])
    for expected in (1, 2, 3):
        (x * 5).sum().backward()
        np.testing.assert_array_equal(x.grad.data, [5.0 * expected] * 2)


def test_zero_grad_clears():
    x = leaf([1.0])
    (x * 2).sum().backward()
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    assert x.grad.item() == 3.0


def test_leaf_grad_is_never_an_alias_of_another_gradient():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[0] = 100.0
    assert b.grad.data[0] == 1.0


def test_broadcast_gradients_are_summed_back():
    a = leaf(np.ones((2, 3)))
    b = leaf([1.0, 2.0, 3.0])
    c = leaf(2.0)
    (a * b * c).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad.shape == (3,) and c.grad.shape == ()
    np.testing.assert_allclose(b.grad.data, [4.0, 4.0, 4.0])
    assert c.grad.item() == pytest.approx(12.0)


# ----------------------------------------------------------------------------- graph lifetime
def test_deep_chain_needs_no_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    assert sys.getrecursionlimit() <= 10_000
    y.backward()
    assert x.grad.item() == 1.0


def test_graph_is_released_after_backward():
    x = leaf(np.ones(4))
    hidden = x.exp()
    watcher = weakref.ref(hidden)
    loss = (hidden * 2).sum()
    del hidden
    loss.backward()
    gc.collect()
    assert watcher() is None, "an intermediate tensor outlived backward()"
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])


def test_memory_stays_flat_over_a_training_loop():
    w = leaf(np.ones((8, 8)))
    x = Tensor(np.ones((4, 8)))
    losses = []
    for _ in range(50):
        loss = ((x @ w).tanh() ** 2).sum()
        loss.backward()
        losses.append(loss)  # keeping the loss must not keep its graph
    gc.collect()
    alive = [o for o in gc.get_objects() if type(o) is Tensor]
    # 50 losses + a handful of fixed tensors; retained graphs would add ~4 tensors per step
    assert len(alive) < 50 + 20


# ----------------------------------------------------------------------------- grad modes
def test_no_grad_records_nothing():
    x = leaf([1.0])
    with tg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert tg.is_grad_enabled()


def test_no_grad_as_decorator():
    @tg.no_grad()
    def step(t):
        return t * 2

    assert not step(leaf([1.0])).requires_grad


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * d
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_grad_does_not_touch_dot_grad():
    x = leaf([1.0, 2.0])
    (g,) = tg.grad((x**3).sum(), [x])
    np.testing.assert_allclose(g.data, [3.0, 12.0])
    assert x.grad is None


def test_grad_with_respect_to_an_intermediate():
    x = leaf([0.5])
    z = x * 3
    y = z.sigmoid()
    (gz,) = tg.grad(y.sum(), [z])
    s = 1 / (1 + np.exp(-1.5))
    assert gz.item() == pytest.approx(s * (1 - s))


def test_grad_rejects_unused_inputs_unless_allowed():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="not used"):
        tg.grad((x * 2).sum(), [x, unused])
    gx, gu = tg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


# ----------------------------------------------------------------------------- higher order
def test_grad_of_grad():
    x = leaf(2.0)
    (g,) = tg.grad(x**3, [x], create_graph=True)
    (gg,) = tg.grad(g, [x])
    assert g.item() == pytest.approx(12.0) and gg.item() == pytest.approx(12.0)


def test_hessian_vector_product():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    A = a + a.T
    x = leaf(rng.standard_normal(4))
    v = rng.standard_normal(4)
    f = 0.5 * (x @ Tensor(A) @ x) + (x**4).sum()  # Hessian = A + diag(12 x^2)
    (g,) = tg.grad(f, [x], create_graph=True)
    (hv,) = tg.grad(g, [x], grad_outputs=Tensor(v))
    np.testing.assert_allclose(hv.data, A @ v + 12 * x.data**2 * v, rtol=1e-12)


def test_backward_with_create_graph_gives_differentiable_grad():
    x = leaf([1.0, 3.0])
    (x**2).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (hess_diag,) = tg.grad(x.grad.sum(), [x])
    np.testing.assert_allclose(hess_diag.data, [2.0, 2.0])


# ----------------------------------------------------------------------------- hooks
def test_hook_reads_and_replaces_a_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g.data.copy()))
    h.register_hook(lambda g: g * 0)
    h.sum().backward()
    np.testing.assert_array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_leaf_hook_runs_before_accumulation_and_can_be_removed():
    x = leaf([1.0])
    remove = x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    assert x.grad.item() == 20.0
    remove()
    x.zero_grad()
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


# ----------------------------------------------------------------------------- dtype and data
def test_dtypes_are_kept():
    for dtype in (np.float32, np.float64):
        x = Tensor(np.ones(3, dtype=dtype), requires_grad=True)
        y = (x * 2.0 + 1).sigmoid().sum()
        y.backward()
        assert y.dtype == dtype and x.grad.dtype == dtype


def test_constructor_conversions():
    assert Tensor(1).dtype == np.int64  # PyTorch's dtypes (issue 21)
    assert Tensor([1, 2]).dtype == np.int64 and Tensor([1.0, 2]).dtype == np.float32
    assert Tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert Tensor(np.arange(3), dtype=np.int64).dtype == np.int64
    assert Tensor(np.ones(2)).dtype == np.float64
    arr = np.ones(2)
    t = Tensor(arr)
    assert t.data is arr and t.numpy() is arr
    # np.asarray shares the memory read-only: a write through it would go unseen (issue 21)
    assert np.shares_memory(np.asarray(t), arr) and not np.asarray(t).flags.writeable


def test_array_protocol_and_info():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert Tensor(4.0).item() == 4.0
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float32), t.data)


def test_constructors():
    assert Tensor.zeros(2, 3).shape == (2, 3) and Tensor.ones((4,)).data.sum() == 4
    a = Tensor.randn(3, 2, rng=7)
    b = Tensor.randn(3, 2, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32


# ----------------------------------------------------------------------------- errors
def test_shape_mismatch_names_op_and_shapes():
    with pytest.raises(tg.ShapeError, match=r"add.*\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(tg.ShapeError, match=r"matmul.*\(2, 3\).*\(2, 3\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3)))


def test_backward_on_non_scalar_needs_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"single-element.*\(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_graph_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_requires_grad_on_integers_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), dtype=np.int64, requires_grad=True)


def test_index_out_of_range_is_a_clear_error():
    with pytest.raises(IndexError, match=r"getitem.*\(3,\)"):
        Tensor(np.ones(3))[5]


# ----------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_plus_minus_1000_without_warnings(dtype):
    x = Tensor(np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = x.sigmoid()
        sm = x.softmax()
        lsm = x.log_softmax()
        logged = Tensor(np.array([0.0, 1.0], dtype=dtype)).log()
        (s.sum() + sm[4] + lsm.sum()).backward()
    for t in (s, sm, lsm):
        assert np.isfinite(t.data).all()
    assert np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(
        s.data, [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-1)), 1.0], rtol=1e-6
    )
    assert lsm.data[0] == pytest.approx(-2000.0)
    assert logged.data[0] == -np.inf


def test_sigmoid_keeps_relative_precision_in_the_tail():
    s = Tensor(np.array([-40.0])).sigmoid()
    assert s.item() == pytest.approx(np.exp(-40.0) / (1 + np.exp(-40.0)), rel=1e-12)


def test_grad_of_an_intermediate_runs_no_hook_on_an_unfinished_leaf():
    """Stopping early at an intermediate target must not show a leaf a partial gradient."""
    x = leaf([1.0, 2.0])
    calls = []
    x.register_hook(lambda g: calls.append(g.data.copy()))
    z = x * 3
    y = (z * x).sum()  # x feeds y twice: through z and directly
    (gz,) = tg.grad(y, [z])
    np.testing.assert_allclose(gz.data, x.data)
    assert calls == []
    y2 = ((x * 3) * x).sum()
    y2.backward()
    np.testing.assert_allclose(calls[0], 6 * x.data)  # the complete gradient, once


@pytest.mark.parametrize("ask", ["grad", "backward"])
def test_the_sweep_frees_each_activation_once_its_vjp_ran(ask):
    """Activations the graph alone holds die as the sweep passes them, not at its end: on a
    deep network the whole forward pass would otherwise stay in memory through the backward."""
    x = Tensor(np.linspace(0.1, 0.5, 6), requires_grad=True)
    refs = []

    def forward() -> Tensor:
        h = x
        for _ in range(6):
            h = (h * 0.5).exp()  # each intermediate is referenced by the graph only
            refs.append(weakref.ref(h))
        return h.sum()

    loss = forward()
    alive = []

    class Census(tg.graph.Observer):
        def vjp_applied(self, node, out, g, input_grads):
            alive.append(sum(ref() is not None for ref in refs))

    with tg.graph.observe(Census()):
        if ask == "grad":
            tg.grad(loss, [x])
        else:
            loss.backward()
    assert alive[0] == 6 and alive[-1] <= 2  # the sweep's own references: the current tensor
    assert alive == sorted(alive, reverse=True)


# ----------------------------------------------------------------------------- gradient hooks
# A hook may replace a gradient only by a Tensor of the same shape and dtype (PyTorch's rule):
# anything else would change .grad's shape, be broadcast into the graph, or crash later.


def _shape_changer(g: Tensor) -> Tensor:
    return g[:2]


@pytest.mark.parametrize("on", ["leaf", "intermediate"])
@pytest.mark.parametrize(
    ("hook", "error", "message"),
    [
        (_shape_changer, RuntimeError, r"'_shape_changer' has changed the size.*\(3,\).*\(2,\)"),
        (lambda g: g.reshape(3, 1) * Tensor(np.ones((1, 3))), RuntimeError, r"\(3, 3\)"),
        (lambda g: g.sum(), RuntimeError, r"changed the size.*shape \(\)"),
        (lambda g: Tensor(g.data.astype(np.float32)), RuntimeError, "changed the type.*float32"),
        (lambda g: g.data * 2, TypeError, "returned a ndarray"),
        (lambda g: 5, TypeError, "returned a int"),
    ],
)
def test_a_hook_may_not_change_the_gradients_shape_dtype_or_type(on, hook, error, message):
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    (x if on == "leaf" else y).register_hook(hook)
    with pytest.raises(error, match=message):
        (y * y).sum().backward()
    assert x.grad is None


def test_torch_refuses_the_same_hooks():
    torch = pytest.importorskip("torch")
    for hook in (lambda g: g[:2], lambda g: g.float(), lambda g: 5):
        x = torch.ones(3, dtype=torch.float64, requires_grad=True)
        x.register_hook(hook)
        with pytest.raises((RuntimeError, TypeError)):
            (x * 2).sum().backward()


def test_hooks_returning_equal_shapes_and_dtypes_chain():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 3)
    x.register_hook(lambda g: None)
    x.register_hook(lambda g: g + 1)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [7.0, 13.0])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple),
    st.sampled_from(["tensor", "[tensor]", "(tensor,)", "array", "[None]"]),
)
def test_grad_outputs_of_a_single_output_in_every_spelling_pytorch_accepts(shape, spelling):
    """``grad(out, xs, grad_outputs=g)``, ``[g]`` (PyTorch's one-per-output list), ``(g,)`` and
    plain array data all mean the same upstream gradient; ``[g]`` was read as data of shape
    ``(1, *shape)`` and refused."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(shape))
    x_value, g_value = rng.normal(size=shape), rng.normal(size=shape)
    if spelling == "[None]":
        shape, x_value, g_value = (), np.asarray(1.5), np.asarray(1.0)
    x = Tensor(x_value, requires_grad=True)
    g = Tensor(g_value)
    given_as = {
        "tensor": g,
        "[tensor]": [g],
        "(tensor,)": (g,),
        "array": g_value,
        "[None]": [None],
    }[spelling]
    (ours,) = tg.grad(x * x, [x], grad_outputs=given_as)
    tx = torch.tensor(x_value, requires_grad=True)
    (theirs,) = torch.autograd.grad(tx * tx, [tx], grad_outputs=[torch.tensor(g_value)])
    np.testing.assert_allclose(ours.data, theirs.numpy())


# ----------------------------------------------------------------------------- grad's contract
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


# the same checks whether or not observers watch the sweep (the contract runs first)
class _VJPRecorder(Observer):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def vjp_applied(self, node, out, g, input_grads) -> None:
        self.seen.append(node.name)


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
    out = _bad_op(result).apply(a, b).sum()
    with observe(_VJPRecorder()) as recorder, pytest.raises(VJPError, match=message):
        out.backward()
    assert "bad_vjp" not in recorder.seen  # the sum's VJP was seen, the broken one never


@pytest.mark.parametrize(("result", "message"), BROKEN[1:])
def test_a_broken_gradient_for_an_input_without_grad_is_refused_too(result, message):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=not message.endswith("input 1"))
    with pytest.raises(VJPError, match=message):
        _bad_op(result).apply(a, b).sum().backward()


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
