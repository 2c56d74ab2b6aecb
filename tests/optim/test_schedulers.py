"""Learning-rate schedulers against PyTorch: the same rates step by step, alone and resumed
from a ``state_dict`` half-way, over random settings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
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
    "CosineAnnealingWarmRestarts": st.fixed_dictionaries(
        {
            "T_0": st.integers(1, 6),
            "T_mult": st.integers(1, 3),
            "eta_min": st.floats(0.0, 0.01),
        }
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
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 0), ValueError, "T_0"),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 2, 1.5), ValueError, "T_mult"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="low"), ValueError, "mode"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0, 0]), ValueError, "min_lr"),
        (lambda o: lr_scheduler.ChainedScheduler([]), ValueError, "empty"),
    ],
)
def test_bad_arguments_are_named_before_touching_the_groups(make, error, match):
    opt, _ = _optimizers([0.3])
    with pytest.raises(error, match=match):
        make(opt)
    assert opt.param_groups[0]["lr"] == 0.3
    assert "initial_lr" not in opt.param_groups[0]


@settings(max_examples=10, deadline=None)
@given(
    mode=st.sampled_from(["min", "max"]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    factor=st.floats(0.1, 0.9),
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    min_lr=st.sampled_from([0.0, 0.05]),
    seed=st.integers(0, 2**16),
    resume_at=st.integers(1, STEPS - 1),
)
def test_reduce_on_plateau_matches_pytorch_and_resumes(
    mode, threshold_mode, factor, patience, cooldown, min_lr, seed, resume_at
):
    kwargs = {
        "mode": mode,
        "threshold_mode": threshold_mode,
        "factor": factor,
        "patience": patience,
        "cooldown": cooldown,
        "min_lr": min_lr,
        "threshold": 0.01,
    }
    metrics = np.round(np.random.default_rng(seed).uniform(0, 1, size=STEPS), 1)  # with ties
    ours_opt, theirs_opt = _optimizers([0.5, 1.0])
    ours = lr_scheduler.ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **kwargs)
    for step, metric in enumerate(metrics):
        if step == resume_at:
            saved_opt, saved = ours_opt.state_dict(), ours.state_dict()
            ours_opt, _ = _optimizers([0.5, 1.0])
            ours = lr_scheduler.ReduceLROnPlateau(ours_opt, **kwargs)
            ours_opt.load_state_dict(saved_opt)
            ours.load_state_dict(saved)
        ours.step(float(metric))
        theirs.step(float(metric))
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        assert ours.num_bad_epochs == theirs.num_bad_epochs


def test_a_fresh_plateau_state_with_an_infinite_best_loads_and_a_bad_one_is_refused():
    opt, _ = _optimizers([0.5])
    schedule = lr_scheduler.ReduceLROnPlateau(opt)
    state = schedule.state_dict()
    assert state["best"] == float("inf")
    schedule.load_state_dict(state)
    with pytest.raises(ValueError, match="'mode'"):
        schedule.load_state_dict({**state, "mode": "lowest"})
    with pytest.raises(ValueError, match="keys"):
        schedule.load_state_dict({**state, "extra": 1})


@settings(max_examples=5, deadline=None)
@given(gamma=st.floats(0.5, 0.99), T_max=st.integers(1, 8), resume_at=st.integers(1, STEPS - 1))
def test_chained_scheduler_matches_pytorch_and_resumes(gamma, T_max, resume_at):
    def chain(module, opt):
        return module.ChainedScheduler(
            [module.ExponentialLR(opt, gamma), module.CosineAnnealingLR(opt, T_max)]
        )

    mine, reference = rates(
        lambda o: chain(lr_scheduler, o), lambda o: chain(torch.optim.lr_scheduler, o), [0.3]
    )
    np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
    resumed, _ = rates(
        lambda o: chain(lr_scheduler, o),
        lambda o: chain(torch.optim.lr_scheduler, o),
        [0.3],
        resume_at=resume_at,
    )
    np.testing.assert_allclose(resumed, mine, rtol=1e-12, atol=1e-15)


@settings(max_examples=5, deadline=None)
@given(milestone=st.integers(1, 8), gamma=st.floats(0.5, 0.99), resume_at=st.integers(1, STEPS - 1))
def test_a_chain_holds_a_sequential_lr_and_another_chain_like_pytorch(milestone, gamma, resume_at):
    """Links that step without a metric nest: a warm-up-then-cosine ``SequentialLR`` chained
    with a decay, and that chain inside another one."""

    def nested(module, opt):
        warm_then_cosine = module.SequentialLR(
            opt,
            [module.LinearLR(opt, 0.1, total_iters=4), module.CosineAnnealingLR(opt, 8)],
            [milestone],
        )
        inner = module.ChainedScheduler([warm_then_cosine, module.ExponentialLR(opt, gamma)])
        return module.ChainedScheduler([inner, module.StepLR(opt, 3, 0.5)])

    def ours(opt):
        return nested(lr_scheduler, opt)

    def theirs(opt):
        return nested(torch.optim.lr_scheduler, opt)

    mine, reference = rates(ours, theirs, [0.3, 1.0])
    np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
    resumed, _ = rates(ours, theirs, [0.3, 1.0], resume_at=resume_at)
    np.testing.assert_allclose(resumed, mine, rtol=1e-12, atol=1e-15)


def test_chained_scheduler_refuses_a_plateau_scheduler_and_another_optimizer():
    opt, _ = _optimizers([0.5])
    other, _ = _optimizers([0.5])
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="another optimizer"):
        lr_scheduler.ChainedScheduler(
            [lr_scheduler.ExponentialLR(opt, 0.9), lr_scheduler.ExponentialLR(other, 0.9)]
        )


SEQUENCES = {
    "warm-up then cosine": lambda m, o: [
        m.LinearLR(o, 0.1, total_iters=4),
        m.CosineAnnealingLR(o, 8),
    ],
    "constant, step, exponential": lambda m, o: [
        m.ConstantLR(o, 0.5, total_iters=3),
        m.StepLR(o, 2, 0.5),
        m.ExponentialLR(o, 0.9),
    ],
    "multiplicative then polynomial": lambda m, o: [
        m.MultiplicativeLR(o, lambda epoch: 0.95),
        m.PolynomialLR(o, total_iters=6, power=2.0),
    ],
    "lambda then multistep": lambda m, o: [
        m.LambdaLR(o, lambda epoch: 1.0 / (1 + epoch)),
        m.MultiStepLR(o, [0, 3, 3, 7], 0.5),
    ],
}


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
@settings(max_examples=5, deadline=None)
@given(first=st.integers(1, 8), gap=st.integers(1, 8), resume_at=st.integers(1, STEPS - 1))
def test_sequential_lr_matches_pytorch_and_resumes(sequence, first, gap, resume_at):
    def sequential(module, opt):
        schedulers = SEQUENCES[sequence](module, opt)
        milestones = [first + gap * i for i in range(len(schedulers) - 1)]
        return module.SequentialLR(opt, schedulers, milestones)

    def ours(opt):
        return sequential(lr_scheduler, opt)

    def theirs(opt):
        return sequential(torch.optim.lr_scheduler, opt)

    mine, reference = rates(ours, theirs, [0.3, 1.0])
    np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
    resumed, _ = rates(ours, theirs, [0.3, 1.0], resume_at=resume_at)
    np.testing.assert_allclose(resumed, mine, rtol=1e-12, atol=1e-15)


def test_sequential_lr_refuses_bad_milestones_and_other_optimizers():
    opt, _ = _optimizers([0.5])
    other, _ = _optimizers([0.5])
    first, second = lr_scheduler.ExponentialLR(opt, 0.9), lr_scheduler.ExponentialLR(opt, 0.8)
    with pytest.raises(ValueError, match="milestones"):
        lr_scheduler.SequentialLR(opt, [first, second], [])
    with pytest.raises(ValueError, match="milestones"):
        lr_scheduler.SequentialLR(opt, [first, second], [2.5])
    with pytest.raises(ValueError, match="another optimizer"):
        lr_scheduler.SequentialLR(opt, [first, lr_scheduler.ExponentialLR(other, 0.9)], [2])


@settings(max_examples=12, deadline=None)
@given(
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    up=st.integers(1, 5),
    down=st.one_of(st.none(), st.integers(1, 5)),
    gamma=st.floats(0.8, 1.0),
    adam=st.booleans(),
    resume_at=st.integers(1, STEPS - 1),
)
def test_cyclic_lr_matches_pytorch_with_its_momentum_and_resumes(
    mode, up, down, gamma, adam, resume_at
):
    kwargs = {
        "base_lr": [0.01, 0.02],
        "max_lr": 0.1,
        "step_size_up": up,
        "step_size_down": down,
        "mode": mode,
        "gamma": gamma,
    }
    params = [np.zeros(1), np.zeros(1)]

    def build(library, make):
        tensors = [make(p) for p in params]
        if adam:
            opt = library.optim.Adam([{"params": [t]} for t in tensors])
        else:
            opt = library.optim.SGD([{"params": [t]} for t in tensors], lr=0.1, momentum=0.5)
        return opt, library.optim.lr_scheduler.CyclicLR(opt, **kwargs)

    def ours_():
        return build(tg, lambda p: Tensor(p.copy(), requires_grad=True))

    ours_opt, ours = ours_()
    theirs_opt, theirs = build(torch, lambda p: torch.tensor(p.copy(), requires_grad=True))
    key = "betas" if adam else "momentum"
    for step in range(STEPS):
        if step == resume_at:
            saved_opt, saved = ours_opt.state_dict(), ours.state_dict()
            ours_opt, ours = ours_()
            ours_opt.load_state_dict(saved_opt)
            ours.load_state_dict(saved)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        for group, their_group in zip(ours_opt.param_groups, theirs_opt.param_groups):
            assert group[key] == pytest.approx(their_group[key], rel=1e-12)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"base_lr": [0.1, 0.2, 0.3]}, ValueError, "base_lr"),
        ({"mode": "square"}, ValueError, "mode"),
        ({"step_size_up": 0}, ValueError, "step_size_up"),
        ({"scale_mode": "epochs", "scale_fn": lambda x: 1.0}, ValueError, "scale_mode"),
        ({"scale_fn": 3}, TypeError, "scale_fn"),
    ],
)
def test_cyclic_lr_refuses_bad_arguments(kwargs, error, match):
    opt, _ = _optimizers([0.5])
    with pytest.raises(error, match=match):
        lr_scheduler.CyclicLR(opt, **{"base_lr": 0.01, "max_lr": 0.1, **kwargs})
    assert opt.param_groups[0]["lr"] == 0.5
