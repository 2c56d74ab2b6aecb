"""Behaviour of the op breadth beyond the op-spec table: PyTorch's aliases, result dtypes, ops
without gradient, exact gradients at zeros and ties, stability at +-1000, creation functions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays, axes, shapes

ACTIVATIONS = {
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "selu": F.selu,
    "celu": F.celu,
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softplus": F.softplus,
    "softplus_beta": lambda x: F.softplus(x, beta=3.0, threshold=5.0),
    "mish": F.mish,
    "hardtanh": F.hardtanh,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "relu6": F.relu6,
    "logsigmoid": F.logsigmoid,
    "softsign": F.softsign,
}


def _x(values, requires_grad=True):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ------------------------------------------------------------------------ stability at +-1000
@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_is_finite_and_silent_at_extremes(name, dtype):
    x = Tensor(np.array([-1000.0, -30.0, 0.5, 30.0, 1000.0], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = ACTIVATIONS[name](x)
        (g,) = tg.grad(y.sum(), [x], create_graph=True)
        gg = tg.grad(g.sum(), [x], allow_unused=True)[0] if g.requires_grad else None
    assert y.dtype == dtype and g.dtype == dtype
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(g.data))
    assert gg is None or np.all(np.isfinite(gg.data))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_pytorch_at_extremes(name):
    torch = pytest.importorskip("torch")
    torch_f = torch.nn.functional
    variants = {
        "gelu_tanh": lambda x: torch_f.gelu(x, approximate="tanh"),
        "softplus_beta": lambda x: torch_f.softplus(x, beta=3.0, threshold=5.0),
    }
    theirs = variants[name] if name in variants else getattr(torch_f, name)
    values = np.array([-1000.0, -30.0, -1.5, 0.5, 2.5, 30.0, 1000.0])
    x = _x(values)
    xt = torch.tensor(values, requires_grad=True)
    y, yt = ACTIVATIONS[name](x), theirs(xt)
    (g,) = tg.grad(y.sum(), [x])
    (gt,) = torch.autograd.grad(yt.sum(), [xt])
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12, atol=1e-300)
    # PyTorch's hardsigmoid VJP multiplies by 1/6 rounded to float32; ours is exact
    np.testing.assert_allclose(
        g.data, gt.numpy(), rtol=1e-7 if name == "hardsigmoid" else 1e-12, atol=1e-300
    )


def test_logsumexp_is_stable():
    x = _x([[1000.0, 1000.0], [-1000.0, -1000.0]])
    y = x.logsumexp(axis=1)
    np.testing.assert_allclose(y.data, [1000 + math.log(2), -1000 + math.log(2)])
    (g,) = tg.grad(y.sum(), [x])
    np.testing.assert_allclose(g.data, np.full((2, 2), 0.5))
    assert Tensor(np.array([-np.inf, -np.inf])).logsumexp().item() == -np.inf


def test_erf_is_float64_accurate():
    """Cody's rational approximations, vectorised: within 2 ulp of C's erf everywhere."""
    values = np.concatenate(
        [np.linspace(-30, 30, 6001), np.geomspace(1e-300, 6, 300), [0.46875, 4]]
    )
    expected = np.array([math.erf(v) for v in values])
    np.testing.assert_allclose(_x(values).erf().data, expected, rtol=5e-16, atol=0)
    assert Tensor(np.array([0.5], dtype=np.float32)).erf().dtype == np.float32
    special = Tensor(np.array([np.inf, -np.inf, np.nan, -0.0])).erf().data
    assert special[:2].tolist() == [1.0, -1.0] and np.isnan(special[2]) and special[3] == 0


# ------------------------------------------------------------------- exact gradients, edge cases
@pytest.mark.parametrize(
    "values", [[2.0, 3.0, 4.0], [2.0, 0.0, 4.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.0]]
)
def test_prod_and_cumprod_with_zeros_to_second_order(values):
    for fn in (lambda t: t.prod(), lambda t: t.cumprod(0), lambda t: t.reshape(1, -1).prod(1)):
        assert tg.gradcheck(fn, [_x(values)])
        assert tg.gradgradcheck(fn, [_x(values)])
    x = _x(values)
    (g,) = tg.grad(x.prod(), [x])
    others = [np.prod(np.delete(values, i)) for i in range(len(values))]
    np.testing.assert_array_equal(g.data, others)


def test_cumprod_with_zeros_matches_pytorch():
    torch = pytest.importorskip("torch")
    values = np.array([[1.5, 0.0, 2.0, 0.0, 3.0], [0.0, 0.5, -2.0, 1.0, 4.0]])
    upstream = np.arange(10.0).reshape(2, 5) - 4
    x, xt = _x(values), torch.tensor(values, requires_grad=True)
    (g,) = tg.grad(x.cumprod(dim=1), [x], grad_outputs=Tensor(upstream))
    (gt,) = torch.autograd.grad(xt.cumprod(1), [xt], torch.tensor(upstream))
    np.testing.assert_allclose(g.data, gt.numpy(), rtol=1e-12)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_elementwise_ties_split_the_gradient_like_pytorch(op):
    a, b = _x([1.0, 2.0, 3.0]), _x([1.0, 0.0, 3.0])
    (ga, gb) = tg.grad(getattr(a, op)(b).sum(), [a, b])
    np.testing.assert_array_equal(ga.data, [0.5, 1.0 if op == "maximum" else 0.0, 0.5])
    np.testing.assert_array_equal(ga.data + gb.data, [1.0, 1.0, 1.0])


@pytest.mark.parametrize("method", ["max", "min"])
def test_reductions_over_one_axis_send_ties_to_the_first_and_return_values(method):
    """``max(axis)`` is ``torch.max(x, dim)``: the gradient goes to the first extreme (it was
    split evenly, which is ``torch.amax``'s rule, kept by :meth:`Tensor.amax`)."""
    x = _x([[1.0, 5.0, 5.0], [2.0, 2.0, -1.0]])
    y = getattr(x, method)(axis=1)
    assert isinstance(y, Tensor) and y.shape == (2,)
    (g,) = tg.grad(y.sum(), [x])
    expected = [[0, 1, 0], [1, 0, 0]] if method == "max" else [[1, 0, 0], [0, 0, 1]]
    np.testing.assert_array_equal(g.data, expected)
    (g,) = tg.grad(getattr(x, "a" + method)(axis=1).sum(), [x])
    expected = [[0, 0.5, 0.5], [0.5, 0.5, 0]] if method == "max" else [[1, 0, 0], [0, 0, 1]]
    np.testing.assert_array_equal(g.data, expected)


def _reference_extreme(x, g, method, axis, keepdims):
    """Plain NumPy: over one axis (``max``/``min`` with an int) the first extreme of each slice
    gets the gradient; otherwise the tied extremes share it equally."""
    pick = np.max if method.endswith("max") else np.min
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = tuple(a % max(x.ndim, 1) for a in axes) if x.ndim else ()
    g = g if keepdims else np.expand_dims(g, axes)
    if method in ("max", "min") and isinstance(axis, int) and x.ndim:
        first = (np.argmax if method == "max" else np.argmin)(x, axis=axes[0], keepdims=True)
        share = np.zeros_like(x)
        np.put_along_axis(share, first, 1.0, axis=axes[0])
    else:
        winners = (x == pick(x, axis=axes, keepdims=True)).astype(float)
        share = winners / winners.sum(axis=axes, keepdims=True)
    return share * g


def _torch_extreme(torch, t, method, axis, keepdims):
    if method in ("max", "min") and isinstance(axis, int) and t.ndim:
        return getattr(torch, method)(t, dim=axis, keepdim=keepdims).values
    if method in ("max", "min") and axis is None and not keepdims:
        return getattr(torch, method)(t)  # torch.max(x): the maxima share the gradient
    name = {"max": "amax", "min": "amin"}.get(method, method)
    dims = tuple(range(t.ndim)) if axis is None else axis
    return getattr(torch, name)(t, dim=dims, keepdim=keepdims) if t.ndim else t * 1


@given(data=st.data())
def test_max_and_min_with_ties_route_gradients_like_pytorch(data):
    """Integer-valued inputs (many ties), every spelling of the axes, both modes: ``max``/``min``
    over one axis pick the first extreme, over all axes or a tuple (and ``amax``/``amin``
    always) share it -- as torch.max(dim) / torch.max() / torch.amax do."""
    shape = data.draw(shapes(min_dims=0), label="shape")
    x = data.draw(arrays(shape, low=0, high=2, spacing=1.0), label="x")
    method = data.draw(st.sampled_from(["max", "min", "amax", "amin"]), label="method")
    axis = data.draw(axes(len(shape)) if shape else st.none(), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    t = _x(x)
    y = getattr(t, method)(axis=axis, keepdims=keepdims)
    g = np.random.default_rng(0).standard_normal(y.shape)
    (gx,) = tg.grad(y, [t], grad_outputs=Tensor(g))
    expected = _reference_extreme(x, g, method, axis, keepdims)
    np.testing.assert_allclose(gx.data, expected, rtol=1e-12, atol=1e-15)
    u = np.random.default_rng(1).standard_normal(x.shape)
    _, ju = tg.jvp(lambda a: getattr(a, method)(axis=axis, keepdims=keepdims), (_x(x),), (_x(u),))
    np.testing.assert_allclose(np.vdot(g, ju.data), np.vdot(expected, u), rtol=1e-10, atol=1e-12)
    try:
        import torch
    except ImportError:
        return
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_extreme(torch, xt, method, axis, keepdims)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    (gt,) = torch.autograd.grad(yt, [xt], torch.tensor(g).reshape(yt.shape))
    np.testing.assert_allclose(gx.data, gt.numpy(), rtol=1e-12, atol=1e-15)


def test_norm_gradient_at_zero_is_zero_like_pytorch():
    for p in (2, 1, math.inf):
        x = _x(np.zeros((2, 3)))
        (g,) = tg.grad(x.norm(p=p, dim=1).sum(), [x])
        np.testing.assert_array_equal(g.data, np.zeros((2, 3)))
    x = _x([3.0, -4.0])
    assert x.norm().item() == 5.0 and x.norm(1).item() == 7.0 and x.norm(math.inf).item() == 4.0
    assert Tensor(np.array([1e200, 1e200])).norm().item() == pytest.approx(math.sqrt(2) * 1e200)
    with pytest.raises(ValueError, match="p must be"):
        x.norm(p=3)


def test_var_and_std_follow_pytorch_correction():
    data = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 9.0]])
    x = _x(data)
    np.testing.assert_allclose(x.var(axis=1).data, data.var(axis=1, ddof=1))
    np.testing.assert_allclose(x.var(1, correction=0).data, data.var(axis=1))
    np.testing.assert_allclose(x.std(dim=0, keepdim=True).data, data.std(0, ddof=1, keepdims=True))


# ------------------------------------------------------------------------- no-gradient ops
def test_piecewise_constant_ops_have_zero_gradient():
    x = _x([-1.5, -0.2, 0.7, 2.5])
    for fn in ("sign", "floor", "ceil", "round", "trunc"):
        (g,) = tg.grad(getattr(x, fn)().sum(), [x], allow_unused=True)
        assert g is None or not np.any(g.data)
    divisor = _x([0.7])
    for g in tg.grad((x // divisor).sum(), [x, divisor], allow_unused=True):
        assert g is None or not np.any(g.data)
    np.testing.assert_array_equal(x.round().data, np.round(x.data))  # half to even, like PyTorch
    assert Tensor(np.array([0.5, 1.5, 2.5])).round().data.tolist() == [0.0, 2.0, 2.0]


def test_comparisons_and_predicates_return_boolean_constants():
    x = _x([1.0, np.nan, np.inf, -2.0])
    y = Tensor(np.array([1.0, 0.0, 0.0, 0.0]))
    for result in (x < y, x <= y, x > y, x >= y, x == y, x != y, x == 1.0, 1.0 == x,  # noqa: SIM300
                   x.isnan(), x.isinf(), x.isfinite(), (x > 0) & (x < 5), ~(x > 0),
                   (x > 0) | x.isnan(), (x > 0).logical_xor(x.isinf()),
                   x.isfinite().logical_not(), (x > 0).logical_and(y > 0),
                   (x > 0).logical_or(y > 0), x.any(), x.all(dim=0)):  # fmt: skip
        assert result.dtype == bool and not result.requires_grad and result._node is None
    assert (x == y).data.tolist() == [True, False, False, False]
    assert (x != y).data.tolist() == [False, True, True, True]
    with pytest.raises(TypeError, match="boolean or integer"):
        _ = x & y


def test_elementwise_eq_keeps_identity_semantics_for_hashing():
    """``==`` is elementwise (as in NumPy and PyTorch); dicts and sets still key by identity."""
    a, b = Tensor(np.ones(3)), Tensor(np.ones(3))
    assert {a: 1, b: 2}[b] == 2 and len({a, b}) == 2 and b in {a, b}
    assert a in [a, b]  # found by identity before any comparison
    with pytest.raises(ValueError, match="ambiguous"):
        _ = b in [a, b]  # like PyTorch: comparing with a first asks bool() of a 3-element mask


def test_argmax_argmin_are_int64_without_graph():
    x = _x([[1.0, 7.0, 7.0], [4.0, -1.0, 0.0]])
    assert x.argmax().item() == 1 and x.argmin().item() == 4
    assert x.argmax(dim=1).data.tolist() == [1, 0]
    assert x.argmin(axis=1, keepdims=True).shape == (2, 1)
    assert x.argmax(1).dtype == np.int64 and x.argmax(1)._node is None


def test_astype_differentiates_between_floats_only():
    x = _x([1.25, -2.5])
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    (g,) = tg.grad((y * y).sum(), [x])
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g.data, [2.5, -5.0])
    assert x.astype(np.float64) is x
    as_int = x.astype(np.int64)
    assert as_int.dtype == np.int64 and not as_int.requires_grad


# --------------------------------------------------------------------------- aliases and APIs
def test_dim_and_keepdim_aliases_everywhere():
    data = np.arange(24.0).reshape(2, 3, 4) / 10
    x = Tensor(data)
    for method in ("sum", "mean", "max", "min", "prod", "var", "std", "logsumexp", "norm"):
        ours = getattr(x, method)(axis=1, keepdims=True)
        alias = getattr(x, method)(dim=1, keepdim=True)
        np.testing.assert_array_equal(ours.data, alias.data, err_msg=method)
    for method in ("softmax", "log_softmax", "cumsum", "cumprod"):
        np.testing.assert_array_equal(
            getattr(x, method)(axis=0).data, getattr(x, method)(dim=0).data, err_msg=method
        )
    assert x.squeeze(dim=0).shape == x.shape and x.unsqueeze(dim=1).shape == (2, 1, 3, 4)
    assert x.flip(dims=(0,)).data[0, 0, 0] == data[1, 0, 0]
    assert Tensor.stack([x, x], dim=1).shape == (2, 2, 3, 4)
    assert tg.cat([x, x], dim=2).shape == (2, 3, 8)
    assert x.flatten(start_dim=1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    with pytest.raises(TypeError, match="not both"):
        x.sum(axis=0, dim=1)
    with pytest.raises(TypeError, match="needs an axis"):
        x.cumsum()


def test_numpy_spellings_and_torch_spellings_agree():
    x = _x([0.25, -0.5])
    for numpy_name, torch_name in [("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"),
                                   ("arcsinh", "asinh"), ("arctanh", "atanh")]:  # fmt: skip
        np.testing.assert_array_equal(getattr(x, numpy_name)().data, getattr(x, torch_name)().data)
    assert x.expand_dims(0).shape == x.unsqueeze(0).shape == (1, 2)
    assert x.clamp(min=0).data.tolist() == [0.25, 0.0]


def test_numpy_functions_dispatch_to_differentiable_methods():
    x = _x([[0.5, -0.75], [2.0, 0.25]])
    for fn in (np.sin, np.cos, np.tanh, np.log1p, np.square, np.sign, np.floor):
        result = fn(x)
        assert isinstance(result, Tensor) and result.requires_grad, fn.__name__
        np.testing.assert_allclose(result.data, fn(x.data))
    for fn, args in [(np.maximum, (x, 0.0)), (np.minimum, (x, 0.0)), (np.mod, (x, 0.75)),
                     (np.prod, (x,)), (np.min, (x,)), (np.cumsum, (x, 1)), (np.var, (x,)),
                     (np.std, (x,)), (np.flip, (x, 0)), (np.moveaxis, (x, 0, 1)),
                     (np.squeeze, (x[:1],)), (np.expand_dims, (x, 0)), (np.tile, (x, 2)),
                     (np.roll, (x, 1)), (np.where, (x.data > 0, x, 0.0)),
                     (np.einsum, ("ij,jk->ik", x, x)), (np.tensordot, (x, x, 1))]:  # fmt: skip
        result = fn(*args)
        assert isinstance(result, Tensor) and result.requires_grad, fn.__name__
        plain = [a.data if isinstance(a, Tensor) else a for a in args]
        np.testing.assert_allclose(result.data, fn(*plain), err_msg=fn.__name__)  # ddof 0 too
    assert np.isnan(x).dtype == bool and np.greater(x, 0).dtype == bool
    assert np.argmax(x) == 2


def test_shape_helpers_validate_their_arguments():
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="add up"):
        x.split([1, 1], dim=1)
    with pytest.raises(tg.ShapeError, match="index of shape"):
        x.gather(1, np.zeros((2,), dtype=np.int64))
    with pytest.raises(IndexError, match="out of range"):
        x.gather(1, np.full((2, 1), 3))
    with pytest.raises(TypeError, match="integers"):
        x.gather(1, np.full((2, 1), 0.5))
    with pytest.raises(ValueError, match="ellipses"):
        tg.einsum("...i,i->...", x, x)
    with pytest.raises(ValueError, match="repeated label"):
        tg.einsum("ii->i", Tensor(np.eye(2)))
    with pytest.raises(ValueError, match="names 2 operands"):
        tg.einsum("ij,jk->ik", x)
    with pytest.raises(tg.ShapeError, match="at least 2 axes"):
        Tensor(np.zeros(3)).tril()
    with pytest.raises(TypeError, match="boolean"):
        x.masked_fill(np.zeros((2, 3)), 1.0)
    with pytest.raises(ValueError, match="repeat"):
        x.repeat(2)


def test_scatter_add_uses_the_index_shaped_part_of_a_larger_src():
    x = _x(np.zeros((2, 3)))
    src = _x(np.arange(8.0).reshape(2, 4))
    index = np.array([[0, 0], [2, 1]])
    y = x.scatter_add(1, index, src)
    np.testing.assert_array_equal(y.data, [[1.0, 0.0, 0.0], [0.0, 5.0, 4.0]])
    (gx, gs) = tg.grad((y * Tensor(np.arange(6.0).reshape(2, 3))).sum(), [x, src])
    np.testing.assert_array_equal(gs.data, [[0.0, 0.0, 0.0, 0.0], [5.0, 4.0, 0.0, 0.0]])
    np.testing.assert_array_equal(gx.data, np.arange(6.0).reshape(2, 3))


def test_split_chunk_and_friends_follow_pytorch():
    x = Tensor(np.arange(10.0))
    assert [p.shape[0] for p in x.split(4)] == [4, 4, 2]
    assert [p.shape[0] for p in x.chunk(3)] == [4, 4, 2]
    assert [p.shape[0] for p in x.chunk(6)] == [2, 2, 2, 2, 2]
    assert x.reshape(2, 5).repeat(2, 1).shape == (4, 5)
    assert x.repeat_interleave(2).data[:4].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert tg.hstack([x, x]).shape == (20,) and tg.vstack([x, x]).shape == (2, 10)
    assert x.reshape(2, 5).diagonal(1).data.tolist() == [1.0, 7.0]
    assert x.reshape(2, 5).expand(3, -1, -1).shape == (3, 2, 5)
    assert x.unflatten(0, (2, -1)).shape == (2, 5)
    assert x.reshape(2, 5).permute(1, 0).shape == (5, 2)
    assert x.reshape(2, 5).moveaxis(0, -1).shape == (5, 2)


def test_one_hot_is_int64():
    y = tg.one_hot(Tensor([0, 2, 1]), 4)
    assert y.dtype == np.int64 and y.shape == (3, 4) and y.data.sum() == 3
    assert tg.one_hot(np.array([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(ValueError, match="class values"):
        tg.one_hot(np.array([4]), 3)


def test_where_promotes_numbers_and_accepts_tensor_conditions():
    x = Tensor(np.array([1.0, -2.0], dtype=np.float32), requires_grad=True)
    y = tg.where(x > 0, x, 0.0)
    assert y.dtype == np.float32 and y.data.tolist() == [1.0, 0.0]
    assert x.where(x < 0, 5.0).data.tolist() == [5.0, -2.0]
    (g,) = tg.grad(y.sum(), [x])
    assert g.data.tolist() == [1.0, 0.0] and g.dtype == np.float32
    assert x.masked_fill(x > 0, 0.0).data.tolist() == [0.0, -2.0]


def test_lerp_remainder_and_floor_divide_follow_pytorch_semantics():
    a, b = _x([-3.5, 3.5]), _x([2.0, -2.0])
    assert (a % b).data.tolist() == [0.5, -0.5]  # the sign of the divisor, like Python
    assert (a // b).data.tolist() == [-2.0, -2.0]
    assert (7.0 % Tensor(np.array([4.0]))).data.tolist() == [3.0]
    ga, gb = tg.grad((a % b).sum(), [a, b])
    assert ga.data.tolist() == [1.0, 1.0] and gb.data.tolist() == [2.0, 2.0]
    assert a.lerp(b, 0.25).data.tolist() == [-3.5 + 0.25 * 5.5, 3.5 - 0.25 * 5.5]


# ------------------------------------------------------------------------------- creation
def test_creation_functions_follow_pytorch_dtypes():
    assert tg.arange(5).dtype == np.int64 and tg.arange(5).data.tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(0, 1, 0.25).dtype == np.float32 and tg.arange(0, 1, 0.25).shape == (4,)
    assert tg.arange(1, 4, dtype=np.float64).dtype == np.float64
    assert tg.linspace(0, 1, 5).data.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert tg.eye(2, 3).data.tolist() == [[1, 0, 0], [0, 1, 0]]
    assert tg.full((2,), 7).dtype == np.int64 and tg.full(2, 0.5).dtype == np.float32
    assert tg.full((1,), True).dtype == bool
    x = Tensor(np.ones((2, 3), dtype=np.float64))
    assert tg.zeros_like(x).dtype == np.float64 and x.ones_like().data.sum() == 6
    assert x.full_like(2, dtype=np.float32).dtype == np.float32
    assert tg.zeros(2, 3).shape == (2, 3) and tg.ones((2,)).dtype == np.float32
    with pytest.raises(ValueError, match="step"):
        tg.arange(0, 1, 0)


def test_random_creation_is_reproducible_with_rng():
    for make in (tg.rand, tg.randn, tg.uniform, tg.normal):
        a, b = make(3, 4, rng=7), make((3, 4), rng=np.random.default_rng(7))
        assert a.shape == (3, 4) and a.dtype == np.float32
        np.testing.assert_array_equal(a.data, b.data)
    r = tg.rand(1000, rng=0).data
    assert r.min() >= 0 and r.max() < 1
    u = tg.uniform(1000, low=-2, high=-1, rng=0).data
    assert u.min() >= -2 and u.max() < -1
    n = tg.normal(4000, mean=3.0, std=0.5, rng=0, dtype=np.float64).data
    assert abs(n.mean() - 3.0) < 0.05 and abs(n.std() - 0.5) < 0.05
    ints = tg.randint(3, 6, size=(500,), rng=1)
    assert ints.dtype == np.int64 and set(ints.data.tolist()) == {3, 4, 5}
    assert tg.randint(2, size=(4,), rng=1).data.max() < 2
    assert tg.randn(2, rng=3, requires_grad=True).requires_grad


@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "round", "trunc"])
def test_piecewise_constant_ops_have_a_zero_gradient_not_none(name):
    """Like PyTorch: ``grad(floor(x).sum(), [x])`` is zeros, and an infinite upstream gradient
    gives zeros, not NaN."""
    x = Tensor(np.array([-1.5, 0.25, 2.5]), requires_grad=True)
    (g,) = tg.grad(getattr(x, name)().sum(), [x])
    np.testing.assert_array_equal(g.data, np.zeros(3))
    (g,) = tg.grad(getattr(x, name)(), [x], grad_outputs=np.full(3, np.inf))
    np.testing.assert_array_equal(g.data, np.zeros(3))
    (g,) = tg.grad((x // 2.0).sum(), [x])
    np.testing.assert_array_equal(g.data, np.zeros(3))


# ------------------------------------------------------------------------ softmax family edges
EMPTY_SHAPES = [(0,), (2, 0), (0, 3), (2, 0, 3)]


def _every_axis(ndim):
    singles = [*range(ndim), *range(-ndim, 0)]
    return [*singles, None, tuple(range(ndim)), tuple(range(ndim))[::-1]]


@pytest.mark.parametrize("method", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
def test_softmax_family_of_empty_tensors_matches_pytorch(method, shape):
    """Zero-size inputs, over every axis spelling: an empty result (softmax, log_softmax) or
    -inf for an empty sum (logsumexp), as in PyTorch -- not NumPy's zero-size error."""
    for axis in _every_axis(len(shape)):
        x = _x(np.zeros(shape))
        y = getattr(x, method)(axis)
        (g,) = tg.grad(y.sum(), [x])
        assert g.shape == shape
        zeros = (_x(np.zeros(shape)),)
        _, tangent = tg.jvp(lambda t, a=axis: getattr(t, method)(a), zeros, zeros)
        assert tangent.shape == y.shape
        torch = pytest.importorskip("torch")
        t = torch.zeros(shape, dtype=torch.float64)
        dims = tuple(range(len(shape))) if axis is None else axis
        if method == "logsumexp":
            expected = torch.logsumexp(t, dim=dims)
        elif isinstance(dims, int):
            expected = getattr(torch, method)(t, dim=dims)
        else:  # PyTorch's softmax takes one dim: the same maths through logsumexp
            lsm = t - torch.logsumexp(t, dim=dims, keepdim=True)
            expected = lsm.exp() if method == "softmax" else lsm
        np.testing.assert_array_equal(y.data, expected.numpy())


@given(data=st.data())
def test_softmax_over_several_axes_normalises_their_joint_slices(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape, low=-3, high=3), label="x")
    axis = data.draw(axes(len(shape), allow_none=True), label="axis")
    merged = tuple(range(len(shape))) if axis is None else axis
    merged = (merged,) if isinstance(merged, int) else merged
    y = _x(x).softmax(axis)
    np.testing.assert_allclose(y.data.sum(axis=merged), 1.0, rtol=1e-12)
    np.testing.assert_allclose(_x(x).log_softmax(axis).exp().data, y.data, rtol=1e-12)


def test_softmax_refuses_a_repeated_or_missing_axis_by_name():
    x = _x(np.ones((2, 3)))
    with pytest.raises(ValueError, match="repeats an axis"):
        x.softmax((1, -1))
    with pytest.raises(ValueError, match="out of range"):
        x.log_softmax(2)


# ------------------------------------------------------------------ clip with tensor bounds
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=6).flatmap(
        lambda xs: st.tuples(
            st.just(xs),
            st.lists(st.integers(-3, 3), min_size=len(xs), max_size=len(xs)),
            st.lists(st.integers(-3, 3), min_size=len(xs), max_size=len(xs)),
        )
    ),
    st.sampled_from(["both", "lo", "hi"]),
)
def test_clip_by_tensors_is_differentiable_in_every_argument_like_torch_clamp(values, bounds):
    """Tensor bounds used to recurse without end through NumPy's ``np.clip``. Integer-valued
    floats make ties (x at a bound) and crossed bounds (lo > hi) common."""
    x_v, lo_v, hi_v = (np.asarray(v, dtype=np.float64) for v in values)
    lo_v, hi_v = (lo_v if bounds != "hi" else None), (hi_v if bounds != "lo" else None)
    x = _x(x_v)
    lo, hi = (None if v is None else _x(v) for v in (lo_v, hi_v))
    weights = np.arange(1.0, x_v.size + 1)
    (x.clip(lo, hi) * Tensor(weights)).sum().backward()
    np.testing.assert_array_equal(x.clip(lo, hi).data, np.clip(x_v, lo_v, hi_v))
    torch = pytest.importorskip("torch")
    xt, lt, ht = (
        None if v is None else torch.tensor(v, requires_grad=True) for v in (x_v, lo_v, hi_v)
    )
    (torch.clamp(xt, lt, ht) * torch.tensor(weights)).sum().backward()
    for ours, theirs in ((x, xt), (lo, lt), (hi, ht)):
        if ours is not None:
            np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())


def test_clip_by_tensors_passes_gradcheck_away_from_ties():
    rng = np.random.default_rng(0)
    x, lo, hi = (_x(rng.normal(size=(3, 4))) for _ in range(3))
    assert tg.gradcheck(lambda a, b, c: a.clip(b, c - 2.0), [x, lo, hi])
