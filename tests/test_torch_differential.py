"""Differential tests: the API.md names against PyTorch in float64 (skipped without PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.op_specs import SPECS, OpSpec
from tinygrad_edu import Tensor

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
