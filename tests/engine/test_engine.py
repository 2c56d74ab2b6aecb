"""The backward sweep: accumulation, graph lifetime, grad modes, higher order, errors."""

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
