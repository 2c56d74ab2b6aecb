"""Hyperparameters are named once, by each optimizer's signature."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tinygrad_edu import Tensor, optim
from tinygrad_edu.optim.optimizer import Optimizer, with_defaults


def _param() -> Tensor:
    return Tensor(np.ones(3), requires_grad=True)


def test_adamw_is_adam_with_weight_decay_001():
    signature = inspect.signature(optim.AdamW.__init__)
    assert signature.parameters["weight_decay"].default == 1e-2
    assert list(signature.parameters) == list(inspect.signature(optim.Adam.__init__).parameters)
    assert optim.AdamW([_param()]).defaults["weight_decay"] == 1e-2
    assert optim.Adam([_param()]).defaults["weight_decay"] == 0.0
    positional = optim.AdamW([_param()], 0.1, (0.8, 0.9), 1e-6, 0.2, True)
    assert positional.defaults == {
        "lr": 0.1,
        "betas": (0.8, 0.9),
        "eps": 1e-6,
        "weight_decay": 0.2,
        "amsgrad": True,
        "maximize": False,
    }


def test_with_defaults_refuses_a_name_the_constructor_lacks():
    with pytest.raises(TypeError, match="no positional defaults \\['momentum'\\]"):
        with_defaults(optim.Adam.__init__, momentum=0.9)


def test_a_subclass_declares_its_hyperparameters_by_its_signature():
    class Halving(Optimizer):
        def __init__(self, params, lr: float = 0.5, decay: float = 0.0) -> None:
            super().__init__(params, locals())

        def update(self, p, grad, group, state) -> None:
            p.data -= group["lr"] * grad

    optimizer = Halving([_param()], decay=0.25)
    assert optimizer.defaults == {"lr": 0.5, "decay": 0.25}
    with pytest.raises(TypeError, match="decay must be a finite number"):
        Halving([_param()], decay="x")


def test_betas_from_any_iterable_become_a_tuple():
    optimizer = optim.Adam([_param()], betas=iter([0.8, 0.9]))
    assert optimizer.defaults["betas"] == (0.8, 0.9)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.9)


def test_a_subclass_may_pass_pytorchs_defaults_dict():
    class Halving(Optimizer):
        def __init__(self, params, lr: float = 0.5, decay: float = 0.0) -> None:
            super().__init__(params, dict(lr=lr, decay=decay))

        def update(self, p, grad, group, state) -> None:
            p.data -= group["lr"] * grad

    assert Halving([_param()], lr=0.1).defaults == {"lr": 0.1, "decay": 0.0}


def test_defaults_lacking_a_declared_hyperparameter_are_refused():
    class Halving(Optimizer):
        def __init__(self, params, lr: float = 0.5, decay: float = 0.0) -> None:
            super().__init__(params, {"lr": lr})

    with pytest.raises(TypeError, match="lack \\['decay'\\]"):
        Halving([_param()])


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        ("NAdam", {"betas": (0.9, 1.0)}, ValueError, "betas"),
        ("NAdam", {"momentum_decay": -1.0}, ValueError, "momentum_decay"),
        ("NAdam", {"decoupled_weight_decay": 1}, TypeError, "decoupled_weight_decay"),
        ("RAdam", {"eps": -1e-8}, ValueError, "eps"),
        ("Adamax", {"betas": (1.5, 0.9)}, ValueError, "betas"),
        ("Adamax", {"weight_decay": -0.1}, ValueError, "weight_decay"),
        ("Adadelta", {"rho": 1.5}, ValueError, "rho"),
        ("Rprop", {"etas": (1.5, 1.2)}, ValueError, "etas"),
        ("Rprop", {"step_sizes": (1.0, 0.1)}, ValueError, "step_sizes"),
        ("Rprop", {"step_sizes": (1.0,)}, ValueError, "step_sizes"),
        ("Rprop", {"lr": -0.1}, ValueError, "learning rate"),
    ],
)
def test_new_optimizers_name_a_bad_hyperparameter(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(optim, name)([_param()], **kwargs)


@pytest.mark.parametrize(
    ("name", "defaults"),
    [
        ("NAdam", {"lr": 2e-3, "momentum_decay": 4e-3, "decoupled_weight_decay": False}),
        ("RAdam", {"lr": 1e-3, "betas": (0.9, 0.999), "decoupled_weight_decay": False}),
        ("Adamax", {"lr": 2e-3, "eps": 1e-8}),
        ("Adadelta", {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
        ("Rprop", {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)}),
    ],
)
def test_new_optimizers_have_pytorchs_defaults(name, defaults):
    torch = pytest.importorskip("torch")
    ours = getattr(optim, name)([_param()]).defaults
    theirs = getattr(torch.optim, name)([torch.ones(1, requires_grad=True)]).defaults
    for key, value in defaults.items():
        assert ours[key] == value == type(value)(theirs[key])
