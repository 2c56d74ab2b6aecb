"""Losses: gradients vs finite differences (first and second order, float64), values and
gradients vs PyTorch (when installed), stability at extreme logits, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays

REDUCTIONS = ["mean", "sum", "none"]


def check_against_torch(ours_fn, torch_fn, inputs, rtol=1e-10):
    torch = pytest.importorskip("torch")
    ours = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in inputs]
    y, yt = ours_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=1e-12)
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    yt.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=rtol, atol=1e-12)


def torch_f():
    return pytest.importorskip("torch").nn.functional


def both_orders(fn, inputs):
    tensors = [Tensor(a, requires_grad=True) for a in inputs]
    assert tg.gradcheck(fn, tensors)
    assert tg.gradgradcheck(fn, tensors)


# ----------------------------------------------------------------------------- regression
PAIRWISE = {
    "l1_loss": ({}, {}),
    "smooth_l1_loss": ({"beta": 0.7}, {"beta": 0.7}),
    "huber_loss": ({"delta": 1.3}, {"delta": 1.3}),
    "mse_loss": ({}, {}),
}
#: where each loss switches from quadratic to linear, |d| = beta or delta: no derivative there
KINK = {"smooth_l1_loss": 0.7, "huber_loss": 1.3}


@pytest.mark.parametrize("name", PAIRWISE)
@given(
    shape=st.sampled_from([(), (3,), (2, 3)]), reduction=st.sampled_from(REDUCTIONS), data=st.data()
)
def test_regression_losses(name, shape, reduction, data):
    ours_options, torch_options = PAIRWISE[name]
    x = data.draw(arrays(shape))
    t = x + data.draw(arrays(shape, away_from_zero=0.05))  # off the kink |d| = 0
    if name in KINK and np.any(np.abs(np.abs(x - t) - KINK[name]) < 0.05):
        return  # off the kink |d| = beta (delta)
    fn = lambda a, b: getattr(F, name)(a, b, reduction, **ours_options)  # noqa: E731
    both_orders(fn, [x, t])
    check_against_torch(
        fn,
        lambda a, b: getattr(torch_f(), name)(a, b, reduction=reduction, **torch_options),
        [x, t],
    )


def test_smooth_l1_with_beta_zero_is_l1_and_huber_is_scaled_smooth_l1():
    x, t = Tensor(np.array([0.3, -2.0, 4.0])), np.array([0.0, 0.0, 1.0])
    assert F.smooth_l1_loss(x, t, beta=0.0).item() == pytest.approx(F.l1_loss(x, t).item())
    assert F.huber_loss(x, t, delta=2.0).item() == pytest.approx(
        2.0 * F.smooth_l1_loss(x, t, beta=2.0).item()
    )
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        F.huber_loss(x, t, delta=-1.0)


# ----------------------------------------------------------------------------- classification
@st.composite
def class_problem(draw):
    shape = draw(st.sampled_from([(4, 3), (3, 4, 2), (2, 3, 2, 2)]))
    logits = draw(arrays(shape, low=-3, high=3))
    target_shape = shape[:1] + shape[2:]
    classes = st.integers(0, shape[1] - 1)
    target = np.asarray(draw(hnp.arrays(np.int64, target_shape, elements=classes)))
    target.flat[0] = -100 if draw(st.booleans()) else target.flat[0]  # sometimes ignored
    weight = draw(st.none() | arrays((shape[1],), low=0.5, high=2.0))
    return logits, target, weight


@given(
    class_problem(),
    st.sampled_from(REDUCTIONS),
    st.sampled_from([0.0, 0.25]),
)
def test_cross_entropy_and_nll_with_weights_ignore_index_and_smoothing(problem, reduction, smooth):
    logits, target, weight = problem
    options = {"weight": weight, "label_smoothing": smooth}
    fn = lambda z: F.cross_entropy(z, target, reduction, **options)  # noqa: E731
    both_orders(fn, [logits])
    torch = pytest.importorskip("torch")
    torch_options = {
        "weight": None if weight is None else torch.tensor(weight),
        "label_smoothing": smooth,
    }
    check_against_torch(
        fn,
        lambda z: torch_f().cross_entropy(
            z, torch.tensor(target), reduction=reduction, **torch_options
        ),
        [logits],
    )
    nll = lambda z: F.nll_loss(z.log_softmax(axis=1), target, reduction, weight=weight)  # noqa: E731
    check_against_torch(
        nll,
        lambda z: torch_f().nll_loss(
            z.log_softmax(1),
            torch.tensor(target),
            reduction=reduction,
            weight=torch_options["weight"],
        ),
        [logits],
    )


@given(st.sampled_from(REDUCTIONS), st.sampled_from([0.0, 0.1]), st.data())
def test_cross_entropy_probability_targets_get_gradients(reduction, smooth, data):
    logits = data.draw(arrays((3, 4)))
    probabilities = data.draw(arrays((3, 4), low=0.1, high=1.0))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    fn = lambda z, p: F.cross_entropy(z, p, reduction, label_smoothing=smooth)  # noqa: E731
    both_orders(fn, [logits, probabilities])
    check_against_torch(
        fn,
        lambda z, p: torch_f().cross_entropy(z, p, reduction=reduction, label_smoothing=smooth),
        [logits, probabilities],
    )


def test_ignored_targets_contribute_nothing_and_the_mean_counts_only_the_rest():
    logits = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    target = np.array([1, -100, 3])
    loss = F.cross_entropy(logits, target)
    loss.backward()
    assert not logits.grad.data[1].any()
    kept = F.cross_entropy(Tensor(logits.data[[0, 2]]), target[[0, 2]], "none")
    assert loss.item() == pytest.approx(kept.data.mean())
    with pytest.raises(ValueError, match=r"\[0, 4\).*ignore_index=-100"):
        F.cross_entropy(logits, np.array([1, 4, 0]))
    with pytest.raises(tg.ShapeError, match=r"weight must have shape \(4,\)"):
        F.nll_loss(logits, target, weight=np.ones(3))
    with pytest.raises(ValueError, match="class weights go in weight="):
        F.cross_entropy(logits, target, np.ones(4))


@given(st.sampled_from(REDUCTIONS), st.booleans(), st.booleans(), st.data())
def test_bce_with_logits(reduction, weighted, pos_weighted, data):
    z, t = data.draw(arrays((3, 2), low=-4, high=4)), data.draw(arrays((3, 2), low=0, high=1))
    weight = data.draw(arrays((3, 2), low=0.5, high=2)) if weighted else None
    pos_weight = data.draw(arrays((2,), low=0.5, high=3)) if pos_weighted else None
    fn = lambda a, b: F.binary_cross_entropy_with_logits(  # noqa: E731
        a, b, reduction, weight=weight, pos_weight=pos_weight
    )
    both_orders(fn, [z, t])
    torch = pytest.importorskip("torch")
    as_torch = lambda a: None if a is None else torch.tensor(a)  # noqa: E731
    check_against_torch(
        fn,
        lambda a, b: torch_f().binary_cross_entropy_with_logits(
            a, b, weight=as_torch(weight), pos_weight=as_torch(pos_weight), reduction=reduction
        ),
        [z, t],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_at_extreme_logits(dtype):
    z = Tensor(np.array([-1000.0, 1000.0, -1000.0, 1000.0, 0.0], dtype=dtype), requires_grad=True)
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(z, t, "none")
    np.testing.assert_allclose(loss.data, [1000, 1000, 0, 0, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(z.grad.data, [-1, 1, 0, 0, -0.5], atol=1e-7)
    (hessian_diagonal,) = tg.grad(
        tg.grad(F.binary_cross_entropy_with_logits(z, t, "sum"), [z], create_graph=True)[0].sum(),
        [z],
    )
    np.testing.assert_allclose(hessian_diagonal.data, [0, 0, 0, 0, 0.25], atol=1e-7)


def test_binary_cross_entropy_weight():
    p, t = Tensor(np.array([0.2, 0.7])), np.array([0.0, 1.0])
    weighted = F.binary_cross_entropy(p, t, "none", weight=np.array([2.0, 0.5]))
    np.testing.assert_allclose(weighted.data, [-2 * np.log(0.8), -0.5 * np.log(0.7)], rtol=1e-6)


# ----------------------------------------------------------------------------- distributions
@pytest.mark.filterwarnings("ignore:reduction. .mean. divides")
@given(st.sampled_from([*REDUCTIONS, "batchmean"]), st.booleans(), st.data())
def test_kl_div(reduction, log_target, data):
    log_q = np.log(data.draw(arrays((3, 4), low=0.05, high=1.0)))
    p = data.draw(arrays((3, 4), low=0.05, high=1.0))
    target = np.log(p) if log_target else p
    fn = lambda a, b: F.kl_div(a, b, reduction, log_target=log_target)  # noqa: E731
    both_orders(fn, [log_q, target])
    check_against_torch(
        fn,
        lambda a, b: torch_f().kl_div(a, b, reduction=reduction, log_target=log_target),
        [log_q, target],
    )


def test_kl_div_zero_target_terms_vanish():
    log_q = Tensor(np.log(np.array([[0.5, 0.5]])), requires_grad=True)
    loss = F.kl_div(log_q, np.array([[1.0, 0.0]]), "sum")
    assert loss.item() == pytest.approx(np.log(2))
    loss.backward()
    np.testing.assert_array_equal(log_q.grad.data, [[-1.0, 0.0]])


# ----------------------------------------------------------------------------- modules
def test_loss_modules_pass_their_options():
    rng = np.random.default_rng(1)
    logits, target = Tensor(rng.standard_normal((4, 3))), np.array([0, 2, 1, 0])
    module = nn.CrossEntropyLoss("sum", label_smoothing=0.1, ignore_index=2)
    expected = F.cross_entropy(logits, target, "sum", label_smoothing=0.1, ignore_index=2)
    assert module(logits, target).item() == expected.item()
    assert nn.NLLLoss(weight=np.ones(3))(logits.log_softmax(), target).item() == pytest.approx(
        F.cross_entropy(logits, target).item()
    )
    x, y = Tensor(rng.standard_normal(5)), rng.standard_normal(5)
    assert nn.L1Loss()(x, y).item() == F.l1_loss(x, y).item()
    assert nn.SmoothL1Loss(beta=0.5)(x, y).item() == F.smooth_l1_loss(x, y, beta=0.5).item()
    assert nn.HuberLoss(delta=0.5)(x, y).item() == F.huber_loss(x, y, delta=0.5).item()
    assert nn.BCEWithLogitsLoss(pos_weight=np.full(5, 2.0))(x, np.ones(5)).item() == pytest.approx(
        2 * F.binary_cross_entropy_with_logits(x, np.ones(5)).item()
    )
    assert (
        nn.KLDivLoss("batchmean")(Tensor(np.log(np.full((2, 2), 0.5))), np.full((2, 2), 0.5)).item()
        == 0
    )
    with pytest.raises(ValueError, match="batchmean"):
        nn.MSELoss("batchmean")
    assert (
        "label_smoothing" not in repr(module)
        and repr(module) == "CrossEntropyLoss(reduction='sum')"
    )


def test_float32_stays_float32_through_every_loss():
    rng = np.random.default_rng(2)
    z = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    p = np.full((4, 3), 1 / 3, np.float32)
    labels = np.array([0, 2, 1, -100])
    losses = {
        "cross_entropy": F.cross_entropy(z, labels, weight=np.ones(3), label_smoothing=0.1),
        "cross_entropy_probabilities": F.cross_entropy(z, p, label_smoothing=0.1),
        "nll_loss": F.nll_loss(z, labels),
        "bce_with_logits": F.binary_cross_entropy_with_logits(z, p, pos_weight=np.ones(3)),
        "l1_loss": F.l1_loss(z, p),
        "smooth_l1_loss": F.smooth_l1_loss(z, p, beta=0.5),
        "huber_loss": F.huber_loss(z, p),
        "kl_div": F.kl_div(z.log_softmax(), p, "batchmean"),
        "kl_div_log_target": F.kl_div(z.log_softmax(), np.log(p), log_target=True),
    }
    assert {name: y.dtype for name, y in losses.items() if y.dtype != np.float32} == {}
    probability = Tensor(np.array([0.3, 0.0], np.float32), requires_grad=True)
    target = Tensor(np.array([0.2, 1.0], np.float32), requires_grad=True)
    loss = F.binary_cross_entropy(probability, target, "sum")
    (gradient,) = tg.grad(loss, [target], create_graph=True)  # the clamped-log rule
    assert gradient.dtype == np.float32 and np.isfinite(gradient.data).all()


@pytest.mark.parametrize("labels", [[0, 2, 1], np.array([0, 2, 1]), np.array([0, 2, 1], np.int32)])
def test_cross_entropy_takes_integer_tensor_labels(labels):
    """``Tensor(labels)`` keeps integer labels integer (int64 from Python ints), so the PyTorch
    idiom ``CrossEntropyLoss()(logits, Tensor(labels))`` works and equals passing the array."""
    logits = Tensor(np.random.default_rng(3).standard_normal((3, 4)), requires_grad=True)
    target = Tensor(labels)
    assert target.dtype.kind == "i"
    loss = nn.CrossEntropyLoss()(logits, target)
    np.testing.assert_allclose(loss.data, F.cross_entropy(logits, np.asarray(labels)).data)
    loss.backward()
    assert logits.grad.shape == (3, 4)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_float_class_labels_are_refused_naming_the_dtype(loss):
    logits = Tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"class indices must be integers, got dtype float32"):
        loss(logits, Tensor([0.0, 2.0, 1.0]))


# ----------------------------------------------------------------------------- losses
def test_mse_reductions():
    p, t = Tensor(np.array([1.0, 2.0, 4.0])), np.array([1.0, 0.0, 1.0])
    assert nn.MSELoss()(p, t).item() == pytest.approx(13 / 3)
    assert nn.MSELoss("sum")(p, t).item() == pytest.approx(13)
    np.testing.assert_allclose(nn.MSELoss("none")(p, t).data, [0, 4, 9])
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


def test_loss_refuses_silent_broadcasting():
    with pytest.raises(tg.ShapeError, match=r"\(4, 1\).*\(4,\)"):
        F.mse_loss(Tensor(np.ones((4, 1))), np.ones(4))


def test_bce_matches_formula_and_is_finite_at_the_edges():
    p = Tensor(np.array([0.2, 0.9, 0.0, 1.0]), requires_grad=True)
    t = np.array([0.0, 1.0, 1.0, 0.0])
    loss = nn.BCELoss("none")(p, t)
    np.testing.assert_allclose(loss.data[:2], [-np.log(0.8), -np.log(0.9)])
    np.testing.assert_allclose(loss.data[2:], [100.0, 100.0])
    loss.sum().backward()
    assert np.isfinite(p.grad.data[:2]).all()


@given(st.data())
def test_bce_gradcheck(data):
    shape = data.draw(st.sampled_from([(), (3,), (2, 2)]))
    p = Tensor(data.draw(arrays(shape, low=0.05, high=0.95)), requires_grad=True)
    t = Tensor(data.draw(arrays(shape, low=0.0, high=1.0)))
    assert tg.gradcheck(lambda q: F.binary_cross_entropy(q, t), [p])


def test_cross_entropy_indices_and_probabilities_agree():
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((4, 3)) * 5, requires_grad=True)
    labels = np.array([0, 2, 1, 2])
    by_index = nn.CrossEntropyLoss()(logits, labels)
    by_prob = nn.CrossEntropyLoss()(logits, np.eye(3)[labels])
    assert by_index.item() == pytest.approx(by_prob.item())
    log_probs = logits.data - np.log(np.exp(logits.data).sum(1, keepdims=True))
    assert by_index.item() == pytest.approx(-log_probs[np.arange(4), labels].mean())
    assert tg.gradcheck(lambda z: F.cross_entropy(z, labels, "sum"), [logits])


def test_cross_entropy_is_stable_and_checks_classes():
    logits = Tensor(np.array([[1000.0, -1000.0]]))
    assert np.isfinite(F.cross_entropy(logits, np.array([1])).item())
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        F.cross_entropy(logits, np.array([2]))
    with pytest.raises(tg.ShapeError, match="class indices"):
        F.cross_entropy(logits, np.array([[0]]))
