"""Functional transforms against finite differences and, when installed, torch.func."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.forward import jvp, vjp
from tinygrad_edu.func import hessian, hvp, jacfwd, jacobian, jacrev

RNG = np.random.default_rng(0)
W, B, X = RNG.standard_normal((3, 4)), RNG.standard_normal(3), RNG.standard_normal(4)


# Each case: our function, the same maths in PyTorch (module passed in), its arguments.
def layer(w, b, x):
    return (w @ x + b).tanh()


def softmax_of_square(x):
    return (x * x).softmax(-1)


def scalar(x):
    return (x.exp() * x).sum() * (x * x).sum().sqrt()


def matrix_to_matrix(a):
    return (a @ a.T).sigmoid() * a[:, :1]


def _torch_layer(torch):
    return lambda w, b, x: torch.tanh(w @ x + b)


def _torch_softmax(torch):
    return lambda x: torch.softmax(x * x, -1)


def _torch_scalar(torch):
    return lambda x: (x.exp() * x).sum() * (x * x).sum().sqrt()


def _torch_matrix(torch):
    return lambda a: torch.sigmoid(a @ a.T) * a[:, :1]


CASES = {
    "layer": (layer, _torch_layer, (W, B, X)),
    "softmax": (softmax_of_square, _torch_softmax, (X,)),
    "scalar": (scalar, _torch_scalar, (X,)),
    "matrix": (matrix_to_matrix, _torch_matrix, (RNG.standard_normal((2, 3)),)),
}


def numeric_jacobian(f, args, position, eps=1e-6):
    """Central differences, element by element: shape out.shape + in.shape."""
    args = [np.array(a, dtype=np.float64) for a in args]
    out = f(*[Tensor(a) for a in args]).data
    x = args[position]
    columns = []
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f(*[Tensor(a) for a in args]).data
        x[index] = original - eps
        minus = f(*[Tensor(a) for a in args]).data
        x[index] = original
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(out.shape + x.shape)


ARGNUMS = {"layer": (0, 1, 2), "softmax": 0, "scalar": 0, "matrix": 0}


@pytest.mark.parametrize("transform", [jacrev, jacfwd, jacobian], ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobians_match_finite_differences(transform, name):
    f, _, args = CASES[name]
    argnums = ARGNUMS[name]
    result = transform(f, argnums)(*[Tensor(a) for a in args])
    positions = argnums if isinstance(argnums, tuple) else (argnums,)
    results = result if isinstance(argnums, tuple) else (result,)
    for position, jac in zip(positions, results):
        expected = numeric_jacobian(f, args, position)
        assert jac.shape == expected.shape
        np.testing.assert_allclose(jac.data, expected, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch_func(name):
    torch = pytest.importorskip("torch")
    f, torch_f, args = CASES[name]
    torch_f = torch_f(torch)
    argnums = ARGNUMS[name]
    ours_args = [Tensor(a) for a in args]
    theirs_args = [torch.tensor(a) for a in args]
    for ours, theirs in [(jacrev, torch.func.jacrev), (jacfwd, torch.func.jacfwd)]:
        mine = ours(f, argnums)(*ours_args)
        reference = theirs(torch_f, argnums)(*theirs_args)
        mine = mine if isinstance(argnums, tuple) else (mine,)
        reference = reference if isinstance(argnums, tuple) else (reference,)
        for a, b in zip(mine, reference):
            np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-12)
    tangents = [RNG.standard_normal(np.shape(a)) for a in args]
    out, t = jvp(f, ours_args, [Tensor(u) for u in tangents])
    ref_out, ref_t = torch.func.jvp(torch_f, tuple(theirs_args), tuple(map(torch.tensor, tangents)))
    np.testing.assert_allclose(out.data, ref_out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.data, ref_t.numpy(), rtol=1e-10, atol=1e-12)
    cotangent = RNG.standard_normal(out.shape)
    grads = vjp(f, *ours_args)[1](Tensor(cotangent))
    ref_grads = torch.func.vjp(torch_f, *theirs_args)[1](torch.tensor(cotangent))
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-12)


def test_hessian_and_hvp_against_torch_func():
    torch = pytest.importorskip("torch")
    x, v = RNG.standard_normal(4), RNG.standard_normal(4)
    expected = torch.func.hessian(_torch_scalar(torch))(torch.tensor(x)).numpy()
    np.testing.assert_allclose(hessian(scalar)(Tensor(x)).data, expected, rtol=1e-10)
    value, (hv,) = hvp(scalar, (Tensor(x),), (Tensor(v),))
    assert value.item() == pytest.approx(scalar(Tensor(x)).item())
    np.testing.assert_allclose(hv.data, expected @ v, rtol=1e-10)


def test_hessian_matches_finite_differences_of_the_gradient():
    x = RNG.standard_normal(3)

    def gradient(x):
        return jacrev(scalar)(x)

    expected = numeric_jacobian(gradient, [x], 0)
    np.testing.assert_allclose(hessian(scalar)(Tensor(x)).data, expected, atol=1e-7, rtol=1e-6)


def test_every_composition_of_the_two_modes_gives_the_same_hessian():
    x = Tensor(RNG.standard_normal(3))
    reference = hessian(scalar)(x).data
    for outer in (jacfwd, jacrev):
        for inner in (jacfwd, jacrev):
            np.testing.assert_allclose(outer(inner(scalar))(x).data, reference, rtol=1e-12)


def test_hessian_of_several_arguments_is_a_nested_tuple():
    def f(a, b):
        return (a * a * b).sum()

    a, b = Tensor(np.array([1.0, 2.0])), Tensor(np.array([3.0, 5.0]))
    (haa, hab), (hba, hbb) = hessian(f, (0, 1))(a, b)
    np.testing.assert_allclose(haa.data, np.diag(2 * b.data))
    np.testing.assert_allclose(hab.data, np.diag(2 * a.data))
    np.testing.assert_allclose(hba.data, np.diag(2 * a.data))
    np.testing.assert_allclose(hbb.data, np.zeros((2, 2)))


def test_tuple_outputs_give_a_tuple_of_jacobians():
    x = Tensor(np.array([1.0, 2.0]))
    for transform in (jacrev, jacfwd):
        j_square, j_sum = transform(lambda x: (x * x, x.sum()))(x)
        np.testing.assert_allclose(j_square.data, np.diag([2.0, 4.0]))
        np.testing.assert_allclose(j_sum.data, [1.0, 1.0])


def test_shapes_for_scalars_and_empty_arguments():
    s = Tensor(np.array(2.0))
    for transform in (jacrev, jacfwd):
        assert transform(lambda s: s * s)(s).shape == ()
        assert transform(lambda s: s * s)(s).item() == 4.0
        empty = transform(lambda e, s: e.sum() * s)(Tensor(np.zeros((0, 2))), s)
        assert empty.shape == (0, 2)


def test_jacobian_auto_picks_the_cheaper_mode(monkeypatch):
    from tinygrad_edu import func

    used = []
    for name in ("jacfwd", "jacrev"):
        original = getattr(func, name)
        monkeypatch.setattr(
            func, name, lambda f, a, _o=original, _n=name: used.append(_n) or _o(f, a)
        )
    jacobian(lambda x: x.sum())(Tensor(np.ones(5)))  # n = 5 inputs, m = 1 output
    jacobian(lambda x: x * Tensor(np.ones((4, 1))))(Tensor(np.ones(2)))  # n = 2, m = 8
    assert used == ["jacrev", "jacfwd"]


def test_bad_arguments_are_named():
    x = Tensor(np.ones(2))
    with pytest.raises(ValueError, match="argnums 3"):
        jacrev(lambda x: x, 3)(x)
    with pytest.raises(ValueError, match="mode"):
        jacobian(lambda x: x, mode="sideways")
    with pytest.raises(ValueError, match="scalar"):
        hvp(lambda x: x * 2, (x,), (x,))


# ------------------------------------------------------------------ dtypes across forward/reverse
FLOATS = (np.float32, np.float64)


def _cubed(c):
    return lambda x: ((x * c) ** 3).sum()


def _second_order_paths(f, x):
    """The Hessian of ``f`` at ``x`` by every route that mixes the two modes."""
    ones = Tensor(np.ones(x.shape, dtype=x.dtype))
    return {
        "hessian": hessian(f)(x),
        "jacfwd(jacrev)": jacfwd(jacrev(f))(x),
        "jacrev(jacrev)": jacrev(jacrev(f))(x),
        "jacrev(jacfwd)": jacrev(jacfwd(f))(x),
        "hvp": hvp(f, (x,), (ones,))[1][0],
    }


@pytest.mark.parametrize("x_dtype", FLOATS)
@pytest.mark.parametrize("c_dtype", FLOATS)
def test_second_derivatives_survive_mixed_dtypes(x_dtype, c_dtype):
    """Forward over reverse through a float32 input meeting a float64 constant: the gradient's
    cast back to float32 must keep its tangent (it gave zeros)."""
    values = np.array([1.0, 2.0, -0.5])
    c = np.array([1.5, 2.0, 0.5], dtype=c_dtype)
    x = Tensor(values.astype(x_dtype))
    expected = np.diag(6 * c.astype(np.float64) ** 3 * values)  # d^2/dx^2 (c x)^3
    rtol = 1e-12 if np.float32 not in (x_dtype, c_dtype) else 1e-5
    for route, h in _second_order_paths(_cubed(Tensor(c)), x).items():
        want = np.diag(expected) if route == "hvp" else expected
        np.testing.assert_allclose(h.data, want, rtol=rtol, err_msg=route)
        assert h.dtype == x_dtype, route


@pytest.mark.parametrize("x_dtype", FLOATS)
@pytest.mark.parametrize("c_dtype", FLOATS)
def test_grad_returns_the_input_dtype_and_stays_differentiable(x_dtype, c_dtype):
    x = Tensor(np.array([1.0, -2.0], dtype=x_dtype), requires_grad=True)
    c = Tensor(np.array([0.5, 3.0], dtype=c_dtype))
    for create_graph in (False, True):
        (g,) = tg.grad(_cubed(c)(x), [x], create_graph=create_graph)
        assert g.dtype == x_dtype
        assert g.requires_grad == create_graph
    (gg,) = tg.grad(g.sum(), [x])  # the cast is part of the recorded graph
    np.testing.assert_allclose(gg.data, 6 * c.data.astype(float) ** 3 * [1.0, -2.0], rtol=1e-5)
    assert gg.dtype == x_dtype


@pytest.mark.parametrize(
    ("x_dtype", "c_dtype"), [(np.float32, np.float64), (np.float64, np.float32)]
)
def test_backward_with_create_graph_accumulates_in_the_leafs_dtype_and_stays_differentiable(
    x_dtype, c_dtype
):
    """``.grad`` of a float32 leaf stayed float64 after ``backward(create_graph=True)``
    (PyTorch keeps the leaf's dtype), and twice accumulated it must still be differentiable."""
    x = Tensor(np.array([1.0, -2.0], dtype=x_dtype), requires_grad=True)
    c = Tensor(np.array([0.5, 3.0], dtype=c_dtype))
    _cubed(c)(x).backward(create_graph=True)
    _cubed(c)(x).backward(create_graph=True)
    assert x.grad.dtype == x_dtype and x.grad.requires_grad
    (gg,) = tg.grad(x.grad.sum(), [x])
    np.testing.assert_allclose(gg.data, 12 * c.data.astype(float) ** 3 * [1.0, -2.0], rtol=1e-5)


def test_grad_of_mixed_dtypes_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.array([1.0, 2.0, -0.5], dtype=np.float32)
    c = np.array([1.5, 2.0, 0.5])
    (g,) = tg.grad(_cubed(Tensor(c))(xt := Tensor(x, requires_grad=True)), [xt], create_graph=True)
    theirs = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad(((theirs * torch.tensor(c)) ** 3).sum(), theirs, create_graph=True)
    assert str(g.dtype) == str(gt.dtype).removeprefix("torch.")
    ht = torch.func.hessian(lambda t: ((t * torch.tensor(c)) ** 3).sum())(torch.tensor(x))
    np.testing.assert_allclose(hessian(_cubed(Tensor(c)))(Tensor(x)).data, ht.numpy(), rtol=1e-5)


# ------------------------------------------------------------------ vjp under no_grad, argnums
def test_vjp_under_no_grad_records_nothing_like_torch_func():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tg.no_grad():
        out, vjp_fn = vjp(lambda t: (t * t * t).sum(), x)
        (g,) = vjp_fn(Tensor(np.array(1.0)))
    np.testing.assert_allclose(g.data, [3.0, 12.0])  # the transform still works
    for t in (out, g):
        assert not t.requires_grad and t._node is None  # nothing links them to x's graph
    (g_again,) = vjp_fn(Tensor(np.array(2.0)))  # outside no_grad later: still not linked to x
    assert not g_again.requires_grad
    assert x.grad is None
    torch = pytest.importorskip("torch")
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        out_t, vjp_t = torch.func.vjp(lambda t: (t * t * t).sum(), xt)
        (gt,) = vjp_t(torch.tensor(1.0))
    assert out_t.requires_grad == out.requires_grad and gt.requires_grad == g.requires_grad
    np.testing.assert_allclose(g.data, gt.numpy())


def test_transforms_under_no_grad_give_plain_results():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tg.no_grad():
        h = hessian(_cubed(Tensor(np.ones(2))))(x)
        j = jacrev(lambda t: t**3)(x)
        _, (hv,) = hvp(_cubed(Tensor(np.ones(2))), (x,), (Tensor(np.ones(2)),))
    np.testing.assert_allclose(h.data, np.diag([6.0, 12.0]))
    np.testing.assert_allclose(j.data, np.diag([3.0, 12.0]))
    np.testing.assert_allclose(hv.data, [6.0, 12.0])
    assert not any(t.requires_grad for t in (h, j, hv))


@pytest.mark.parametrize("transform", [jacrev, jacfwd, hessian, jacobian])
@pytest.mark.parametrize("argnums", [(0, 0), (1, -1), (0, 1, 0)])
def test_duplicate_argnums_are_refused(transform, argnums):
    a, b = Tensor(np.ones(2)), Tensor(np.ones(2))
    with pytest.raises(ValueError, match="twice"):
        transform(lambda a, b: (a * b).sum(), argnums)(a, b)


@pytest.mark.parametrize("transform", [jacrev, jacfwd, hessian, jacobian])
@pytest.mark.parametrize("argnums", [1.0, "0", None, (0, 1.0), {0}])
def test_argnums_that_are_not_ints_are_refused_by_name(transform, argnums):
    a, b = Tensor(np.ones(2)), Tensor(np.ones(2))
    with pytest.raises(TypeError, match="argnums"):
        transform(lambda a, b: (a * b).sum(), argnums)(a, b)


@pytest.mark.parametrize("argnums", [np.int64(1), (np.int32(0), 1)])
def test_numpy_integer_argnums_name_their_positions(argnums):
    a, b = Tensor(np.array([1.0, 2.0])), Tensor(np.array([3.0, 4.0]))
    result = jacrev(lambda a, b: a * b, argnums)(a, b)
    if isinstance(argnums, tuple):
        expected = jacrev(lambda a, b: a * b, (0, 1))(a, b)
        assert isinstance(result, tuple) and len(result) == 2
    else:
        expected, result = (jacrev(lambda a, b: a * b, 1)(a, b),), (result,)
    for got, want in zip(result, expected):
        np.testing.assert_array_equal(got.data, want.data)


# ------------------------------------------------------------------ randomness and state updates
def _bn_model():
    from tinygrad_edu import nn

    return nn.BatchNorm1d(3)


def _dropout_model():
    from tinygrad_edu import nn

    return nn.Dropout(0.5, rng=0)


REPEATING = {
    "jacfwd": lambda f, x: jacfwd(f)(x),
    "hessian": lambda f, x: hessian(f)(x),
    "jacobian_auto": lambda f, x: jacobian(f)(x),
    "jacobian_fwd": lambda f, x: jacobian(f, mode="fwd")(x),
}


@pytest.mark.parametrize("make", [_bn_model, _dropout_model], ids=["batch_norm", "dropout"])
@pytest.mark.parametrize("route", sorted(REPEATING))
def test_transforms_that_rerun_the_function_refuse_randomness_and_state_updates(make, route):
    model = make()
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)))
    state = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match=r"(dropout|batch_norm) .* evaluates the function"):
        REPEATING[route](lambda t: (model(t) ** 2).sum(), x)
    for k, v in model.state_dict().items():  # refused before any update
        np.testing.assert_array_equal(v, state[k])
    model.eval()  # deterministic and stateless: allowed, and the same as reverse mode
    got = REPEATING[route](lambda t: (model(t) ** 2).sum(), x)
    if route != "hessian":
        np.testing.assert_allclose(got.data, jacrev(lambda t: (model(t) ** 2).sum())(x).data)


@pytest.mark.parametrize("make", [_bn_model, _dropout_model], ids=["batch_norm", "dropout"])
def test_transforms_that_run_the_function_once_accept_training_mode(make):
    model = make()
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)))
    f = lambda t: (model(t) ** 2).sum()  # noqa: E731
    assert jacrev(f)(x).shape == (4, 3)
    assert jvp(f, (x,), (Tensor(np.ones((4, 3))),))[1].shape == ()
    assert vjp(f, x)[1](Tensor(np.array(1.0)))[0].shape == (4, 3)
    assert hvp(f, (x,), (Tensor(np.ones((4, 3))),))[1][0].shape == (4, 3)


def test_jacfwd_refuses_randomness_like_torch_func():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.func.jacfwd(lambda t: torch.nn.functional.dropout(t, 0.5))(torch.ones(3))
    with pytest.raises(RuntimeError, match="dropout"):
        jacfwd(lambda t: tg.nn.functional.dropout(t, 0.5))(Tensor(np.ones(3)))
