"""Optimizers against their update formulas (and PyTorch when installed)."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor, optim


def quadratic_grads(p: Tensor, target: np.ndarray) -> None:
    p.grad = Tensor(2 * (p.data - target))


def test_sgd_plain_momentum_and_weight_decay_follow_the_formula():
    rng = np.random.default_rng(0)
    start, target = rng.standard_normal(4), rng.standard_normal(4)
    lr, mu, wd = 0.1, 0.9, 0.01
    p = Tensor(start.copy(), requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=mu, weight_decay=wd)
    theta, velocity = start.copy(), None
    for _ in range(5):
        quadratic_grads(p, target)
        opt.step()
        g = 2 * (theta - target) + wd * theta
        velocity = g if velocity is None else mu * velocity + g
        theta = theta - lr * velocity
    np.testing.assert_allclose(p.data, theta, rtol=1e-12)


def test_adam_follows_the_formula():
    rng = np.random.default_rng(1)
    start, target = rng.standard_normal(3), rng.standard_normal(3)
    lr, (b1, b2), eps = 0.05, (0.8, 0.99), 1e-8
    p = Tensor(start.copy(), requires_grad=True)
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    theta, m, v = start.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, 6):
        quadratic_grads(p, target)
        opt.step()
        g = 2 * (theta - target)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p.data, theta, rtol=1e-12)


def test_parameters_without_grad_are_skipped_and_zero_grad_clears():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(a.data, [0, 0])
    np.testing.assert_array_equal(b.data, [1, 1])
    opt.zero_grad()
    assert a.grad is None


def test_bad_arguments_are_refused():
    p = Tensor(np.ones(1), requires_grad=True)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="not a Tensor"):
        optim.SGD([np.ones(1)], lr=0.1)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    start, target = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    p = Tensor(start.copy(), requires_grad=True)
    pt = torch.tensor(start.copy(), requires_grad=True)
    if name == "SGD":
        ours, theirs = (
            optim.SGD([p], 0.1, 0.9, 0.01),
            torch.optim.SGD([pt], 0.1, 0.9, weight_decay=0.01),
        )
    else:
        ours, theirs = optim.Adam([p], 0.1), torch.optim.Adam([pt], 0.1)
    for _ in range(4):
        ours.zero_grad()
        theirs.zero_grad()
        ((p - Tensor(target)) ** 2).sum().backward()
        ((pt - torch.tensor(target)) ** 2).sum().backward()
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-12)


OPTIMIZERS = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "SGD-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.1),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.5, centered=True),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_bumps_the_version_of_every_updated_parameter_and_nothing_else(name):
    """backward refuses a VJP whose inputs changed since the forward: a step in between must
    be visible as a new version of exactly the parameters it changed."""
    params = [Tensor(np.full(3, float(i + 1)), requires_grad=True) for i in range(3)]
    opt = OPTIMIZERS[name](params)
    params[0].grad, params[2].grad = Tensor(np.ones(3)), Tensor(np.ones(3))
    grads = [params[0].grad, params[2].grad]
    for step in range(1, 3):
        opt.step()
        assert [p._version for p in params] == [step, 0, step]
        assert [g._version for g in grads] == [0, 0]
