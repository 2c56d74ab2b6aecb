"""Differential tests against PyTorch (skipped without it), in float64, first and second order.

* every op of ``tests/op_specs.SPECS`` that has a ``torch_fn``: values, VJPs and Hessian-vector
  products (the gradient of ``<grad, w>``);
* every loss of ``nn.functional`` in every reduction, one row each in :data:`LOSSES`;
* the optimizers over 20 steps, with a parameter that first gets a gradient at step 4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tests.op_specs import SPECS, OpSpec
from tinygrad_edu import Tensor, optim
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays, shapes

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-10, "atol": 1e-12}
DIFFERENTIAL = [s for s in SPECS if s.torch_fn is not None]


def _run_both(spec: OpSpec, arrays, kwargs, upstream_seed: int):
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_ours = spec.fn(*ours, **kwargs)
    out_theirs = spec.torch_fn(*theirs, **kwargs)
    v = np.random.default_rng(upstream_seed).standard_normal(out_ours.shape)
    return ours, theirs, out_ours, out_theirs, v


@pytest.mark.parametrize("spec", DIFFERENTIAL, ids=lambda s: s.name)
@given(data=st.data())
def test_forward_and_vjp_agree_with_pytorch(spec: OpSpec, data):
    arrays, kwargs = spec.draw(data)
    ours, theirs, out_ours, out_theirs, v = _run_both(spec, arrays, kwargs, 0)
    np.testing.assert_allclose(out_ours.data, out_theirs.detach().numpy(), **TOL)
    grads_ours = tg.grad(out_ours, ours, grad_outputs=Tensor(v), allow_unused=True)
    grads_theirs = torch.autograd.grad(out_theirs, theirs, torch.tensor(v), allow_unused=True)
    for g_ours, g_theirs, a in zip(grads_ours, grads_theirs, arrays):
        expected = np.zeros(a.shape) if g_theirs is None else g_theirs.numpy()
        actual = np.zeros(a.shape) if g_ours is None else g_ours.data
        np.testing.assert_allclose(actual, expected, **TOL)


@pytest.mark.parametrize("spec", DIFFERENTIAL, ids=lambda s: s.name)
@given(data=st.data())
def test_second_order_agrees_with_pytorch(spec: OpSpec, data):
    arrays, kwargs = spec.draw(data)
    ours, theirs, out_ours, out_theirs, v = _run_both(spec, arrays, kwargs, 1)
    first_ours = tg.grad(out_ours, ours, Tensor(v), create_graph=True, allow_unused=True)
    first_theirs = torch.autograd.grad(
        out_theirs, theirs, torch.tensor(v), create_graph=True, allow_unused=True
    )
    rng = np.random.default_rng(2)
    w = [rng.standard_normal(a.shape) for a in arrays]
    pairs = [(i, g) for i, g in enumerate(first_ours) if g is not None and g.requires_grad]
    pairs_theirs = [(i, g) for i, g in enumerate(first_theirs) if g is not None and g.requires_grad]
    if not pairs or not pairs_theirs:
        return  # linear op: the second derivative is identically zero on both sides
    s_ours = sum(((g * Tensor(w[i])).sum() for i, g in pairs), Tensor(np.zeros(())))
    s_theirs = sum((g * torch.tensor(w[i])).sum() for i, g in pairs_theirs)
    second_ours = tg.grad(s_ours, ours, allow_unused=True)
    second_theirs = torch.autograd.grad(s_theirs, theirs, allow_unused=True)
    for g_ours, g_theirs, a in zip(second_ours, second_theirs, arrays):
        expected = np.zeros(a.shape) if g_theirs is None else g_theirs.numpy()
        actual = np.zeros(a.shape) if g_ours is None else g_ours.data
        np.testing.assert_allclose(actual, expected, **TOL)


def test_accumulation_semantics_match_pytorch():
    x_np = np.array([0.3, -1.2, 2.0])
    x = Tensor(x_np.copy(), requires_grad=True)
    xt = torch.tensor(x_np, requires_grad=True)
    for _ in range(3):
        y = x * x
        (y * y + y).sum().backward()
        yt = xt * xt
        (yt * yt + yt).sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), **TOL)


def test_mixed_expression_matches_pytorch():
    rng = np.random.default_rng(5)
    w_np, x_np = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    w, x = Tensor(w_np, requires_grad=True), Tensor(x_np, requires_grad=True)
    wt, xt = torch.tensor(w_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    ours = (x @ w.T).tanh().log_softmax(axis=1)[np.array([0, 2, 2])].max(axis=1).mean()
    theirs = torch.log_softmax(torch.tanh(xt @ wt.T), 1)[[0, 2, 2]].amax(1).mean()
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(ours.item(), theirs.item(), **TOL)
    np.testing.assert_allclose(w.grad.data, wt.grad.numpy(), **TOL)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), **TOL)


# ----------------------------------------------------------------------------- losses
def _probabilities(data, shape, low=0.02, high=0.98):
    return data.draw(arrays(shape, low=low, high=high), label="p")


def _mse_draw(data):
    shape = data.draw(shapes(), label="shape")
    return [data.draw(arrays(shape)), data.draw(arrays(shape))], [True, True]


def _bce_draw(data):
    shape = data.draw(shapes(), label="shape")
    return [_probabilities(data, shape), data.draw(arrays(shape, low=0, high=1))], [True, False]


def _bce_saturated_draw(data):
    """Probabilities exactly 0 or 1 beside ordinary ones, targets 0 or 1 (first order only)."""
    shape = data.draw(shapes(min_dims=1), label="shape")
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 0.3, 0.9])))
    t = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    return [p, t], [True, False]


def _ce_class_draw(data):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    extra = data.draw(st.lists(st.integers(1, 3), max_size=1), label="extra")
    logits = data.draw(arrays((n, c, *extra), low=-3, high=3))
    target = data.draw(hnp.arrays(np.int64, (n, *extra), elements=st.integers(0, c - 1)))
    return [logits, target], [True, False]


def _ce_probability_draw(data):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    logits = data.draw(arrays((n, c), low=-3, high=3))
    weights = data.draw(arrays((n, c), low=0.1, high=1.0))
    return [logits, weights / weights.sum(axis=1, keepdims=True)], [True, True]


@dataclass(frozen=True)
class LossSpec:
    """``draw(data)`` returns ``(arrays, differentiable flags)``; both sides get the same call."""

    name: str
    draw: Callable
    ours: Callable
    theirs: Callable
    second_order: bool = True
    #: BCE divides by p (1 - p): its Hessians lose ~1e-10 to cancellation, and PyTorch clamps
    #: p (1 - p) at float32's 1e-12 (9.99999996e-13), 4e-9 from ours at saturated inputs
    rtol: float = 1e-10


def _torch_f():
    return torch.nn.functional


# one line per loss (and per reduction): adding a loss to nn.functional means adding a row here
LOSSES = [
    *(
        LossSpec(f"mse_{r}", _mse_draw, partial(F.mse_loss, reduction=r),
                 lambda a, b, r=r: _torch_f().mse_loss(a, b, reduction=r))
        for r in ("mean", "sum", "none")
    ),
    *(
        LossSpec(f"bce_{r}", _bce_draw, partial(F.binary_cross_entropy, reduction=r),
                 lambda a, b, r=r: _torch_f().binary_cross_entropy(a, b, reduction=r), rtol=1e-8)
        for r in ("mean", "sum", "none")
    ),
    LossSpec("bce_saturated", _bce_saturated_draw, F.binary_cross_entropy,
             lambda a, b: _torch_f().binary_cross_entropy(a, b), second_order=False,
             rtol=1e-8),
    *(
        LossSpec(f"cross_entropy_classes_{r}", _ce_class_draw,
                 partial(F.cross_entropy, reduction=r),
                 lambda a, b, r=r: _torch_f().cross_entropy(a, b, reduction=r))
        for r in ("mean", "sum", "none")
    ),
    LossSpec("cross_entropy_probabilities", _ce_probability_draw, F.cross_entropy,
             lambda a, b: _torch_f().cross_entropy(a, b)),
]  # fmt: skip


def _loss_inputs(spec: LossSpec, arrays_, flags):
    ours = [
        Tensor(a.copy(), requires_grad=f) if a.dtype.kind == "f" else a
        for a, f in zip(arrays_, flags)
    ]
    theirs = [
        torch.tensor(a, requires_grad=f) if a.dtype.kind == "f" else torch.from_numpy(a)
        for a, f in zip(arrays_, flags)
    ]
    return ours, theirs


@pytest.mark.parametrize("spec", LOSSES, ids=lambda s: s.name)
@given(data=st.data())
def test_losses_first_and_second_order_agree_with_pytorch(spec: LossSpec, data):
    arrays_, flags = spec.draw(data)
    tol = {"rtol": spec.rtol, "atol": 1e-12}
    ours, theirs = _loss_inputs(spec, arrays_, flags)
    out, out_t = spec.ours(*ours), spec.theirs(*theirs)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), **tol)
    v = np.random.default_rng(0).standard_normal(out.shape)
    wanted = [t for t, f in zip(ours, flags) if f]
    wanted_t = [t for t, f in zip(theirs, flags) if f]
    first = tg.grad(out, wanted, Tensor(v), create_graph=spec.second_order)
    first_t = torch.autograd.grad(out_t, wanted_t, torch.tensor(v), create_graph=True)
    for g, gt in zip(first, first_t):
        np.testing.assert_allclose(g.data, gt.detach().numpy(), **tol)
    if not spec.second_order:
        return
    rng = np.random.default_rng(1)
    ws = [rng.standard_normal(g.shape) for g in first]  # Hessian-vector product: grad <grad, w>
    s = sum(((g * Tensor(w)).sum() for g, w in zip(first, ws)), Tensor(np.zeros(())))
    s_t = sum((g * torch.tensor(w)).sum() for g, w in zip(first_t, ws))
    hv = tg.grad(s, wanted, allow_unused=True)
    hv_t = torch.autograd.grad(s_t, wanted_t, allow_unused=True)
    for h, ht, x in zip(hv, hv_t, wanted):
        expected = np.zeros(x.shape) if ht is None else ht.numpy()
        np.testing.assert_allclose(np.zeros(x.shape) if h is None else h.data, expected, **tol)


# ----------------------------------------------------------------------------- optimizers
LATE_STEP = 4  # the second parameter first gets a gradient at this step (counting from 1)


def _objective(p_early, p_late, step: int):
    loss = ((p_early - 0.5) ** 2).sum() + (p_early**3).sum() * 0.1
    if step >= LATE_STEP:
        loss = loss + ((p_late * p_late).sum() - p_late.sum()) * (1.0 + 0.1 * step)
    return loss


def _run_optimizer(ours_factory, torch_factory, steps: int = 20):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [Tensor(a.copy(), requires_grad=True) for a in start]
    theirs = [torch.tensor(a, requires_grad=True) for a in start]
    opt, opt_t = ours_factory(ours), torch_factory(theirs)
    for step in range(1, steps + 1):
        opt.zero_grad()
        _objective(*ours, step).backward()
        opt.step()
        opt_t.zero_grad(set_to_none=True)
        _objective(*theirs, step).backward()
        opt_t.step()
        for p, pt in zip(ours, theirs):
            np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda p: optim.SGD(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
        (
            lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
        ),
        pytest.param(
            lambda p: optim.Adam(p, lr=0.05),
            lambda p: torch.optim.Adam(p, lr=0.05),
        ),
        pytest.param(
            lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
            lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        ),
    ],
    ids=["sgd", "sgd-momentum-decay", "adam", "adam-betas-decay"],
)
def test_optimizers_with_a_late_joining_parameter_match_pytorch_over_20_steps(ours, theirs):
    _run_optimizer(ours, theirs)


def test_adam_matches_pytorch_when_every_parameter_starts_at_once():
    """Adam's update rule itself (no late join): must hold on the current code too."""
    global LATE_STEP
    saved, LATE_STEP = LATE_STEP, 1
    try:
        _run_optimizer(lambda p: optim.Adam(p, lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05))
    finally:
        LATE_STEP = saved
