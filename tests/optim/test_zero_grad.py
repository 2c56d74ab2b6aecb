"""``Module.zero_grad`` and ``Optimizer.zero_grad``: PyTorch's ``set_to_none`` semantics."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor, nn, optim


def _model_with_grads() -> nn.Module:
    model = nn.Linear(3, 2)
    model(Tensor(np.ones((4, 3)))).sum().backward()
    return model


def test_module_zero_grad_sets_none_by_default():
    model = _model_with_grads()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_module_zero_grad_can_keep_zeros_without_touching_the_old_arrays():
    model = _model_with_grads()
    old = [p.grad.data for p in model.parameters()]
    model.zero_grad(set_to_none=False)
    for p, before in zip(model.parameters(), old):
        assert p.grad.shape == p.shape
        assert not p.grad.data.any()
        assert before.any()  # a gradient array may be shared: it is replaced, not zeroed


def test_module_zero_grad_keeps_a_missing_gradient_missing():
    model = nn.Linear(3, 2)
    model.zero_grad(set_to_none=False)
    assert all(p.grad is None for p in model.parameters())


def test_module_and_optimizer_zero_grad_agree():
    for set_to_none in (True, False):
        model, other = _model_with_grads(), _model_with_grads()
        model.zero_grad(set_to_none=set_to_none)
        optim.SGD(other.parameters()).zero_grad(set_to_none=set_to_none)
        for p, q in zip(model.parameters(), other.parameters()):
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                np.testing.assert_array_equal(p.grad.data, q.grad.data)


def test_set_to_none_must_be_a_flag():
    with pytest.raises(TypeError, match="set_to_none"):
        nn.Linear(2, 2).zero_grad(set_to_none="no")
