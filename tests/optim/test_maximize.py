"""Every optimizer against PyTorch: trajectories under random gradients and hyperparameters,
with ``maximize`` both ways (ascending the gradient exactly as PyTorch does)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, optim

torch = pytest.importorskip("torch")

#: optimizer name -> strategy for its hyperparameters (beside ``maximize``)
HYPERPARAMETERS = {
    "SGD": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.5),
            "momentum": st.sampled_from([0.0, 0.5, 0.9]),
            "weight_decay": st.sampled_from([0.0, 0.1]),
        }
    ),
    "Adam": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.5),
            "weight_decay": st.sampled_from([0.0, 0.1]),
            "amsgrad": st.booleans(),
        }
    ),
    "AdamW": st.fixed_dictionaries(
        {"lr": st.floats(1e-3, 0.5), "weight_decay": st.sampled_from([0.0, 0.1])}
    ),
    "RMSprop": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.1),
            "momentum": st.sampled_from([0.0, 0.5]),
            "centered": st.booleans(),
            "weight_decay": st.sampled_from([0.0, 0.1]),
        }
    ),
    "Adagrad": st.fixed_dictionaries(
        {"lr": st.floats(1e-3, 0.5), "lr_decay": st.sampled_from([0.0, 0.05])}
    ),
    "Adamax": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.5),
            "betas": st.tuples(st.floats(0.5, 0.95), st.floats(0.9, 0.999)),
            "weight_decay": st.sampled_from([0.0, 0.1]),
        }
    ),
    "Adadelta": st.fixed_dictionaries(
        {
            "lr": st.floats(0.1, 1.0),
            "rho": st.floats(0.5, 0.99),
            "weight_decay": st.sampled_from([0.0, 0.1]),
        }
    ),
    "NAdam": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.5),
            "weight_decay": st.sampled_from([0.0, 0.1]),
            "momentum_decay": st.floats(0.0, 0.01),
            "decoupled_weight_decay": st.booleans(),
        }
    ),
    "RAdam": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.5),
            # beta_2 small enough for the rectified branch (rho_t > 5) within the steps
            "betas": st.tuples(st.floats(0.5, 0.95), st.sampled_from([0.8, 0.9, 0.999])),
            "weight_decay": st.sampled_from([0.0, 0.1]),
            "decoupled_weight_decay": st.booleans(),
        }
    ),
    "Rprop": st.fixed_dictionaries(
        {
            "lr": st.floats(1e-3, 0.5),
            "etas": st.tuples(st.floats(0.1, 0.9), st.floats(1.1, 2.0)),
            "step_sizes": st.tuples(st.floats(1e-6, 1e-3), st.floats(0.1, 50.0)),
        }
    ),
}


def trajectories(name: str, settings_: dict, maximize: bool, seed: int, steps: int = 8):
    """The parameter after each step, ours and PyTorch's, under the same random gradients."""
    rng = np.random.default_rng(seed)
    start = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(steps)]
    ours = Tensor(start.copy(), requires_grad=True)
    theirs = torch.tensor(start.copy(), requires_grad=True)
    our_opt = getattr(optim, name)([ours], maximize=maximize, **settings_)
    their_opt = getattr(torch.optim, name)([theirs], maximize=maximize, **settings_)
    ours_after, theirs_after = [], []
    for grad in grads:
        ours.grad = Tensor(grad.copy())
        theirs.grad = torch.tensor(grad.copy())
        our_opt.step()
        their_opt.step()
        ours_after.append(ours.data.copy())
        theirs_after.append(theirs.detach().numpy().copy())
    return np.array(ours_after), np.array(theirs_after)


@pytest.mark.parametrize("name", sorted(HYPERPARAMETERS))
@pytest.mark.parametrize("maximize", [False, True])
def test_trajectory_matches_pytorch(name, maximize):
    @settings(max_examples=4, deadline=None)
    @given(settings_=HYPERPARAMETERS[name], seed=st.integers(0, 2**16))
    def check(settings_, seed):
        ours, theirs = trajectories(name, settings_, maximize, seed)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)

    check()


@pytest.mark.parametrize("name", sorted(HYPERPARAMETERS))
def test_maximize_is_off_by_default_and_in_the_state_dict(name):
    opt = getattr(optim, name)([Tensor(np.zeros(2), requires_grad=True)])
    assert opt.defaults["maximize"] is False
    assert opt.state_dict()["param_groups"][0]["maximize"] is False


@pytest.mark.parametrize("name", sorted(HYPERPARAMETERS))
def test_one_ascent_step_raises_the_objective(name):
    w = Tensor(np.array([0.3, -0.2]), requires_grad=True)
    opt = getattr(optim, name)([w], lr=0.01, maximize=True)
    before = float(-(w.data**2).sum())
    (-(w * w).sum()).backward()
    opt.step()
    assert float(-(w.data**2).sum()) > before


@pytest.mark.parametrize("name", sorted(HYPERPARAMETERS))
def test_maximize_must_be_a_flag(name):
    with pytest.raises(TypeError, match="maximize"):
        getattr(optim, name)([Tensor(np.zeros(2), requires_grad=True)], maximize=1)
