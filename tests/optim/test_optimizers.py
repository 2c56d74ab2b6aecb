"""Optimizers: their update formulas, parameter groups, checkpoints, schedulers and clipping
(vs PyTorch when present)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn, optim
from tinygrad_edu.optim import lr_scheduler

CONFIGS = {
    "SGD": ({"lr": 0.1}, {"lr": 0.1}),
    "SGD-momentum-dampening": (
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "dampening": 0.3},
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "dampening": 0.3},
    ),
    "SGD-nesterov": (
        {"lr": 0.05, "momentum": 0.8, "nesterov": True},
        {"lr": 0.05, "momentum": 0.8, "nesterov": True},
    ),
    "Adam": ({"lr": 0.1}, {"lr": 0.1}),
    "Adam-decay-amsgrad": (
        {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.9)},
        {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.9)},
    ),
    "AdamW": ({"lr": 0.1, "weight_decay": 0.05}, {"lr": 0.1, "weight_decay": 0.05}),
    "RMSprop": ({"lr": 0.01}, {"lr": 0.01}),
    "RMSprop-centered-momentum": (
        {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
        {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
    ),
    "Adagrad": ({"lr": 0.1}, {"lr": 0.1}),
    "Adagrad-decay": (
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.2},
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.2},
    ),
    "Adamax": ({"lr": 0.1, "weight_decay": 0.1}, {"lr": 0.1, "weight_decay": 0.1}),
    "Adadelta": ({"rho": 0.8, "weight_decay": 0.1}, {"rho": 0.8, "weight_decay": 0.1}),
    "NAdam": ({"lr": 0.05, "weight_decay": 0.1}, {"lr": 0.05, "weight_decay": 0.1}),
    "NAdam-decoupled": (
        {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    ),
    "RAdam": ({"lr": 0.05, "betas": (0.9, 0.8)}, {"lr": 0.05, "betas": (0.9, 0.8)}),
    "Rprop": ({"lr": 0.05}, {"lr": 0.05}),
}


def _class(config: str) -> str:
    return config.split("-")[0]


def _losses(values, targets, step: int):
    """A quadratic whose second parameter joins at step 4 and skips step 9."""
    active = [0] if step < 4 else ([0] if step == 9 else [0, 1])
    return sum(((values[i] - targets[i]) ** 2 * (i + 1)).sum() for i in active)


def run_ours(config: str, steps: int, start, targets, resume_at: int | None = None):
    ours, _ = CONFIGS[config]
    params = [Tensor(s.copy(), requires_grad=True) for s in start]
    opt = getattr(optim, _class(config))(params, **ours)
    for step in range(steps):
        if step == resume_at:  # a fresh optimizer continues from the checkpoint
            saved = copy.deepcopy(opt.state_dict())
            opt = getattr(optim, _class(config))(params, **ours)
            opt.load_state_dict(saved)
        opt.zero_grad()
        _losses(params, [Tensor(t) for t in targets], step).backward()
        opt.step()
    return [p.data for p in params]


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal((2, 3)), rng.standard_normal(4)]
    targets = [rng.standard_normal((2, 3)), rng.standard_normal(4)]
    return start, targets


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_pytorch_with_a_parameter_joining_late(config):
    torch = pytest.importorskip("torch")
    start, targets = problem()
    ours = run_ours(config, 20, start, targets)
    _, theirs_options = CONFIGS[config]
    tparams = [torch.tensor(s.copy(), requires_grad=True) for s in start]
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # PyTorch's scalar state (NAdam's mu_product) too
    try:
        opt = getattr(torch.optim, _class(config))(tparams, **theirs_options)
        for step in range(20):
            opt.zero_grad()
            _losses(tparams, [torch.tensor(t) for t in targets], step).backward()
            opt.step()
    finally:
        torch.set_default_dtype(default_dtype)
    for mine, theirs in zip(ours, tparams):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_adam_late_parameter_moves_like_a_fresh_one():
    """Issue 9: a parameter whose first gradient comes at step 4 moves lr (bias-corrected)."""
    early, late = Tensor(np.zeros(1), requires_grad=True), Tensor(np.zeros(1), requires_grad=True)
    opt = optim.Adam([early, late], lr=0.1)
    for step in range(4):
        early.grad = Tensor(np.ones(1))
        late.grad = Tensor(np.ones(1)) if step == 3 else None
        opt.step()
    assert late.data[0] == pytest.approx(-0.1, rel=1e-6)
    assert opt.state[id(late)]["step"] == 1 and opt.state[id(early)]["step"] == 4


def test_adam_reuses_its_state_arrays():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = Tensor(np.ones(3))
    opt.step()
    moments = opt.state[id(p)]["exp_avg"], opt.state[id(p)]["exp_avg_sq"]
    opt.step()
    assert opt.state[id(p)]["exp_avg"] is moments[0]
    assert opt.state[id(p)]["exp_avg_sq"] is moments[1]


@pytest.mark.parametrize("config", CONFIGS)
def test_resuming_from_a_state_dict_is_bit_for_bit(config):
    start, targets = problem(1)
    uninterrupted = run_ours(config, 12, start, targets)
    resumed = run_ours(config, 12, start, targets, resume_at=6)
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)


def test_state_dict_is_a_snapshot_and_load_checks_shapes():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = Tensor(np.ones(3))
    opt.step()
    saved = opt.state_dict()
    assert saved["param_groups"][0]["params"] == [0]
    saved["state"][0]["momentum_buffer"][0] = 99.0
    assert opt.state[id(p)]["momentum_buffer"][0] == 1.0
    other = optim.SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"momentum_buffer.*\(3,\).*\(2,\)"):
        other.load_state_dict(saved)
    two_groups = optim.SGD([{"params": [p]}, {"params": [Tensor(np.ones(1))]}], lr=0.1)
    with pytest.raises(ValueError, match="1 parameter groups, the optimizer 2"):
        two_groups.load_state_dict(saved)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"bogus": 1})


def test_parameter_groups_have_their_own_hyperparameters():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1)
    a.grad, b.grad = Tensor(np.ones(2)), Tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(a.data, [0.9, 0.9])
    np.testing.assert_allclose(b.data, [0.5, 0.5])
    assert opt.param_groups[1]["momentum"] == 0.0
    with pytest.raises(ValueError, match="more than one group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="'params' key"):
        opt.add_param_group([a])


def test_bad_hyperparameters_are_named():
    p = Tensor(np.ones(1), requires_grad=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        optim.RMSprop([p], momentum=-1)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad([p], lr_decay=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.AdamW([p], betas=(0.9,))


def test_step_with_closure_returns_the_loss():
    p = Tensor(np.array([3.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 9.0
    assert p.data[0] == pytest.approx(1.5)


def test_zero_grad_can_keep_zero_tensors():
    p = Tensor(np.ones(2), requires_grad=True)
    p.grad = Tensor(np.ones(2))
    optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0, 0])


# ----------------------------------------------------------------------------- schedulers
def _rates(make, steps: int, optimizer: str = "SGD") -> list[list[float]]:
    p = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([p], lr=0.5, momentum=0.9) if optimizer == "SGD" else optim.Adam([p], lr=0.5)
    sched = make(opt)
    out = []
    for _ in range(steps):
        group = opt.param_groups[0]
        out.append([group["lr"], group.get("momentum", group.get("betas", (0,))[0])])
        opt.step()
        sched.step()
    return out


SCHEDULES = {
    "StepLR": (lambda m: (lambda o: m.StepLR(o, step_size=3, gamma=0.5)), 10),
    "Cosine": (lambda m: (lambda o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.01)), 20),
    "OneCycle": (lambda m: (lambda o: m.OneCycleLR(o, max_lr=1.0, total_steps=20)), 20),
    "OneCycle-linear-3phase": (
        lambda m: (
            lambda o: m.OneCycleLR(
                o, max_lr=0.8, epochs=3, steps_per_epoch=5, anneal_strategy="linear",
                three_phase=True, pct_start=0.4,
            )
        ),
        15,
    ),
}  # fmt: skip


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("name", SCHEDULES)
def test_schedulers_match_pytorch(name, optimizer):
    torch = pytest.importorskip("torch")
    factory, steps = SCHEDULES[name]
    ours = _rates(factory(lr_scheduler), steps, optimizer)
    p = torch.zeros(1, requires_grad=True)
    opt = (
        torch.optim.SGD([p], lr=0.5, momentum=0.9)
        if optimizer == "SGD"
        else torch.optim.Adam([p], lr=0.5)
    )
    sched = factory(torch.optim.lr_scheduler)(opt)
    theirs = []
    for _ in range(steps):
        group = opt.param_groups[0]
        theirs.append([group["lr"], group.get("momentum", group.get("betas", (0,))[0])])
        opt.step()
        sched.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14)


def test_step_lr_by_formula_and_scheduler_state_round_trip():
    rates = _rates(lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.1), 6)
    np.testing.assert_allclose([r[0] for r in rates], [0.5, 0.5, 0.05, 0.05, 0.005, 0.005])
    p = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    sched.step()
    saved = sched.state_dict()
    fresh_opt = optim.SGD([p], lr=1.0)
    fresh_opt.load_state_dict(opt.state_dict())
    fresh = lr_scheduler.CosineAnnealingLR(fresh_opt, T_max=4, last_epoch=saved["last_epoch"])
    fresh.load_state_dict(saved)
    sched.step()
    fresh.step()
    assert fresh.get_last_lr() == sched.get_last_lr() == [fresh_opt.param_groups[0]["lr"]]


PAIRS = {
    "StepLR+Cosine": lambda m, o: [m.StepLR(o, 3, 0.5), m.CosineAnnealingLR(o, 7, eta_min=0.01)],
    "Cosine+StepLR": lambda m, o: [m.CosineAnnealingLR(o, 5), m.StepLR(o, 2, 0.1)],
    "StepLR+StepLR": lambda m, o: [m.StepLR(o, 2, 0.5), m.StepLR(o, 3, 0.1)],
    "OneCycle+StepLR": lambda m, o: [m.OneCycleLR(o, 1.0, total_steps=30), m.StepLR(o, 4, 0.5)],
    "StepLR+OneCycle": lambda m, o: [m.StepLR(o, 4, 0.5), m.OneCycleLR(o, 1.0, total_steps=30)],
    "Cosine+Cosine": lambda m, o: [m.CosineAnnealingLR(o, 4), m.CosineAnnealingLR(o, 9, 0.1)],
}


def _composed_rates(module, make_optimizer, pair: str, steps: int = 24) -> list[float]:
    opt = make_optimizer()
    schedulers = PAIRS[pair](module, opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        for scheduler in schedulers:
            scheduler.step()
    return rates


@pytest.mark.parametrize("pair", PAIRS)
def test_two_schedulers_on_one_optimizer_compose_like_pytorch(pair):
    """Each scheduler's step applies its own change to the current rate (PyTorch's chainable
    form); they used to overwrite each other, the last one's closed form winning."""
    torch = pytest.importorskip("torch")
    ours = _composed_rates(
        lr_scheduler, lambda: optim.SGD([Tensor(np.zeros(1))], lr=0.5, momentum=0.9), pair
    )
    theirs = _composed_rates(
        torch.optim.lr_scheduler,
        lambda: torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5, momentum=0.9),
        pair,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_composed_step_and_cosine_schedules_multiply():
    opt = optim.SGD([Tensor(np.zeros(1))], lr=1.0)
    step = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        step.step()
        cosine.step()
    expected = [1.0, 0.8535533905932737, 0.25, 0.07322330470336313, 0.0]  # cosine x step
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-15)
    assert cosine.get_last_lr() == [opt.param_groups[0]["lr"]]  # the last one to step


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        ({"last_epoch": "3"}, TypeError, "'last_epoch' must be like"),
        ({"last_epoch": 2.0}, ValueError, "'last_epoch' must be an int >= -1"),
        ({"last_epoch": -5}, ValueError, "'last_epoch' must be an int >= -1"),
        ({"base_lrs": [0.5, 0.5]}, TypeError, "'base_lrs' must be a list of 1"),
        ({"base_lrs": ["0.5"]}, TypeError, "'base_lrs' must be like"),
        ({"base_lrs": [float("nan")]}, TypeError, "'base_lrs' must be like"),
        ({"gamma": float("inf")}, TypeError, "'gamma' must be like"),
        ({"optimizer": None}, ValueError, r"unknown keys \['optimizer'\]"),
        ({"bogus": 1}, ValueError, "unknown keys"),
        ({"_step_count": None}, TypeError, "'_step_count'"),
    ],
)
def test_a_malformed_scheduler_state_changes_nothing(edit, error, match):
    opt = optim.SGD([Tensor(np.zeros(1))], lr=0.5)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    sched.step()
    before = sched.state_dict()
    with pytest.raises(error, match=match):
        sched.load_state_dict({**before, **edit})
    assert sched.state_dict() == before and sched.optimizer is opt
    with pytest.raises(TypeError, match="expected a dict"):
        sched.load_state_dict([("last_epoch", 3)])


def test_a_refused_scheduler_step_changes_nothing():
    opt = optim.SGD([Tensor(np.zeros(1))], lr=0.1, momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    before = sched.state_dict(), dict(opt.param_groups[0])
    for _ in range(2):
        with pytest.raises(ValueError, match="total_steps=2"):
            sched.step()
    assert sched.state_dict() == before[0] and opt.param_groups[0] == before[1]


def test_one_cycle_refuses_to_run_past_its_end_and_bad_arguments():
    opt = optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1, momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="total_steps=2"):
        sched.step()
    with pytest.raises(ValueError, match="total_steps, or epochs"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="resuming"):
        lr_scheduler.StepLR(optim.SGD([Tensor(np.zeros(1))], lr=1.0), 2, last_epoch=3)


_BAD_SCHEDULES = [
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, final_div_factor=0), ValueError),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, div_factor=0.0), ValueError),
    (lambda o: lr_scheduler.OneCycleLR(o, [1.0, "x"], 10), TypeError),
    (lambda o: lr_scheduler.OneCycleLR(o, float("nan"), 10), TypeError),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, "5"), TypeError),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, epochs=2, steps_per_epoch=0), ValueError),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, base_momentum=[0.8, None]), TypeError),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, last_epoch=-2), ValueError),
    (lambda o: lr_scheduler.StepLR(o, "2"), TypeError),
    (lambda o: lr_scheduler.StepLR(o, 2, gamma="x"), TypeError),
    (lambda o: lr_scheduler.StepLR(o, 2, last_epoch=True), ValueError),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, "3"), TypeError),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 3, eta_min=float("inf")), TypeError),
]


@pytest.mark.parametrize(("make", "error"), _BAD_SCHEDULES)
def test_a_scheduler_refuses_bad_arguments_before_touching_the_groups(make, error):
    """final_div_factor=0 set group 0's initial_lr and max_lr, then raised ZeroDivisionError;
    strings ended in raw TypeErrors; NaN rates were written into the groups."""
    opt = optim.SGD(
        [{"params": [Tensor(np.zeros(1), requires_grad=True)]}, {"params": [Tensor(np.ones(1))]}],
        lr=0.1,
        momentum=0.9,
    )
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(error, match=r"^(OneCycleLR|StepLR|CosineAnnealingLR): "):
        make(opt)
    assert_same(opt.state_dict(), before)


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf, 0.0, 0.5, 3.0, -1.0, -np.inf, "inf"])
@pytest.mark.parametrize("special", [None, 0.0, np.nan])
def test_clip_grad_norm_matches_pytorch(norm_type, special):
    """Also orders 0 (ZeroDivisionError), -inf (returned 1.0 where the norm is 0), negative
    orders, and zero or NaN entries (a NaN norm left the gradients unscaled)."""
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((3, 2)), rng.standard_normal(5)]
    if special is not None:
        grads[1][2] = special
    params = [Tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = Tensor(g.copy())
    total = nn.utils.clip_grad_norm_(params, 1.0, norm_type)
    if norm_type in (2.0, 1.0, np.inf) and special is None:
        flat = np.concatenate([g.ravel() for g in grads])
        expected = np.abs(flat).max() if norm_type == np.inf else np.linalg.norm(flat, norm_type)
        assert total.item() == pytest.approx(expected)
        scale = 1.0 / (expected + 1e-6)
        for p, g in zip(params, grads):
            np.testing.assert_allclose(p.grad.data, g * scale, rtol=1e-12)
    torch = pytest.importorskip("torch")
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(tparams, grads):
        p.grad = torch.tensor(g.copy())
    theirs = torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type)
    assert total.item() == pytest.approx(theirs.item(), rel=1e-12, nan_ok=True)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_leaves_small_and_shared_gradients_alone():
    shared = Tensor(np.array([3.0, 4.0]))
    a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)
    a.grad = b.grad = shared
    total = nn.utils.clip_grad_norm_([a, b], 1.0)
    assert total.item() == pytest.approx(np.sqrt(50))
    np.testing.assert_array_equal(shared.data, [3.0, 4.0])  # never scaled in place
    np.testing.assert_allclose(a.grad.data, [3 / np.sqrt(50), 4 / np.sqrt(50)], rtol=1e-6)
    c = Tensor(np.zeros(1), requires_grad=True)
    c.grad = Tensor(np.array([0.5]))
    nn.utils.clip_grad_norm_(c, 1.0)
    assert c.grad.data[0] == 0.5
    c.grad = Tensor(np.array([np.inf]))
    with pytest.raises(RuntimeError, match="inf"):
        nn.utils.clip_grad_norm_(c, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize(
    "config", ["SGD-nesterov", "Adam-decay-amsgrad", "RMSprop-centered-momentum"]
)
def test_resuming_from_an_npz_checkpoint_is_bit_for_bit(config, tmp_path):
    start, targets = problem(2)
    uninterrupted = run_ours(config, 10, start, targets)
    ours, _ = CONFIGS[config]
    params = [Tensor(s.copy(), requires_grad=True) for s in start]
    opt = getattr(optim, _class(config))(params, **ours)
    sched = lr_scheduler.StepLR(opt, step_size=100)  # adds initial_lr to the groups
    for step in range(10):
        if step == 5:
            tg.save(optim.flatten_state_dict(opt.state_dict()), tmp_path / "opt.npz")
            opt = getattr(optim, _class(config))(params, **ours)
            opt.load_state_dict(optim.unflatten_state_dict(tg.load(tmp_path / "opt.npz")))
        opt.zero_grad()
        _losses(params, [Tensor(t) for t in targets], step).backward()
        opt.step()
    assert sched.get_last_lr() == [ours["lr"]]
    for a, b in zip(uninterrupted, params):
        np.testing.assert_array_equal(a, b.data)
    with pytest.raises(ValueError, match="unexpected key 'bogus'"):
        optim.unflatten_state_dict({"bogus": np.zeros(1)})


# ----------------------------------------------------------------------------- refusals
def test_a_single_tensor_or_an_unordered_collection_is_refused_like_pytorch():
    p = Tensor(np.ones((3, 2)), requires_grad=True)
    with pytest.raises(
        TypeError,
        match="given to the optimizer should be an iterable of Tensors or dicts, but got Tensor",
    ):
        optim.SGD(p, lr=0.1)  # it used to iterate the rows and hold views of them
    with pytest.raises(TypeError, match=r"ordered collection.*set"):
        optim.Adam({p})
    with pytest.raises(TypeError, match=r"ordered collection.*dict"):
        optim.SGD({"params": [p]}, lr=0.1)
    with pytest.raises(TypeError, match="but got int"):
        optim.SGD(5, lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        optim.SGD([{"params": {p}}], lr=0.1)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"but got torch\.FloatTensor"):
        torch.optim.SGD(torch.ones(3, requires_grad=True), lr=0.1)


def test_duplicate_and_non_leaf_parameters_are_refused():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [a, b]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="appears twice in its group"):
        optim.Adam([a, b, a])
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([a * 2], lr=0.1)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: optim.SGD([p], lr="0.1"), TypeError, "lr must be a finite number"),
        (lambda p: optim.SGD([p], lr=float("nan")), TypeError, "lr must be a finite number"),
        (lambda p: optim.SGD([p], lr=10**400), TypeError, "lr must be a finite number"),
        (lambda p: optim.Adam([p], eps=-(10**400)), TypeError, "eps must be a finite number"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov=1), TypeError, "nesterov must be True"),
        (lambda p: optim.Adam([p], betas="ab"), TypeError, "betas must be a finite number"),
        (lambda p: optim.Adam([p], betas=(0.9,)), ValueError, "betas must be 2 numbers"),
        (lambda p: optim.Adam([p], betas=(0.9, "x")), TypeError, "betas must be a finite"),
        (lambda p: optim.RMSprop([p], momentum=None), TypeError, "momentum must be a finite"),
        (lambda p: optim.SGD([{"params": [p], "lr": [0.1]}], lr=0.1), TypeError, "lr"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make(Tensor(np.ones(1), requires_grad=True))


def _resize(p: Tensor) -> None:
    p.data, p.grad = np.zeros(5), Tensor(np.ones(5))  # its state keeps the old shape


@pytest.mark.parametrize(
    ("spoil", "match"),
    [
        (lambda p: setattr(p, "grad", Tensor(np.ones(1))), r"gradient of shape \(1,\)"),
        (lambda p: setattr(p, "grad", Tensor(np.ones((2, 3)))), r"gradient of shape \(2, 3\)"),
        (lambda p: setattr(p, "data", np.ones(3)[::1].view()), None),
        (lambda p: p.data.setflags(write=False), "read-only"),
        (_resize, r"exp_avg' of shape \(3,\), the parameter \(5,\)"),
    ],
)
def test_a_step_that_cannot_update_every_parameter_updates_none(spoil, match):
    """A bad last parameter (gradient or state of another shape, a read-only array) used to be
    found after the first ones were updated, or broadcast silently."""
    first, last = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([first, last], lr=0.1)
    for p in (first, last):
        p.grad = Tensor(np.ones(p.shape))
    opt.step()
    before = copy.deepcopy(opt.state_dict()), first.data.copy(), first._version
    spoil(last)
    if match is None:  # a harmless change: stepping still works
        opt.step()
        return
    with pytest.raises(ValueError, match=match):
        opt.step()
    assert_same(opt.state_dict(), before[0])
    np.testing.assert_array_equal(first.data, before[1])
    assert first._version == before[2]


def test_changing_a_group_setting_that_needs_new_state_is_refused_before_any_update():
    p, q = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([p, q], lr=0.1)
    p.grad, q.grad = Tensor(np.ones(2)), Tensor(np.ones(2))
    opt.step()
    opt.param_groups[0]["amsgrad"] = True  # Adam would look for max_exp_avg_sq
    start = p.data.copy()
    with pytest.raises(ValueError, match=r"lacks \['max_exp_avg_sq'\]"):
        opt.step()
    np.testing.assert_array_equal(p.data, start)


# ----------------------------------------------------------------------------- malformed state
def assert_same(a, b) -> None:
    """Equal nested structures: same types, equal arrays (dtype and values)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def _first_array_key(state: dict) -> str | None:
    return next((k for k, v in state[0].items() if isinstance(v, np.ndarray)), None)


def _spoil_array(value):
    def spoil(sd, name):
        key = _first_array_key(sd["state"]) or "momentum_buffer"
        sd["state"][0][key] = value(sd["state"][0].get(key, np.zeros((2, 3))))

    return spoil


def _spoil_step(value):
    def spoil(sd, name):
        if "step" not in sd["state"][0]:
            sd["state"][0]["momentum_buffer"] = "abc"  # SGD keeps no step: spoil what it keeps
        else:
            sd["state"][0]["step"] = value

    return spoil


def _foreign_state(sd, name):
    adam_like = {"step": 1, "exp_avg": np.zeros((2, 3)), "exp_avg_sq": np.zeros((2, 3))}
    sd["state"][0] = adam_like if name in ("SGD", "Adagrad") else {"momentum_buffer": np.ones(1)}
    if name == "Adagrad":
        sd["state"][0] = {"step": 1, "momentum_buffer": np.zeros((2, 3))}


def _drop_required(sd, name):
    if name == "SGD":
        sd["state"][1]["bogus"] = np.zeros(4)
    else:
        sd["state"][0].pop(next(k for k in sd["state"][0] if k != "step"))


def _foreign_group(sd, name):
    foreign = {"momentum": 0.9, "dampening": 0.0, "nesterov": False}
    if name == "SGD":
        foreign = {"betas": (0.9, 0.999), "amsgrad": False}
    sd["param_groups"][0] = {**foreign, "lr": 0.1, "params": sd["param_groups"][0]["params"]}


MALFORMED = {
    "not a dict": lambda sd, name: sd.clear(),
    "param_groups a dict": lambda sd, name: sd.update(param_groups={"0": sd["param_groups"][0]}),
    "state a list": lambda sd, name: sd.update(state=list(sd["state"].values())),
    "group without params": lambda sd, name: sd["param_groups"][0].pop("params"),
    "params a string": lambda sd, name: sd["param_groups"][0].update(params="0"),
    "params of bools": lambda sd, name: sd["param_groups"][1].update(params=[True]),
    "one param too many": lambda sd, name: sd["param_groups"][1]["params"].append(7),
    "duplicate position": lambda sd, name: sd["param_groups"][1].update(params=[0]),
    "extra group": lambda sd, name: sd["param_groups"].append(dict(sd["param_groups"][0])),
    "missing group": lambda sd, name: sd["param_groups"].pop(),
    "group a string": lambda sd, name: sd["param_groups"].__setitem__(0, "lr=0.1"),
    "lr a string": lambda sd, name: sd["param_groups"][0].update(lr="0.1"),
    "lr negative": lambda sd, name: sd["param_groups"][1].update(lr=-1.0),
    "lr None": lambda sd, name: sd["param_groups"][1].update(lr=None),
    "unknown hyperparameter": lambda sd, name: sd["param_groups"][0].update(bogus=1),
    "scheduler key a string": lambda sd, name: sd["param_groups"][0].update(initial_lr="1"),
    "group of another optimizer": _foreign_group,
    "unknown position": lambda sd, name: sd["state"].update({9: sd["state"][0]}),
    "string position": lambda sd, name: sd["state"].update({"0": sd["state"].pop(0)}),
    "entry a string": lambda sd, name: sd["state"].update({0: "exp_avg"}),
    "array a string": _spoil_array(lambda v: "abc"),
    "array too long": _spoil_array(lambda v: np.zeros(v.size + 1)),
    "array transposed": _spoil_array(lambda v: np.zeros(v.shape[::-1])),
    "array of strings": _spoil_array(lambda v: np.full(v.shape, "a")),
    "array of objects": _spoil_array(lambda v: np.full(v.shape, None, dtype=object)),
    "array a list": _spoil_array(lambda v: v.tolist()),
    "array of bools": _spoil_array(lambda v: v > 0),
    "step a string": _spoil_step("3"),
    "step negative": _spoil_step(-1),
    "step a float": _spoil_step(3.0),
    "step a bool": _spoil_step(True),
    "step None": _spoil_step(None),
    "state of another optimizer": _foreign_state,
    "required state missing": _drop_required,
}
OPTIMIZERS = ["SGD-momentum-dampening", "Adam-decay-amsgrad", "RMSprop-centered-momentum"]
OPTIMIZERS += ["Adagrad-decay", "AdamW"]


def _trained(config: str):
    start, targets = problem(3)
    params = [Tensor(s.copy(), requires_grad=True) for s in start]
    opt = getattr(optim, _class(config))(
        [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05}], **CONFIGS[config][0]
    )
    for step in range(5, 7):  # both parameters active: state for both
        _losses(params, [Tensor(t) for t in targets], step).backward()
        opt.step()
    return params, opt


@settings(max_examples=60)
@given(
    st.sampled_from(OPTIMIZERS),
    st.lists(st.sampled_from(sorted(MALFORMED)), min_size=1, max_size=3, unique=True),
)
def test_a_malformed_optimizer_state_changes_nothing(config, spoilers):
    """Malformed structures and values (a group without params, mismatched counts, strings,
    wrong shapes, bad step counts, another optimizer's state or groups, unknown keys) are
    refused with an error from load_state_dict itself, nothing changes, and the next step
    equals that of an untouched optimizer."""
    params, opt = _trained(config)
    twin_params, twin = _trained(config)
    name = _class(config)
    saved = copy.deepcopy(opt.state_dict())
    before = copy.deepcopy(opt.state_dict()), [p.data.copy() for p in params]
    versions = [p._version for p in params]
    arrays = {id(v) for s in opt.state.values() for v in s.values()}
    for spoil in spoilers:
        # an earlier spoiler may have removed or replaced what this one edits (dict() of a
        # group that is now a string): still malformed
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError, ValueError):
            MALFORMED[spoil](saved, name)
    with pytest.raises((TypeError, ValueError), match=f"^{name}.load_state_dict: "):
        opt.load_state_dict(saved)
    assert_same(opt.state_dict(), before[0])
    assert {id(v) for s in opt.state.values() for v in s.values()} == arrays
    assert [p._version for p in params] == versions
    for p, data in zip(params, before[1]):
        np.testing.assert_array_equal(p.data, data)
    _, targets = problem(3)
    for ps, o in ((params, opt), (twin_params, twin)):
        o.zero_grad()
        _losses(ps, [Tensor(t) for t in targets], 7).backward()
        o.step()
    for p, q in zip(params, twin_params):
        np.testing.assert_array_equal(p.data, q.data)
    assert_same(opt.state_dict(), twin.state_dict())


def _read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.flags.writeable = False
    return array


#: state entries set by hand (not through load_state_dict) that no update can change in place
FIXED_STATE = {
    "int": lambda a: a.astype(np.int64),
    "read-only": _read_only,
    "broadcast": lambda a: np.broadcast_to(np.float64(1.0), a.shape),
    "Tensor": lambda a: Tensor(a),
}


@settings(max_examples=40)
@given(st.sampled_from(OPTIMIZERS), st.sampled_from(sorted(FIXED_STATE)), st.integers(0, 1))
def test_a_step_refuses_state_it_cannot_update_before_any_update(config, kind, which):
    """A state array swapped by hand for one the update cannot write (integers, read-only, a
    broadcast view, a Tensor) used to fail after the other parameters were updated."""
    params, opt = _trained(config)
    state = opt.state[id(params[which])]
    key = next(k for k, v in state.items() if isinstance(v, np.ndarray))
    state[key] = FIXED_STATE[kind](state[key])
    before = [p.data.copy() for p in params], [p._version for p in params]
    for p in params:
        p.grad = Tensor(np.ones(p.shape))
    with pytest.raises(ValueError, match=rf"step: parameter {which} has state \['{key}'\]"):
        opt.step()
    for p, data in zip(params, before[0]):
        np.testing.assert_array_equal(p.data, data)
    assert [p._version for p in params] == before[1]


@pytest.mark.parametrize("config", OPTIMIZERS)
def test_a_well_formed_state_still_loads_with_cast_and_unaliased_arrays(config):
    params, opt = _trained(config)
    saved = opt.state_dict()
    for values in saved["state"].values():  # float32 moments: cast to the parameters' float64
        values.update({k: v.astype(np.float32) for k, v in values.items() if k != "step"})
    fresh = getattr(optim, _class(config))(
        [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05}], **CONFIGS[config][0]
    )
    fresh.load_state_dict(saved)
    for position, p in enumerate(params):
        for key, value in fresh.state[id(p)].items():
            if key != "step":
                assert value.dtype == p.dtype and value is not saved["state"][position][key]
    assert fresh.param_groups[1]["lr"] == 0.05


# ----------------------------------------------------------------------------- update formulas
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


EVERY_OPTIMIZER = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "SGD-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.1),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.5, centered=True),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
}


@pytest.mark.parametrize("name", EVERY_OPTIMIZER)
def test_step_bumps_the_version_of_every_updated_parameter_and_nothing_else(name):
    """backward refuses a VJP whose inputs changed since the forward: a step in between must
    be visible as a new version of exactly the parameters it changed."""
    params = [Tensor(np.full(3, float(i + 1)), requires_grad=True) for i in range(3)]
    opt = EVERY_OPTIMIZER[name](params)
    params[0].grad, params[2].grad = Tensor(np.ones(3)), Tensor(np.ones(3))
    grads = [params[0].grad, params[2].grad]
    for step in range(1, 3):
        opt.step()
        assert [p._version for p in params] == [step, 0, step]
        assert [g._version for g in grads] == [0, 0]
