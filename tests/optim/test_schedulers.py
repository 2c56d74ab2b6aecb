"""Learning-rate schedulers against PyTorch: the same rates step by step, alone and resumed
from a ``state_dict`` half-way, over random settings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, optim
from tinygrad_edu.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 25


class Halving:
    """A callable object with state: saved by LambdaLR's state_dict, unlike a plain function."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, epoch: int) -> float:
        return 0.5 ** (epoch // self.every)


#: scheduler name -> strategy for its keyword arguments
ARGUMENTS = {
    "StepLR": st.fixed_dictionaries(
        {"step_size": st.integers(1, 6), "gamma": st.floats(0.1, 0.99)}
    ),
    "MultiStepLR": st.fixed_dictionaries(
        {
            "milestones": st.lists(st.integers(0, STEPS), max_size=5),
            "gamma": st.floats(0.1, 0.99),
        }
    ),
    "ExponentialLR": st.fixed_dictionaries({"gamma": st.floats(0.5, 0.99)}),
    "LinearLR": st.fixed_dictionaries(
        {
            "start_factor": st.floats(0.05, 1.0),
            "end_factor": st.floats(0.0, 1.0),
            "total_iters": st.integers(1, 12),
        }
    ),
    "ConstantLR": st.fixed_dictionaries(
        {"factor": st.floats(0.05, 1.0), "total_iters": st.integers(0, 12)}
    ),
    "PolynomialLR": st.fixed_dictionaries(
        {"total_iters": st.integers(1, 15), "power": st.floats(0.5, 3.0)}
    ),
    "LambdaLR": st.fixed_dictionaries(
        {"lr_lambda": st.integers(1, 5).map(lambda n: lambda epoch: 1.0 / (1 + epoch / n))}
    ),
    "MultiplicativeLR": st.fixed_dictionaries(
        {"lr_lambda": st.floats(0.8, 1.0).map(lambda f: lambda epoch: f)}
    ),
    "CosineAnnealingLR": st.fixed_dictionaries(
        {"T_max": st.integers(1, 10), "eta_min": st.floats(0.0, 0.01)}
    ),
}


def _optimizers(lrs: list[float]):
    ours = optim.SGD(
        [{"params": [Tensor(np.zeros(1), requires_grad=True)], "lr": lr} for lr in lrs],
        momentum=0.9,
    )
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], momentum=0.9
    )
    return ours, theirs


def rates(make_ours, make_theirs, lrs, steps=STEPS, resume_at=None):
    """Each step's rates from both libraries; ours restarts from a state_dict at ``resume_at``."""
    ours_opt, theirs_opt = _optimizers(lrs)
    ours, theirs = make_ours(ours_opt), make_theirs(theirs_opt)
    ours_seen, theirs_seen = [], []
    for step in range(steps):
        if step == resume_at:
            saved_opt, saved = ours_opt.state_dict(), ours.state_dict()
            ours_opt, _ = _optimizers(lrs)
            ours = make_ours(ours_opt)  # PyTorch's order: build both, then load both
            ours_opt.load_state_dict(saved_opt)
            ours.load_state_dict(saved)
        ours_seen.append(ours.get_last_lr())
        theirs_seen.append(theirs.get_last_lr())
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()
    return np.array(ours_seen), np.array(theirs_seen)


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_rates_match_pytorch_and_resume(name):
    @settings(max_examples=5, deadline=None)
    @given(
        kwargs=ARGUMENTS[name],
        lrs=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=2),
        resume_at=st.integers(1, STEPS - 1),
    )
    def check(kwargs, lrs, resume_at):
        def ours(opt):
            return getattr(lr_scheduler, name)(opt, **kwargs)

        def theirs(opt):
            return getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)

        mine, reference = rates(ours, theirs, lrs)
        np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
        resumed, _ = rates(ours, theirs, lrs, resume_at=resume_at)
        np.testing.assert_allclose(resumed, mine, rtol=1e-12, atol=1e-15)

    check()


def test_lambda_state_keeps_callable_objects_and_not_functions():
    opt, _ = _optimizers([1.0, 0.5])
    schedule = lr_scheduler.LambdaLR(opt, [Halving(2), lambda epoch: 1.0])
    state = schedule.state_dict()
    assert state["lr_lambdas"] == [{"every": 2}, None]
    state["lr_lambdas"][0]["every"] = 3
    schedule.load_state_dict(state)
    assert schedule.lr_lambdas[0].every == 3


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda o: lr_scheduler.MultiStepLR(o, [1, 2.5]), TypeError, "milestones"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma="0.9"), TypeError, "gamma"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError, "start_factor"),
        (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
        (lambda o: lr_scheduler.LinearLR(o, total_iters=0), ValueError, "total_iters"),
        (lambda o: lr_scheduler.ConstantLR(o, factor=1.5), ValueError, "factor"),
        (lambda o: lr_scheduler.PolynomialLR(o, total_iters=0), ValueError, "total_iters"),
        (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0] * 3), ValueError, "lr_lambdas"),
        (lambda o: lr_scheduler.MultiplicativeLR(o, 0.9), TypeError, "lr_lambda"),
    ],
)
def test_bad_arguments_are_named_before_touching_the_groups(make, error, match):
    opt, _ = _optimizers([0.3])
    with pytest.raises(error, match=match):
        make(opt)
    assert opt.param_groups[0]["lr"] == 0.3
    assert "initial_lr" not in opt.param_groups[0]
