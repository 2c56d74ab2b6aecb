"""Module.freeze() and unfreeze(): PyTorch's ``requires_grad_(False)`` for a whole module.

A frozen parameter keeps its array (nothing is copied or made read-only), gets no gradient, is left
alone by optimizers and still loads a state dict; its convolution layouts are reused because its
version counter does not move (tests/kernels/test_layout_cache.py).
"""

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn


def test_freeze_stops_training_every_parameter_and_unfreeze_undoes_it():
    model = nn.Sequential(nn.Linear(3, 5, rng=0), nn.Sigmoid(), nn.Linear(5, 1, rng=1))
    model(Tensor(np.ones((2, 3)))).sum().backward()
    before = model.state_dict()
    arrays = [parameter.data for parameter in model.parameters()]
    assert model.freeze() is model
    for parameter, array in zip(model.parameters(), arrays):
        assert not parameter.requires_grad and parameter.grad is None
        assert parameter.data is array  # the same arrays: nothing copied
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    out = model(Tensor(np.ones((2, 3))))
    assert not out.requires_grad
    assert model.unfreeze() is model
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_a_frozen_model_loads_a_state_dict_and_stays_frozen():
    model = nn.Linear(3, 2, rng=0).freeze()
    state = {"weight": np.full((2, 3), 2, dtype=np.int64), "bias": np.array([1.0, -1.0])}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32 and not model.weight.requires_grad  # its own dtype
    np.testing.assert_array_equal(model.weight.data, np.full((2, 3), 2.0))
    np.testing.assert_array_equal(model.bias.data, [1.0, -1.0])
    with pytest.raises(tg.nn.StateDictError, match="shape"):
        model.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    np.testing.assert_array_equal(model.weight.data, np.full((2, 3), 2.0))  # untouched


def test_an_optimizer_leaves_frozen_parameters_alone():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 1, rng=1))
    model[0].freeze()
    frozen = model[0].weight.data
    optimizer = tg.optim.SGD(model.parameters(), lr=0.5)
    loss = model(Tensor(np.ones((2, 3)))).sum()
    loss.backward()
    optimizer.step()
    assert model[0].weight.data is frozen and model[0].weight.grad is None
    assert model[1].weight.grad is not None
