"""Functional transforms against finite differences and, when installed, torch.func."""

from __future__ import annotations

import numpy as np
import pytest

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
