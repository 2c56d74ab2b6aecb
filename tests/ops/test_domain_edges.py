"""Edges of the domain: 0, -0, +-inf, huge and tiny values, saturated sigmoids.

Finite differences cannot step across an edge, so the oracle here is PyTorch (skipped when absent):
forward values and gradients must agree *including* where they are inf or NaN. The edge values are
few, so every value (and every pair, for binary ops) is tested, not a sample.

The piecewise-linear ops (``relu``, ``clip``, ``hardtanh``, ``relu6``, ``hardsigmoid``,
``maximum``/``minimum``, the fused ``conv2d_relu`` on every kernel path) route an inf or NaN
upstream gradient or tangent like PyTorch: +0 where the slope is 0, in both modes; away from
their kinks their second derivatives match finite differences.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.kernel_references import (
    FLOATS,
    POISON,
    out_size,
    reference_conv,
    stored_kernel_everywhere,
    worker_count,
)
from tinygrad_edu import Tensor, nn, optim
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import EDGE_VALUES, saturating_logits

UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "exp": (lambda x: x.exp(), lambda x: x.exp()),
    "log": (lambda x: x.log(), lambda x: x.log()),
    "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt()),
    "abs": (lambda x: x.abs(), lambda x: x.abs()),
    "relu": (lambda x: x.relu(), lambda x: x.relu()),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}
PAIRS = np.array(list(itertools.product(EDGE_VALUES, EDGE_VALUES))).T


def _same(ours: np.ndarray, theirs: np.ndarray, what: str, inputs) -> None:
    with np.errstate(invalid="ignore"):
        agree = (
            (ours == theirs)
            | (np.isnan(ours) & np.isnan(theirs))
            | np.isclose(ours, theirs, rtol=1e-12, atol=0)
        )
    bad = np.flatnonzero(~agree)
    detail = [(tuple(x[i] for x in inputs), ours[i], theirs[i]) for i in bad[:5]]
    assert not bad.size, f"{what}: (inputs, ours, PyTorch) {detail}"


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_at_every_edge_agree_with_pytorch(name):
    torch = pytest.importorskip("torch")
    ours_fn, torch_fn = UNARY[name]
    values = np.array(EDGE_VALUES)
    x, xt = Tensor(values.copy(), requires_grad=True), torch.tensor(values, requires_grad=True)
    with np.errstate(all="ignore"):  # the values under test, not the warnings, are the point
        y = ours_fn(x)
        (g,) = tg.grad(y, [x], grad_outputs=Tensor(np.ones(values.shape)))
    yt = torch_fn(xt)
    (gt,) = torch.autograd.grad(yt, [xt], torch.ones_like(yt))
    _same(y.data, yt.detach().numpy(), f"{name} forward", [values])
    _same(g.data, gt.numpy(), f"{name} gradient", [values])


def _binary_case(name: str, a_values: np.ndarray, b_values: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    fn = BINARY[name]
    a, b = Tensor(a_values.copy(), requires_grad=True), Tensor(b_values.copy(), requires_grad=True)
    at, bt = torch.tensor(a_values, requires_grad=True), torch.tensor(b_values, requires_grad=True)
    with np.errstate(all="ignore"):
        y = fn(a, b)
        ga, gb = tg.grad(y, [a, b], grad_outputs=Tensor(np.ones(y.shape)))
    yt = fn(at, bt)
    gat, gbt = torch.autograd.grad(yt, [at, bt], torch.ones_like(yt))
    inputs = [a_values, b_values]
    _same(y.data, yt.detach().numpy(), f"{name} forward", inputs)
    _same(ga.data, gat.numpy(), f"{name} gradient of a", inputs)
    _same(gb.data, gbt.numpy(), f"{name} gradient of b", inputs)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_at_every_pair_of_edges_agree_with_pytorch(name):
    a, b = PAIRS
    if name == "pow":  # 0 ** (negative b) has its own test below
        keep = ~((a == 0) & (b < 0))
        a, b = a[keep], b[keep]
    _binary_case(name, a, b)


def test_pow_exponent_gradient_at_zero_base_and_negative_exponent_agrees_with_pytorch():
    a, b = PAIRS
    keep = (a == 0) & (b < 0)
    _binary_case("pow", a[keep], b[keep])


# ----------------------------------------------------------------------------- pow at 0 (issue 9)
def test_derivative_of_x_to_the_zero_at_zero_is_zero():
    x = Tensor(np.array([0.0, -0.0, 2.0]), requires_grad=True)
    (g,) = tg.grad((x**0).sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g.data, [0.0, 0.0, 0.0])
    (gg,) = tg.grad(g.sum(), [x])
    np.testing.assert_array_equal(gg.data, [0.0, 0.0, 0.0])


def test_derivative_of_zero_to_the_b_is_zero():
    b = Tensor(np.array([0.0, 0.5, 2.0, 3.0]), requires_grad=True)
    (g,) = tg.grad((Tensor(np.zeros(4)) ** b).sum(), [b])
    np.testing.assert_array_equal(g.data, [0.0, 0.0, 0.0, 0.0])


def test_pow_at_zero_base_both_gradients_are_finite_for_nonnegative_exponents():
    a = Tensor(np.zeros(4), requires_grad=True)
    b = Tensor(np.array([0.0, 0.5, 1.0, 2.0]), requires_grad=True)
    ga, gb = tg.grad((a**b).sum(), [a, b])
    np.testing.assert_array_equal(gb.data, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(ga.data, [0.0, np.inf, 1.0, 0.0])  # b a^(b-1), as PyTorch


# ----------------------------------------------------------------------------- saturated sigmoid
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_bce_of_a_saturated_sigmoid_has_finite_gradients(dtype, data):
    logits = np.array(data.draw(st.lists(saturating_logits(dtype), min_size=1, max_size=4)))
    targets = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, 0.3]), min_size=1)))
    logits, targets = np.broadcast_arrays(logits[:, None], targets[None, :])
    z = Tensor(logits.astype(dtype), requires_grad=True)
    p = z.sigmoid()
    assert np.all((p.data == 0.0) | (p.data == 1.0))  # the generator's promise
    t = Tensor(targets.astype(dtype), requires_grad=True)
    loss = F.binary_cross_entropy(p, t)
    gz, gt = tg.grad(loss, [z, t])
    assert np.isfinite(loss.item())
    assert np.isfinite(gz.data).all() and np.isfinite(gt.data).all()
    # d loss / d t of the clamped loss is the difference of the clamped logs (PyTorch returns
    # -inf/inf here, the derivative of the unclamped formula, not of the loss it computed)
    with np.errstate(divide="ignore"):
        clamped = np.maximum(np.log(1 - p.data), -100) - np.maximum(np.log(p.data), -100)
    np.testing.assert_allclose(gt.data, clamped / p.size, rtol=1e-6)
    torch = pytest.importorskip("torch")
    zt = torch.tensor(z.data, requires_grad=True)
    loss_t = torch.nn.functional.binary_cross_entropy(zt.sigmoid(), torch.tensor(t.data))
    (gzt,) = torch.autograd.grad(loss_t, [zt])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=rtol)
    np.testing.assert_allclose(gz.data, gzt.numpy(), rtol=rtol, atol=1e-30)


def test_bce_gradient_at_probabilities_exactly_zero_and_one():
    p = Tensor(np.array([1.0, 0.0, 1.0, 0.0], dtype=np.float32), requires_grad=True)
    t = np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    loss = F.binary_cross_entropy(p, t, reduction="sum")
    (g,) = tg.grad(loss, [p])
    assert loss.item() == pytest.approx(200.0)  # two logs clamped at -100
    np.testing.assert_allclose(g.data, [1e12, -1e12, 0.0, 0.0], rtol=1e-6)  # PyTorch's values


def test_readme_xor_example_trains_through_saturation_with_finite_gradients():
    """The README's "Using the library" network; its float32 sigmoid saturates to exactly 1.0
    or 0.0 after ~470 steps, where composed BCE gave NaN gradients."""
    model = nn.Sequential(nn.Linear(2, 8, rng=0), nn.Tanh(), nn.Linear(8, 1, rng=1))
    opt = optim.Adam(model.parameters(), lr=0.05)
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32))
    y = (x.data[:, :1] * x.data[:, 1:] > 0).astype(np.float32)
    saturated_steps = 0
    for step in range(550):
        opt.zero_grad()
        p = model(x).sigmoid()
        saturated_steps += bool(((p.data == 0.0) | (p.data == 1.0)).any())
        loss = F.binary_cross_entropy(p, y)
        loss.backward()
        for name, parameter in model.named_parameters():
            assert np.isfinite(parameter.grad.data).all(), f"step {step}: {name}"
        opt.step()
    assert saturated_steps > 0, "the example no longer saturates: this test lost its point"
    assert np.isfinite(loss.item()) and loss.item() < 0.01


PIECEWISE = {  # ops whose slope is 0 somewhere: an inf or NaN upstream must give 0 there
    "relu": (lambda x: x.relu(), lambda x: x.relu()),
    "clip": (lambda x: x.clip(-1, 1), lambda x: x.clamp(-1, 1)),
    "hardtanh": (F.hardtanh, lambda x: __import__("torch").nn.functional.hardtanh(x)),
    "hardsigmoid": (F.hardsigmoid, lambda x: __import__("torch").nn.functional.hardsigmoid(x)),
    "maximum": (lambda x: x.maximum(_halves(x)), lambda x: x.maximum(_halves(x))),
    "minimum": (lambda x: x.minimum(_halves(x)), lambda x: x.minimum(_halves(x))),
}


def _halves(x):
    """A constant 0.5 beside ``x``, ours or PyTorch's."""
    if isinstance(x, Tensor):
        return Tensor(np.full(x.shape, 0.5))
    return __import__("torch").full_like(x.detach(), 0.5)


@pytest.mark.parametrize("upstream", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("name", sorted(PIECEWISE))
def test_non_finite_upstream_gradients_through_flat_pieces_agree_with_pytorch(name, upstream):
    torch = pytest.importorskip("torch")
    ours_fn, torch_fn = PIECEWISE[name]
    values = np.array([-4.0, -1.0, -0.5, 0.0, 0.5, 1.0, 4.0, *EDGE_VALUES])
    g = np.full(values.shape, upstream)
    x, xt = Tensor(values.copy(), requires_grad=True), torch.tensor(values, requires_grad=True)
    with np.errstate(all="ignore"):
        (ours,) = tg.grad(ours_fn(x), [x], grad_outputs=Tensor(g))
    (theirs,) = torch.autograd.grad(torch_fn(xt), [xt], torch.tensor(g))
    _same(ours.data, theirs.numpy(), f"{name} gradient of {upstream}", [values])


@pytest.mark.parametrize("channels", [(3, 64), (32, 40)])  # col2im; Winograd
def test_fused_conv_relu_gives_no_nan_for_an_inf_upstream_where_the_relu_was_off(channels):
    """``conv2d_relu``'s backward masks the gradient bitwise: inf where the ReLU output was 0
    gives what 0 there gives (PyTorch's ``threshold_backward``), not NaN."""
    c, k = channels
    rng = np.random.default_rng(c)
    x = Tensor(rng.standard_normal((2, c, 6, 7)), requires_grad=True)
    w = Tensor(rng.standard_normal((k, c, 3, 3)))
    y = F.conv2d_relu(x, w, padding=1)
    finite = rng.standard_normal(y.shape)
    off = y.data <= 0
    assert off.any() and (~off).any()
    with np.errstate(all="ignore"):
        (with_inf,) = tg.grad(y, [x], grad_outputs=Tensor(np.where(off, np.inf, finite)))
    y = F.conv2d_relu(x, w, padding=1)
    (with_zero,) = tg.grad(y, [x], grad_outputs=Tensor(np.where(off, 0.0, finite)))
    np.testing.assert_array_equal(with_inf.data, with_zero.data)


# ------------------------------------------------------------------------ derivatives at kinks
def _torch_module():
    return pytest.importorskip("torch")


#: name -> (ours, PyTorch's, the kinks): each piecewise function at exactly its break points
KINKS = {
    "relu": (F.relu, lambda t: _torch_module().nn.functional.relu(t), [0.0]),
    "leaky_relu": (
        lambda x: F.leaky_relu(x, 0.2),
        lambda t: _torch_module().nn.functional.leaky_relu(t, 0.2),
        [0.0],
    ),
    "hardtanh": (
        lambda x: F.hardtanh(x, -0.5, 2.0),
        lambda t: _torch_module().nn.functional.hardtanh(t, -0.5, 2.0),
        [-0.5, 2.0],
    ),
    "relu6": (F.relu6, lambda t: _torch_module().nn.functional.relu6(t), [0.0, 6.0]),
    "hardsigmoid": (  # PyTorch's own hardsigmoid rounds its slope 1/6 to float32
        F.hardsigmoid,
        lambda t: _torch_module().nn.functional.relu6(t + 3) / 6,
        [-3.0, 3.0],
    ),
    "hardswish": (F.hardswish, lambda t: _torch_module().nn.functional.hardswish(t), [-3.0, 3.0]),
    "elu": (F.elu, lambda t: _torch_module().nn.functional.elu(t), [0.0]),
    "elu_alpha": (
        lambda x: F.elu(x, 0.5),
        lambda t: _torch_module().nn.functional.elu(t, 0.5),
        [0.0],
    ),
    "celu": (
        lambda x: F.celu(x, 0.5),
        lambda t: _torch_module().nn.functional.celu(t, 0.5),
        [0.0],
    ),
    "selu": (F.selu, lambda t: _torch_module().nn.functional.selu(t), [0.0]),
    "softplus_threshold": (
        lambda x: F.softplus(x, beta=2.0, threshold=4.0),
        lambda t: _torch_module().nn.functional.softplus(t, beta=2.0, threshold=4.0),
        [2.0],
    ),
    "clip": (lambda x: x.clip(-1.0, 0.5), lambda t: t.clamp(-1.0, 0.5), [-1.0, 0.5]),
    "clip_lower": (lambda x: x.clip(0.0, None), lambda t: t.clamp(min=0.0), [0.0]),
    "clip_upper": (lambda x: x.clip(None, 0.0), lambda t: t.clamp(max=0.0), [0.0]),
    "abs": (lambda x: x.abs(), lambda t: t.abs(), [0.0]),
    "sign": (lambda x: x.sign(), lambda t: t.sign(), [0.0]),
    "floor": (lambda x: x.floor(), lambda t: t.floor(), [1.0]),
    "norm_1": (lambda x: x.norm(1).reshape(1), lambda t: t.norm(1).reshape(1), [0.0]),
    "maximum_tie": (
        lambda x: x.maximum(Tensor(np.array(1.0))),
        lambda t: _torch_module().maximum(t, _torch_module().tensor(1.0, dtype=t.dtype)),
        [1.0],
    ),
    "minimum_tie": (
        lambda x: x.minimum(Tensor(np.array(1.0))),
        lambda t: _torch_module().minimum(t, _torch_module().tensor(1.0, dtype=t.dtype)),
        [1.0],
    ),
}


@pytest.mark.parametrize("name", sorted(KINKS))
def test_derivatives_at_nan_agree_with_pytorch(name):
    """A NaN input: the output is NaN, and the slope each op reports there is PyTorch's (relu,
    hardtanh, relu6 gave 0 where PyTorch's masks ``not x <= 0`` pass the gradient; elu, selu,
    celu gave NaN where PyTorch takes the positive branch; abs gave NaN, PyTorch's sgn 0)."""
    torch = _torch_module()
    ours, theirs, _ = KINKS[name]
    if name == "hardsigmoid":  # the table's composite passes NaN through relu6; F's own gives 0
        theirs = torch.nn.functional.hardsigmoid  # (and rounds its slope 1/6 to float32)
    points = np.array([np.nan, -2.0, 2.0])
    x = Tensor(points, requires_grad=True)
    with np.errstate(all="ignore"):
        (g,) = tg.grad(ours(x).sum(), [x])
    xt = torch.tensor(points, requires_grad=True)
    (gt,) = torch.autograd.grad(theirs(xt).sum(), [xt])
    np.testing.assert_allclose(g.data, gt.numpy(), rtol=1e-7, atol=0, err_msg=name)


@pytest.mark.parametrize("name", sorted(KINKS))
def test_derivatives_at_every_kink_agree_with_pytorch_in_both_modes(name):
    """Each piecewise op at exactly its break points (and just beside them): the one-sided
    choice there is PyTorch's (hardswish' at -3/3 was -0.5/1.5, PyTorch's 0/1), and forward
    mode agrees with reverse mode."""
    torch = _torch_module()
    ours, theirs, kinks = KINKS[name]
    points = np.array(sorted({p + d for p in kinks for d in (-1e-3, 0.0, 1e-3)}))
    x = Tensor(points, requires_grad=True)
    (g,) = tg.grad(ours(x).sum(), [x])
    xt = torch.tensor(points, requires_grad=True)
    (gt,) = torch.autograd.grad(theirs(xt).sum(), [xt])
    np.testing.assert_allclose(g.data, gt.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)
    _, tangent = tg.jvp(lambda t: ours(t).sum(), (Tensor(points),), (Tensor(np.ones_like(points)),))
    assert tangent.item() == pytest.approx(float(g.data.sum()), rel=1e-12, abs=1e-15)
    for p, gi in zip(points, g.data):  # forward mode point by point, not only the sum
        e = Tensor(np.array([p]))
        _, t = tg.jvp(lambda t: ours(t).sum(), (e,), (Tensor(np.ones(1)),))
        assert t.item() == pytest.approx(gi, rel=1e-12, abs=1e-15), (name, p)


# ------------------------------ gate: piecewise-linear chain rules vs PyTorch, any upstream
#: name: (ours, PyTorch's given the torch module): unary ops whose slope is 0 or a constant
GATED = {
    "relu": (lambda x: x.relu(), lambda torch, x: x.relu()),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda torch, x: x.clamp(-1.0, 1.0)),
    "clip_lo": (lambda x: x.clip(0.0), lambda torch, x: x.clamp(min=0.0)),
    "hardtanh": (
        lambda x: F.hardtanh(x, -1.0, 1.0),
        lambda torch, x: torch.nn.functional.hardtanh(x),
    ),
    "relu6": (lambda x: F.relu6(x), lambda torch, x: torch.nn.functional.relu6(x)),
    "hardsigmoid": (
        lambda x: F.hardsigmoid(x),
        lambda torch, x: torch.nn.functional.hardsigmoid(x),
    ),
}
#: finite inputs on and around every kink of the ops above, and infinities
KINK_POINTS = (0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -2.0, 7.0, 1e-30, np.inf, -np.inf)


def torch_grad(torch, fn, arrays, g):
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(torch.tensor(g))
    return [leaf.grad.numpy() for leaf in leaves]


def assert_same_floats(ours, theirs, rtol: float = 0.0) -> None:
    """NaN, inf and zeros (with their sign) in the same places; equal values elsewhere (within
    ``rtol``)."""
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0)


@given(
    st.sampled_from(sorted(GATED)),
    st.sampled_from(FLOATS),
    st.integers(1, 12),
    st.data(),
)
def test_gated_ops_route_inf_and_nan_like_pytorch(name, dtype, size, data):
    torch = pytest.importorskip("torch")
    x = np.array(
        data.draw(st.lists(st.sampled_from(KINK_POINTS), min_size=size, max_size=size)), dtype
    )
    g = np.array(data.draw(st.lists(st.sampled_from(POISON), min_size=size, max_size=size)), dtype)
    ours_fn, torch_fn = GATED[name]
    xt = Tensor(x, requires_grad=True)
    (ours,) = tg.grad(ours_fn(xt), [xt], grad_outputs=g)
    (theirs,) = torch_grad(torch, lambda t: torch_fn(torch, t), [x], g)
    # PyTorch multiplies by a float32 1/6, even in float64 (0.25 -> 0.25000000745): 2 ulp
    assert_same_floats(ours.data, theirs, rtol=2.5e-7 if name == "hardsigmoid" else 0.0)


@given(st.sampled_from(sorted(GATED)), st.sampled_from(FLOATS), st.integers(1, 12), st.data())
def test_gated_ops_forward_mode_routes_inf_and_nan_like_pytorch(name, dtype, size, data):
    """The same gate in forward mode: an inf or NaN tangent where the slope is 0 gives +0."""
    torch = pytest.importorskip("torch")
    x = np.array(
        data.draw(st.lists(st.sampled_from(KINK_POINTS), min_size=size, max_size=size)), dtype
    )
    t = np.array(data.draw(st.lists(st.sampled_from(POISON), min_size=size, max_size=size)), dtype)
    ours_fn, torch_fn = GATED[name]
    _, ours = tg.jvp(ours_fn, [Tensor(x)], [Tensor(t)])
    _, theirs = torch.func.jvp(lambda a: torch_fn(torch, a), (torch.tensor(x),), (torch.tensor(t),))
    assert_same_floats(ours.data, theirs.numpy(), rtol=2.5e-7 if name == "hardsigmoid" else 0.0)


@given(st.sampled_from(["maximum", "minimum"]), st.sampled_from(FLOATS), st.data())
def test_maximum_minimum_route_inf_and_nan_like_pytorch(name, dtype, data):
    """Ties split the gradient in half; the losing side gets +0 even for an inf or NaN."""
    torch = pytest.importorskip("torch")
    size = data.draw(st.integers(1, 12))
    values = st.lists(st.sampled_from((0.0, -0.0, 1.0, -1.0, np.inf, -np.inf)), min_size=size,
                      max_size=size)  # fmt: skip
    a, b = (np.array(data.draw(values), dtype) for _ in range(2))
    g = np.array(data.draw(st.lists(st.sampled_from(POISON), min_size=size, max_size=size)), dtype)
    at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ours = tg.grad(getattr(at, name)(bt), [at, bt], grad_outputs=g)
    theirs = torch_grad(torch, getattr(torch, name), [a, b], g)
    for mine, other in zip(ours, theirs):
        assert_same_floats(mine.data, other)


@st.composite
def conv_relu_cases(draw):
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh = draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    h = draw(st.integers(max(1, kh - 2 * padding), 5))
    return n, c, k, kh, stride, padding, h, draw(st.integers(0, 2**16)), draw(st.booleans())


def conv_relu_arrays(case, dtype) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """The generator of a :func:`conv_relu_cases` case and the ``x, w, b`` it drew first."""
    n, c, k, kh, _, _, h, seed, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, h)).astype(dtype)
    w = rng.standard_normal((k, c, kh, kh)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return rng, x, w, b


@given(conv_relu_cases(), st.sampled_from(FLOATS))
def test_conv2d_relu_with_inf_and_nan_where_the_relu_is_off_matches_pytorch(case, dtype):
    """Upstream inf/NaN where ``relu`` output 0 reach neither x, w nor b (PyTorch's
    threshold_backward), on the default and on the stored-kernel path."""
    torch = pytest.importorskip("torch")
    n, _, k, kh, stride, padding, h, _, stored = case
    rng, x, w, b = conv_relu_arrays(case, dtype)
    ho = out_size(h, kh, stride, padding)
    pre = reference_conv(x, w, stride, padding) + b.reshape(1, -1, 1, 1)
    g = rng.standard_normal((n, k, ho, ho)).astype(dtype)
    g = np.where(pre <= 0, rng.choice(np.array(POISON, dtype), size=g.shape), g).astype(dtype)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    with stored_kernel_everywhere() if stored else contextlib.nullcontext(), worker_count(2):
        out = F.conv2d_relu(*inputs, stride, padding)
        ours = tg.grad(out, inputs, grad_outputs=g)
    theirs = torch_grad(
        torch,
        lambda a, v, c_: torch.nn.functional.conv2d(a, v, c_, stride, padding).relu(),
        [x, w, b],
        g,
    )
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for mine, other in zip(ours, theirs):
        assert mine.dtype == other.dtype and np.isfinite(mine.data).all()
        scale = np.abs(other).max() + 1e-30
        np.testing.assert_allclose(mine.data, other, rtol=0, atol=rtol * scale)


@given(conv_relu_cases(), st.sampled_from(FLOATS), st.sampled_from([np.inf, -np.inf]))
def test_conv2d_relu_forward_mode_with_an_infinite_tangent_matches_pytorch(case, dtype, inf):
    """One infinite input pixel in the tangent: outputs it reaches get an infinite tangent,
    except where the ReLU is off, which get +0 (PyTorch's relu JVP), on both paths."""
    torch = pytest.importorskip("torch")
    n, c, _, _, stride, padding, h, _, stored = case
    rng, x, w, b = conv_relu_arrays(case, dtype)
    tx = rng.standard_normal(x.shape).astype(dtype)
    tx[rng.integers(n), rng.integers(c), rng.integers(h), rng.integers(h)] = inf
    path = stored_kernel_everywhere() if stored else contextlib.nullcontext()
    with path, worker_count(2), np.errstate(invalid="ignore"):  # inf arithmetic is the point
        _, ours = tg.jvp(
            lambda a: F.conv2d_relu(a, Tensor(w), Tensor(b), stride, padding), [Tensor(x)], [tx]
        )
    _, theirs = torch.func.jvp(
        lambda a: torch.nn.functional.conv2d(
            a, torch.tensor(w), torch.tensor(b), stride, padding
        ).relu(),
        (torch.tensor(x),),
        (torch.tensor(tx),),
    )
    theirs = theirs.numpy()
    ours = ours.data
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    finite = np.isfinite(theirs)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(theirs[finite]).max(initial=0) + 1e-30
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=0, atol=rtol * scale)
    np.testing.assert_array_equal(ours[theirs == 0] == 0, True)


def _away_from(values: np.ndarray, kinks, margin: float = 1e-2) -> bool:
    return all(np.abs(values - kink).min() > margin for kink in kinks) if values.size else True


SMOOTH_PARTNERS = {  # f(x) times something smooth, so the second derivative is not all zero
    "relu": ((0.0,), lambda x: x.relu() * x.sin()),
    "clip": ((-1.0, 1.0), lambda x: x.clip(-1.0, 1.0) * x.exp()),
    "hardtanh": ((-1.0, 1.0), lambda x: F.hardtanh(x, -1.0, 1.0) * x * x),
    "hardsigmoid": ((-3.0, 3.0), lambda x: F.hardsigmoid(x) * x.cos()),
    "maximum": ((0.5,), lambda x: x.maximum(0.5) * x.tanh()),
    "minimum": ((-0.5,), lambda x: x.minimum(x * 0 - 0.5) * x.sin()),
}


@given(
    st.sampled_from(sorted(SMOOTH_PARTNERS)),
    st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=6),
)
def test_gated_ops_second_order_match_finite_differences(name, values):
    kinks, fn = SMOOTH_PARTNERS[name]
    x = np.array(values)
    assume(_away_from(x, kinks))
    assert tg.gradgradcheck(fn, [Tensor(x, requires_grad=True)], modes=("rev", "fwd"))


@given(conv_relu_cases())
def test_conv2d_relu_second_order_on_the_stored_kernel_path(case):
    n, c, k, kh, stride, padding, h, seed, stored = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, c, h, h)), rng.standard_normal((k, c, kh, kh))
    b = rng.standard_normal(k)
    pre = reference_conv(x, w, stride, padding) + b.reshape(1, -1, 1, 1)
    assume(np.abs(pre).min() > 1e-2)  # away from the ReLU's kink

    def fn(x, w, b):  # squared, so the Hessian of x and w is not zero
        y = F.conv2d_relu(x, w, b, stride, padding)
        return y * y

    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    with stored_kernel_everywhere() if stored else contextlib.nullcontext(), worker_count(2):
        assert tg.gradgradcheck(fn, inputs, atol=1e-6, rtol=1e-5)
