"""``conv1d`` and ``Conv1d``: gradients of first and second order (reverse and forward mode) in
float64 over random geometries, outputs and gradients against PyTorch, PyTorch state_dicts
loaded unchanged, and bad arguments refused by name."""

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


@st.composite
def conv1d_geometry(draw):
    """Shapes of (input, weight, bias) and the options of one valid 1-D convolution."""
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    reach = dilation * (kernel - 1) + 1
    padding = draw(st.sampled_from([0, 1, 2, "valid", "same"]))
    stride = 1 if padding == "same" else draw(st.integers(1, 2))
    pad_total = 2 * padding if isinstance(padding, int) else 0
    length = draw(st.integers(max(reach - pad_total, 1), max(reach - pad_total, 1) + 3))
    batch = draw(st.integers(1, 2))
    shapes = ((batch, cin, length), (cout, cin // groups, kernel), (cout,))
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return shapes, options


@settings(max_examples=25, deadline=None)
@given(conv1d_geometry(), st.booleans(), st.data())
def test_conv1d_gradcheck_both_modes(geometry, with_bias, data):
    shapes, options = geometry
    arrays_ = [data.draw(arrays(s)) for s in shapes[: 3 if with_bias else 2]]
    inputs = [Tensor(a, requires_grad=True) for a in arrays_]
    assert tg.gradcheck(lambda *t: F.conv1d(*t, **options), inputs, modes=("rev", "fwd"))


@settings(max_examples=8, deadline=None)
@given(conv1d_geometry(), st.data())
def test_conv1d_second_order_both_modes(geometry, data):
    shapes, options = geometry
    inputs = [Tensor(data.draw(arrays(s)), requires_grad=True) for s in shapes[:2]]
    assert tg.gradgradcheck(lambda *t: F.conv1d(*t, **options), inputs, modes=("rev", "fwd"))


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@settings(max_examples=25, deadline=None)
@given(conv1d_geometry(), st.data())
def test_conv1d_matches_pytorch_outputs_and_gradients(geometry, data):
    torch = pytest.importorskip("torch")
    shapes, options = geometry
    values = [data.draw(arrays(s)) for s in shapes]
    ours = [Tensor(a.copy(), requires_grad=True) for a in values]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in values]
    y, yt = F.conv1d(*ours, **options), torch.nn.functional.conv1d(*theirs, **options)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    yt.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"stride": 2, "padding": 1, "bias": False},
        {"padding": "same", "dilation": 2},
        {"padding": "valid", "groups": 2},
        {"stride": (2,), "padding": (2,), "dilation": (3,), "groups": 4},
    ],
)
def test_pytorch_conv1d_state_dict_loads_into_ours_with_equal_outputs(options):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Conv1d(4, 8, 3, **options).double()
    ours = nn.Conv1d(4, 8, 3, dtype=np.float64, initialise=False, **options)
    state = {key: value.numpy() for key, value in theirs.state_dict().items()}
    assert list(state) == list(ours.state_dict())
    assert ours.load_state_dict(state) == nn.IncompatibleKeys([], [])
    assert ours.weight.shape == (8, 4 // ours.groups, 3)
    x = np.random.default_rng(1).standard_normal((2, 4, 11))
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


def test_conv1d_default_initialisation_is_pytorchs_bound():
    layer = nn.Conv1d(6, 4, 5, groups=2, rng=0)
    bound = 1 / np.sqrt(3 * 5)
    assert layer.weight.shape == (4, 3, 5) and layer.bias.shape == (4,)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert repr(layer) == "Conv1d(6, 4, kernel_size=(5,), stride=1, padding=0, groups=2)"


@pytest.mark.parametrize(
    ("build", "error", "named"),
    [
        (lambda: nn.Conv1d(3, 4, 2, groups=2), ValueError, "groups=2 must divide in_channels"),
        (lambda: nn.Conv1d(0, 4, 2), ValueError, "in_channels"),
        (lambda: nn.Conv1d(2, 4, 0), ValueError, "kernel_size"),
        (lambda: nn.Conv1d(2, 4, (2, 2)), ValueError, "kernel_size"),
        (lambda: nn.Conv1d(2, 4, 2, stride=0), ValueError, "stride"),
        (lambda: nn.Conv1d(2, 4, 2, dilation=0), ValueError, "dilation"),
        (lambda: nn.Conv1d(2, 4, 2, padding=-1), ValueError, "padding"),
        (lambda: nn.Conv1d(2, 4, 2, padding="full"), ValueError, "padding"),
        (lambda: nn.Conv1d(2, 4, 2, stride=2, padding="same"), ValueError, "'same'"),
        (lambda: nn.Conv1d(2, 4, 2, dtype=np.int32), TypeError, "dtype"),
    ],
)
def test_conv1d_layer_refuses_bad_settings_by_name(build, error, named):
    with pytest.raises(error, match=named):
        build()


def test_conv1d_refuses_mismatched_operands_by_name():
    x, w = Tensor(np.ones((1, 4, 5))), Tensor(np.ones((6, 2, 3)))
    with pytest.raises(ShapeError, match=r"input \(N, C, L\)"):
        F.conv1d(Tensor(np.ones((4, 5))), w)
    with pytest.raises(ShapeError, match="4 channels"):
        F.conv1d(x, w)
    with pytest.raises(ValueError, match="groups must be a positive int dividing the 6"):
        F.conv1d(x, w, groups=4)
    with pytest.raises(ShapeError, match="bias must have shape"):
        F.conv1d(x, w, Tensor(np.ones(4)), groups=2)
    with pytest.raises(ShapeError, match="more than the padded input length 5"):
        F.conv1d(x, w, groups=2, dilation=3)
    with pytest.raises(ShapeError, match="3 channels"):
        nn.Conv1d(2, 4, 2)(Tensor(np.ones((1, 3, 5), dtype=np.float32)))
