"""Convolution and max pooling: finite differences, kernel agreement, PyTorch, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.kernels import conv as conv_kernels
from tinygrad_edu.kernels.fast import gemm, winograd
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays


@st.composite
def conv_cases(draw, max_side=5):
    """Small NCHW inputs with random kernel, stride, padding (the kernel always fits)."""
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * padding), max_side))
    w = draw(st.integers(max(1, kh - 2 * padding), max_side))
    stride = draw(st.integers(1, 3))
    x = draw(arrays((n, c, h, w)))
    weight = draw(arrays((k, c, kh, kh)))
    bias = draw(arrays((k,)))
    return x, weight, bias, stride, padding


def _conv(stride, padding):
    return lambda x, w, b: F.conv2d(x, w, b, stride, padding)


@given(conv_cases())
def test_conv2d_first_order(case):
    x, w, b, stride, padding = case
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(_conv(stride, padding), inputs)


@given(conv_cases(max_side=4))
def test_conv2d_second_order(case):
    x, w, b, stride, padding = case
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradgradcheck(_conv(stride, padding), inputs)


@st.composite
def pool_cases(draw):
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    h, w = draw(st.integers(kernel, 6)), draw(st.integers(kernel, 6))
    # distinct values on a grid: no ties, so finite differences see one winner per window
    x = draw(
        arrays(
            (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w),
            spacing=0.1,
            unique=True,
            low=-5,
            high=5,
        )
    )
    return x, kernel, stride


@given(pool_cases())
def test_max_pool_first_and_second_order(case):
    x, kernel, stride = case
    t = Tensor(x, requires_grad=True)
    assert tg.gradcheck(lambda a: F.max_pool2d(a, kernel, stride), [t])
    assert tg.gradgradcheck(lambda a: F.max_pool2d(a, kernel, stride) ** 2, [t])


@given(data=st.data())
def test_winograd_equals_im2col_on_any_size(data):
    n, c, k = (
        data.draw(st.integers(1, 4)),
        data.draw(st.integers(1, 4)),
        data.draw(st.integers(1, 4)),
    )
    h, w = data.draw(st.integers(1, 11)), data.draw(st.integers(1, 11))
    budget = data.draw(st.sampled_from([1, 2000, 50_000, 2**22]))  # bands, images, whole batch
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.standard_normal((n, h, w, c))
    weight = rng.standard_normal((k, c, 3, 3))
    np.testing.assert_allclose(
        winograd.conv3x3(x, weight, chunk_budget=budget),
        gemm.im2col_conv(x, weight, 1, 1),
        rtol=1e-10,
        atol=1e-12,
    )


def test_winograd_path_is_used_and_correct_through_the_op():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 32, 33, 34)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 32, 3, 3)) * 0.1, requires_grad=True)
    assert conv_kernels.uses_winograd(3, 3, 1, 1, 32)
    y = F.conv2d(x, w, padding=1)
    expected = gemm.im2col_conv(conv_kernels.nhwc(x.data), w.data, 1, 1).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    gx, gw = tg.grad(y, [x, w], grad_outputs=Tensor(g))
    # <g, conv(x, w)> is linear in x: its gradient w.r.t. x at any x, dotted with x, gives it back
    assert np.vdot(gx.data, x.data) == pytest.approx(np.vdot(g, y.data), rel=1e-9)
    assert np.vdot(gw.data, w.data) == pytest.approx(np.vdot(g, y.data), rel=1e-9)


def test_float32_stays_float32_and_frozen_weights_get_no_gradient():
    x = Tensor(np.ones((1, 2, 5, 5), dtype=np.float32), requires_grad=True)
    layer = nn.Conv2d(2, 3, 3, padding=1, rng=0).requires_grad_(False)
    y = layer(x)
    assert y.dtype == np.float32
    with tg.trace() as t:
        y.sum().backward()
    assert [s.op for s in t.steps] == ["sum", "conv2d"]
    assert t.steps[1].grad_input_norms[1:] == (None, None)  # no weight or bias gradient computed
    assert layer.weight.grad is None and x.grad.dtype == np.float32


def test_conv_layer_and_pool_layer_shapes():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()
    )
    assert net(Tensor(np.ones((2, 3, 9, 9), dtype=np.float32))).shape == (2, 4 * 2 * 2)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]


def test_conv_errors_name_the_shapes():
    x, w = Tensor(np.ones((1, 3, 8, 8))), Tensor(np.ones((4, 2, 3, 3)))
    with pytest.raises(
        tg.ShapeError, match=r"3 channels.*\(1, 3, 8, 8\).*expects 2.*\(4, 2, 3, 3\)"
    ):
        F.conv2d(x, w)
    with pytest.raises(tg.ShapeError, match=r"needs input \(N, C, H, W\).*\(3, 8, 8\)"):
        F.conv2d(Tensor(np.ones((3, 8, 8))), w)
    with pytest.raises(tg.ShapeError, match="larger than the padded input"):
        F.conv2d(Tensor(np.ones((1, 2, 2, 2))), w)
    with pytest.raises(tg.ShapeError, match=r"bias must have shape \(4,\)"):
        F.conv2d(Tensor(np.ones((1, 2, 8, 8))), w, Tensor(np.ones(3)))
    with pytest.raises(tg.ShapeError, match="does not fit"):
        F.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(Tensor(np.ones((1, 2, 8, 8))), w, stride=0)


# ----------------------------------------------------------------------------- PyTorch
@given(conv_cases(max_side=7))
def test_conv_agrees_with_pytorch(case):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding = case
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, stride=stride, padding=padding)
    yt = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(0).standard_normal(y.shape)
    grads = tg.grad(y, ours, grad_outputs=Tensor(g))
    grads_t = torch.autograd.grad(yt, theirs, torch.tensor(g))
    for a, b_ in zip(grads, grads_t):
        np.testing.assert_allclose(a.data, b_.numpy(), rtol=1e-9, atol=1e-11)


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7)),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_max_pool_ties_and_gradients_agree_with_pytorch(shape, kernel, stride, seed):
    """Inputs from {0, 1, 2}: many exact ties, so the first-maximum rule must match PyTorch's."""
    torch = pytest.importorskip("torch")
    kernel = min(kernel, shape[2], shape[3])
    x = np.random.default_rng(seed).integers(0, 3, shape).astype(np.float64)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.max_pool2d(ours, kernel, stride)
    yt = torch.nn.functional.max_pool2d(theirs, kernel, stride)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    (gx,) = tg.grad(y, [ours], grad_outputs=Tensor(g))
    (gxt,) = torch.autograd.grad(yt, [theirs], torch.tensor(g))
    np.testing.assert_allclose(gx.data, gxt.numpy(), rtol=1e-12, atol=1e-12)


def test_vgg_sized_layer_float32_agrees_with_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 64, 40, 40)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    ours = F.conv2d(Tensor(x), Tensor(w), padding=1).data
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- layout cache
@pytest.mark.parametrize("freeze", [False, True])
def test_a_grouped_convolution_reuses_its_layouts(freeze, monkeypatch):
    layer = nn.Conv2d(128, 128, 3, padding=1, groups=2, rng=0)
    layer = layer.freeze() if freeze else layer
    x = Tensor(np.random.default_rng(0).standard_normal((1, 128, 6, 6)).astype(np.float32))
    first = layer(x).data  # each group's Winograd kernel transform, once
    transforms = []
    original = winograd.transform_kernel
    monkeypatch.setattr(
        winograd, "transform_kernel", lambda *a, **k: transforms.append(1) or original(*a, **k)
    )
    for _ in range(3):
        np.testing.assert_array_equal(layer(x).data, first)
    assert transforms == []


def test_a_frozen_model_convolves_as_the_plain_one():
    layer = nn.Conv2d(64, 64, 3, padding=1, rng=0)
    frozen = copy.deepcopy(layer).freeze()
    x = Tensor(np.random.default_rng(0).standard_normal((2, 64, 8, 8)).astype(np.float32))
    for _ in range(2):  # the second call takes the cached layouts
        np.testing.assert_array_equal(frozen(x).data, layer(x).data)


def test_conv_results_follow_in_place_weight_updates():
    layer = nn.Conv2d(64, 64, 3, padding=1, rng=0)  # big enough for the layout cache
    x = Tensor(np.random.default_rng(0).standard_normal((1, 64, 8, 8)).astype(np.float32))
    before = layer(x).data.copy()
    with tg.no_grad():
        layer.weight.copy_(layer.weight * 2)  # in place: same array object, version bumped
    after = layer(x).data
    bias = layer.bias.data[None, :, None, None]
    np.testing.assert_allclose(after - bias, 2 * (before - bias), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- fused conv + ReLU
@st.composite
def conv_relu_cases(draw):
    """Convolutions whose pre-activations keep away from ReLU's kink at 0, where finite
    differences do not measure a derivative."""
    x, w, b, stride, padding = draw(conv_cases(max_side=4))
    z = F.conv2d(Tensor(x), Tensor(w), Tensor(b), stride, padding).data
    assume(np.abs(z).min() > 1e-3)
    return x, w, b, stride, padding


@given(conv_relu_cases())
def test_conv_relu_op_first_and_second_order(case):
    from tinygrad_edu.ops.conv import Conv2dReLU

    x, w, b, stride, padding = case
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]

    def fused(x, w, b):
        return Conv2dReLU.apply(x, w, b, stride=stride, padding=padding)

    assert tg.gradcheck(fused, inputs)
    assert tg.gradgradcheck(fused, inputs)
    np.testing.assert_allclose(
        fused(*inputs).data, F.conv2d(*inputs, stride, padding).relu().data, rtol=1e-12
    )


def test_conv_relu_op_gradient_equals_the_unfused_pair_on_the_winograd_path():
    from tinygrad_edu.ops.conv import Conv2dReLU

    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 32, 9, 10)), requires_grad=True)
    w, b = Tensor(rng.standard_normal((40, 32, 3, 3)) * 0.1), Tensor(rng.standard_normal(40))
    g = Tensor(rng.standard_normal((2, 40, 9, 10)))
    (fused,) = tg.grad(Conv2dReLU.apply(x, w, b, stride=1, padding=1), [x], grad_outputs=g)
    (plain,) = tg.grad(F.conv2d(x, w, b, 1, 1).relu(), [x], grad_outputs=g)
    np.testing.assert_allclose(fused.data, plain.data, rtol=1e-10, atol=1e-12)


def test_frozen_vgg_runs_no_weight_gradient_and_nothing_above_the_target(monkeypatch):
    from tinygrad_edu.models.vgg import VGG16
    from tinygrad_edu.ops import conv as conv_ops

    calls = {"forward": 0, "input_grad": 0, "weight_grad": 0}

    def counted(name, kernel):
        def run(*args, **kwargs):
            calls[name] += 1
            return kernel(*args, **kwargs)

        return run

    monkeypatch.setattr(conv_ops.K, "conv2d", counted("forward", conv_kernels.conv2d))
    monkeypatch.setattr(
        conv_ops.K, "conv2d_input_grad", counted("input_grad", conv_kernels.conv2d_input_grad)
    )
    monkeypatch.setattr(
        conv_ops.K, "conv2d_weight_grad", counted("weight_grad", conv_kernels.conv2d_weight_grad)
    )
    model = VGG16(initialise=False).requires_grad_(False)
    x = Tensor(np.ones((1, 3, 16, 16), dtype=np.float32), requires_grad=True)
    tg.grad(model(x, until="block2_conv2").sum(), [x])
    assert calls == {"forward": 4, "input_grad": 4, "weight_grad": 0}


@given(conv_relu_cases(), st.integers(0, 1000))
def test_conv_relu_and_masked_input_grad_jvps_match_finite_differences(case, seed):
    from tinygrad_edu.ops.conv import Conv2dInputGrad, Conv2dReLU

    x, w, b, stride, padding = case
    rng = np.random.default_rng(seed)
    tangents = [rng.standard_normal(a.shape) for a in (x, w, b)]
    op = Conv2dReLU(stride=stride, padding=padding)
    out = Tensor(op.forward(x, w, b))
    jvp = op.jvp(tuple(Tensor(t) for t in tangents), out, Tensor(x), Tensor(w), Tensor(b))
    eps = 1e-6
    ahead = op.forward(*(a + eps * t for a, t in zip((x, w, b), tangents)))
    behind = op.forward(*(a - eps * t for a, t in zip((x, w, b), tangents)))
    np.testing.assert_allclose(jvp.data, (ahead - behind) / (2 * eps), rtol=1e-5, atol=1e-6)

    # the input gradient with a ReLU mask is linear in (g, w): its JVP is exact
    mask = rng.standard_normal(out.shape)
    grad_op = Conv2dInputGrad(input_hw=x.shape[2:], stride=stride, padding=padding, mask=mask)
    g, tg_, tw = (rng.standard_normal(s) for s in (out.shape, out.shape, w.shape))
    z = Tensor(grad_op.forward(g, w))
    jvp = grad_op.jvp((Tensor(tg_), Tensor(tw)), z, Tensor(g), Tensor(w))
    expected = grad_op.forward(tg_, w) + grad_op.forward(g, tw)
    np.testing.assert_allclose(jvp.data, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ max pooling ties, every path
@st.composite
def pooling_cases(draw):
    """Any kernel, stride, dilation, padding and ceil_mode PyTorch accepts, on small inputs with
    values from {0, 1, 2} (float64): most windows hold tied maxima."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    side = [draw(st.integers(max(1, s - 2 * p), s + 4)) for s, p in zip(span, padding)]
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(arrays((n, c, *side), dtype=np.float64, low=0, high=2, spacing=1.0))
    return x, kernel, stride, dilation, padding, draw(st.booleans())


def _reference_max_pool(x, g, kernel, stride, dilation, padding, out_hw):
    """Plain loops: each window's first maximum in row-major order receives its gradient. A
    window inside the padding alone is -inf and sends none; returns ``(gradient, whether some
    window is such)`` (PyTorch's backward writes out of bounds there: no oracle)."""
    grad, padding_only = np.zeros_like(x), False
    h, w = x.shape[2:]
    for n, c, i, j in np.ndindex(x.shape[0], x.shape[1], *out_hw):
        best = None
        for a, b in np.ndindex(*kernel):
            r = i * stride[0] - padding[0] + a * dilation[0]
            q = j * stride[1] - padding[1] + b * dilation[1]
            inside = 0 <= r < h and 0 <= q < w
            if inside and (best is None or x[n, c, r, q] > x[n, c, best[0], best[1]]):
                best = (r, q)
        if best is None:
            padding_only = True
        else:
            grad[n, c, best[0], best[1]] += g[n, c, i, j]
    return grad, padding_only


@given(case=pooling_cases(), seed=st.integers(0, 2**16))
def test_max_pool_sends_tied_gradients_to_the_first_maximum_on_every_path(case, seed):
    """Square or not, strided equally or not, dilated, padded, ceil_mode: the gradient of a tied
    window goes to its first maximum (it was split evenly off the square-kernel path)."""
    x, kernel, stride, dilation, padding, ceil_mode = case
    options = {"stride": stride, "dilation": dilation, "padding": padding, "ceil_mode": ceil_mode}
    ours = Tensor(x, requires_grad=True)
    y = F.max_pool2d(ours, kernel, **options)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    (gx,) = tg.grad(y, [ours], grad_outputs=Tensor(g))
    expected, padding_only = _reference_max_pool(
        x, g, kernel, stride, dilation, padding, y.shape[2:]
    )
    np.testing.assert_allclose(gx.data, expected, rtol=1e-12, atol=1e-12)
    u = np.random.default_rng(seed + 1).standard_normal(x.shape)  # forward mode: <g, J u>
    _, tangent = tg.jvp(lambda t: F.max_pool2d(t, kernel, **options), (Tensor(x),), (Tensor(u),))
    np.testing.assert_allclose(np.vdot(g, tangent.data), np.vdot(expected, u), rtol=1e-10)
    try:
        import torch
    except ImportError:
        return
    if padding_only:  # PyTorch's backward corrupts memory there (its index is out of range)
        return
    theirs = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(theirs, kernel, **options)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    (gxt,) = torch.autograd.grad(yt, [theirs], torch.tensor(g))
    np.testing.assert_allclose(gx.data, gxt.numpy(), rtol=1e-12, atol=1e-12)
