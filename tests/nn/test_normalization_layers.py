"""``GroupNorm``, ``InstanceNorm1d/2d`` and ``RMSNorm`` with their functional forms: gradients of
first and second order (reverse and forward mode) in float64 over random shapes, outputs,
gradients and running statistics against PyTorch, PyTorch state_dicts loaded unchanged, and bad
arguments refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.graph import ShapeError
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays

MODES = ("rev", "fwd")


def against_torch(ours_fn, torch_fn, values, rtol=1e-9, atol=1e-11):
    """Outputs and the gradients of every input agree with PyTorch in float64."""
    torch = pytest.importorskip("torch")
    ours = [Tensor(a.copy(), requires_grad=True) for a in values]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in values]
    y, yt = ours_fn(*ours), torch_fn(*theirs)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    yt.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=rtol, atol=atol)


def spread(shape):
    """Float64 arrays of ``shape`` with distinct values on a grid of step 0.1: any two values
    of a group differ by 0.1 or more, so every variance stays well away from 0."""
    return arrays(shape, unique=True, low=-6.0, high=6.0, spacing=0.1)


# ----------------------------------------------------------------------------- group norm
@st.composite
def group_case(draw):
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    spatial = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    shape = (draw(st.integers(1, 2)), groups * per_group, *spatial)
    if per_group * int(np.prod(spatial)) < 2:  # a group of one value has no variance to divide
        shape = (*shape[:2], *spatial, 2)
    return groups, shape


@settings(max_examples=20, deadline=None)
@given(group_case(), st.booleans(), st.data())
def test_group_norm_gradcheck_first_and_second_order_both_modes(case, affine, data):
    groups, shape = case
    values = [data.draw(spread(shape))]
    if affine:
        values += [data.draw(arrays((shape[1],))) for _ in range(2)]
    inputs = [Tensor(a, requires_grad=True) for a in values]

    def fn(*t):
        return F.group_norm(t[0], groups, *t[1:])

    assert tg.gradcheck(fn, inputs, modes=MODES)
    assert tg.gradgradcheck(fn, inputs, modes=MODES)
    against_torch(
        fn,
        lambda *t: pytest.importorskip("torch").nn.functional.group_norm(t[0], groups, *t[1:]),
        values,
    )


def test_group_norm_with_one_value_per_group_gives_the_shift():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    out = F.group_norm(x, 3, bias=Tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(out.data, [[1.0, 2.0, 3.0]] * 2)


@pytest.mark.parametrize("affine", [True, False])
def test_pytorch_group_norm_state_dict_loads_into_ours_with_equal_outputs(affine):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.GroupNorm(2, 6, eps=1e-3, affine=affine).double()
    if affine:
        with torch.no_grad():
            theirs.weight.normal_(), theirs.bias.normal_()
    ours = nn.GroupNorm(2, 6, eps=1e-3, affine=affine, dtype=np.float64)
    state = theirs.state_dict()  # PyTorch's tensors, loaded as they are
    assert list(state) == list(ours.state_dict())
    assert ours.load_state_dict(state) == nn.IncompatibleKeys([], [])
    x = np.random.default_rng(1).standard_normal((3, 6, 4, 5))
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- instance norm
@st.composite
def instance_case(draw):
    spatial = draw(st.sampled_from([1, 2]))
    sides = [draw(st.integers(1, 3)) for _ in range(spatial)]
    sides[-1] = max(sides[-1], 2)
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *sides)


@settings(max_examples=20, deadline=None)
@given(instance_case(), st.booleans(), st.data())
def test_instance_norm_gradcheck_first_and_second_order_both_modes(shape, affine, data):
    values = [data.draw(spread(shape))]
    if affine:
        values += [data.draw(arrays((shape[1],))) for _ in range(2)]
    inputs = [Tensor(a, requires_grad=True) for a in values]

    def fn(*t):
        return F.instance_norm(t[0], None, None, *t[1:])

    assert tg.gradcheck(fn, inputs, modes=MODES)
    assert tg.gradgradcheck(fn, inputs, modes=MODES)
    against_torch(
        fn,
        lambda *t: pytest.importorskip("torch").nn.functional.instance_norm(
            t[0], None, None, *t[1:]
        ),
        values,
    )


def test_instance_norm_with_running_statistics_in_evaluation_is_differentiable():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal(3), rng.standard_normal(3)
    mean, var = Tensor(rng.standard_normal(3)), Tensor(rng.uniform(0.5, 2.0, 3))

    def fn(*t):
        return F.instance_norm(t[0], mean, var, t[1], t[2], use_input_stats=False)

    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(fn, inputs, modes=MODES)
    assert tg.gradgradcheck(fn, inputs, modes=MODES)


@pytest.mark.parametrize(
    ("layer", "shape"),
    [("InstanceNorm1d", (3, 4, 7)), ("InstanceNorm2d", (2, 4, 3, 5)), ("InstanceNorm1d", (4, 6))],
)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_instance_norm_layers_match_pytorch_in_training_and_evaluation(layer, shape, momentum):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    options = {"affine": True, "track_running_stats": True, "momentum": momentum}
    theirs = getattr(torch.nn, layer)(4, **options).double()
    with torch.no_grad():
        theirs.weight.normal_(), theirs.bias.normal_()
        theirs.running_mean.normal_(), theirs.running_var.uniform_(0.5, 2.0)
    ours = getattr(nn, layer)(4, dtype=np.float64, **options)
    state = theirs.state_dict()  # PyTorch's tensors, loaded as they are
    assert list(state) == list(ours.state_dict())
    assert ours.load_state_dict(state) == nn.IncompatibleKeys([], [])
    rng = np.random.default_rng(2)
    for training in (True, True, False):
        theirs.train(training), ours.train(training)
        x = rng.standard_normal(shape)
        expected = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-10, atol=1e-12)
        for name in ("running_mean", "running_var"):
            mine, reference = getattr(ours, name).data, getattr(theirs, name).numpy()
            np.testing.assert_allclose(mine, reference, rtol=1e-12, atol=1e-14)


def test_instance_norm_default_has_no_parameters_or_buffers():
    layer = nn.InstanceNorm2d(3)
    assert layer.state_dict() == {} and list(layer.parameters()) == []
    assert repr(layer) == (
        "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)"
    )
    torch = pytest.importorskip("torch")
    assert list(torch.nn.InstanceNorm2d(3).state_dict()) == []


# ----------------------------------------------------------------------------- RMS norm
@st.composite
def rms_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    return shape, shape[draw(st.integers(0, len(shape) - 1)) :]


@settings(max_examples=20, deadline=None)
@given(rms_case(), st.booleans(), st.sampled_from([None, 1e-3]), st.data())
def test_rms_norm_gradcheck_first_and_second_order_both_modes(case, affine, eps, data):
    shape, normalized = case
    values = [data.draw(arrays(shape, low=0.5, high=3.0))]
    if affine:
        values.append(data.draw(arrays(normalized)))
    inputs = [Tensor(a, requires_grad=True) for a in values]

    def fn(*t):
        return F.rms_norm(t[0], normalized, *t[1:], eps=eps)

    assert tg.gradcheck(fn, inputs, modes=MODES)
    assert tg.gradgradcheck(fn, inputs, modes=MODES)
    against_torch(
        fn,
        lambda *t: pytest.importorskip("torch").nn.functional.rms_norm(
            t[0], normalized, *t[1:], eps=eps
        ),
        values,
    )


@pytest.mark.parametrize("options", [{}, {"eps": 1e-2}, {"elementwise_affine": False}])
def test_pytorch_rms_norm_state_dict_loads_into_ours_with_equal_outputs(options):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.RMSNorm((3, 4), **options).double()
    if theirs.weight is not None:
        with torch.no_grad():
            theirs.weight.normal_()
    ours = nn.RMSNorm((3, 4), dtype=np.float64, **options)
    state = theirs.state_dict()  # PyTorch's tensors, loaded as they are
    assert list(state) == list(ours.state_dict())
    assert ours.load_state_dict(state) == nn.IncompatibleKeys([], [])
    x = np.random.default_rng(1).standard_normal((2, 5, 3, 4)) * 1e-4
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


def test_rms_norm_default_eps_follows_the_dtype():
    x = np.full((1, 2), 1e-4, dtype=np.float32)
    expected = x / np.sqrt(np.float32(1e-8) + np.finfo(np.float32).eps)
    np.testing.assert_allclose(nn.RMSNorm(2)(Tensor(x)).data, expected, rtol=1e-6)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("build", "error", "named"),
    [
        (lambda: nn.GroupNorm(4, 6), ValueError, "num_channels=6 must be divisible by"),
        (lambda: nn.GroupNorm(0, 6), ValueError, "num_groups"),
        (lambda: nn.GroupNorm(2, 2.5), ValueError, "num_channels"),
        (lambda: nn.GroupNorm(2, 4, eps=-1), ValueError, "eps"),
        (lambda: nn.GroupNorm(2, 4, dtype=np.int64), TypeError, "dtype"),
        (lambda: nn.InstanceNorm1d(0), ValueError, "num_features"),
        (lambda: nn.InstanceNorm2d(3, momentum=2.0), ValueError, "momentum"),
        (lambda: nn.RMSNorm(()), ValueError, "normalized_shape"),
        (lambda: nn.RMSNorm((2, 0)), ValueError, r"normalized_shape\[1\]"),
        (lambda: nn.RMSNorm("ab"), ValueError, "normalized_shape"),
        (lambda: nn.RMSNorm(2, eps=-1.0), ValueError, "eps"),
    ],
)
def test_layers_refuse_bad_settings_by_name(build, error, named):
    with pytest.raises(error, match=named):
        build()


def test_functions_and_layers_refuse_mismatched_inputs_by_name():
    x = Tensor(np.ones((2, 6, 3)))
    with pytest.raises(ValueError, match="num_groups=4 must be a positive divisor of the 6"):
        F.group_norm(x, 4)
    with pytest.raises(ShapeError, match=r"weight has shape \(3,\), expected \(6,\)"):
        F.group_norm(x, 2, Tensor(np.ones(3)))
    with pytest.raises(ShapeError, match="group_norm: needs input"):
        F.group_norm(Tensor(np.ones(6)), 2)
    with pytest.raises(ShapeError, match=r"GroupNorm\(num_channels=4\)"):
        nn.GroupNorm(2, 4)(x)
    with pytest.raises(ValueError, match="more than one spatial value"):
        F.instance_norm(Tensor(np.ones((2, 6, 1))))
    with pytest.raises(ValueError, match="use_input_stats=False needs running_mean"):
        F.instance_norm(x, use_input_stats=False)
    with pytest.raises(ShapeError, match="running_mean has shape"):
        F.instance_norm(x, Tensor(np.zeros(2)), Tensor(np.ones(2)))
    with pytest.raises(ShapeError, match=r"InstanceNorm2d: expects a 3-d \(unbatched\) or 4-d"):
        nn.InstanceNorm2d(6)(Tensor(np.ones((6, 3))))
    with pytest.raises(ShapeError, match=r"InstanceNorm2d\(6\).*2 channels"):
        nn.InstanceNorm2d(6)(x)
    with pytest.raises(ShapeError, match=r"InstanceNorm1d\(4\).*6 channels"):
        nn.InstanceNorm1d(4)(x)
    with pytest.raises(ShapeError, match="trailing axes"):
        F.rms_norm(x, (6,))
    with pytest.raises(ShapeError, match=r"rms_norm: weight has shape"):
        F.rms_norm(x, 3, Tensor(np.ones(2)))
