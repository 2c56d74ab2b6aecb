"""nn layers: the layer functions of ``nn.functional`` (gradients vs finite differences, first and
second order, float64, over random geometries; forward + gradients vs PyTorch when installed),
the layer classes and their constructors, and the parameter initialisers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays


def against_torch(ours_fn, torch_fn, inputs, rtol=1e-10, atol=1e-12):
    """Forward values and the gradients of every input agree with PyTorch in float64."""
    torch = pytest.importorskip("torch")
    ours = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in inputs]
    y, yt = ours_fn(*ours), torch_fn(*theirs)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    yt.backward(torch.tensor(upstream))
    for mine, theirs_t in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, theirs_t.grad.numpy(), rtol=rtol, atol=atol)


def torch_f():
    return pytest.importorskip("torch").nn.functional


# ----------------------------------------------------------------------------- convolution
@st.composite
def conv_geometry(draw, transpose: bool = False):
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    if transpose:
        hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        out = [
            (n - 1) * s + r - 2 * p + e for n, s, r, p, e in zip(hw, stride, reach, padding, extra)
        ]
        if min(out) < 1:
            padding = (0, 0)
        shapes = ((1, cin, *hw), (cin, cout // groups, *kernel), (cout,))
        options = {"stride": stride, "padding": padding, "output_padding": extra}
    else:
        hw = tuple(
            draw(st.integers(max(r - 2 * p, 1), r - 2 * p + 3)) for r, p in zip(reach, padding)
        )
        shapes = ((draw(st.integers(1, 2)), cin, *hw), (cout, cin // groups, *kernel), (cout,))
        options = {"stride": stride, "padding": padding}
    options.update(dilation=dilation, groups=groups)
    return shapes, options


@given(conv_geometry(), st.data())
def test_conv2d_groups_dilation_tuples_gradcheck_and_pytorch(geometry, data):
    shapes, options = geometry
    x, w, b = (data.draw(arrays(s)) for s in shapes)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(lambda *t: F.conv2d(*t, **options), inputs)
    against_torch(
        lambda *t: F.conv2d(*t, **options), lambda *t: torch_f().conv2d(*t, **options), [x, w, b]
    )


@given(conv_geometry(transpose=True), st.data())
def test_conv_transpose2d_gradcheck_and_pytorch(geometry, data):
    shapes, options = geometry
    x, w, b = (data.draw(arrays(s)) for s in shapes)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(lambda *t: F.conv_transpose2d(*t, **options), inputs)
    against_torch(
        lambda *t: F.conv_transpose2d(*t, **options),
        lambda *t: torch_f().conv_transpose2d(*t, **options),
        [x, w, b],
    )


def test_composed_convolutions_second_order():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 4, 4, 5)), rng.standard_normal((4, 2, 2, 3))
    options = {"groups": 2, "dilation": (2, 1), "stride": (1, 2), "padding": (1, 0)}
    assert tg.gradgradcheck(
        lambda a, b: F.conv2d(a, b, **options),
        [Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)],
    )
    wt = rng.standard_normal((4, 1, 2, 2))
    options = {"groups": 2, "stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0)}
    assert tg.gradgradcheck(
        lambda a, b: F.conv_transpose2d(a, b, **options),
        [Tensor(x[:, :, :2, :3], requires_grad=True), Tensor(wt, requires_grad=True)],
    )


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_conv_same_padding_keeps_the_size_and_matches_pytorch():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2, 4, 3))
    assert F.conv2d(Tensor(x), Tensor(w), padding="same").shape == (1, 3, 5, 6)
    against_torch(
        lambda a, b: F.conv2d(a, b, padding="same", dilation=(1, 2)),
        lambda a, b: torch_f().conv2d(a, b, padding="same", dilation=(1, 2)),
        [x, w],
    )


def test_conv_errors_name_what_is_wrong():
    x, w = Tensor(np.ones((1, 4, 5, 5))), Tensor(np.ones((6, 2, 3, 3)))
    with pytest.raises(tg.ShapeError, match=r"4 channels.*expects 6.*groups=3"):
        F.conv2d(x, w, groups=3)
    with pytest.raises(ValueError, match="groups must be a positive int dividing the 6"):
        F.conv2d(x, w, groups=4)
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        F.conv2d(x, w, groups=2, padding="same", stride=2)
    with pytest.raises(tg.ShapeError, match=r"kernel \(5, 5\) \(dilation \(2, 2\)\)"):
        F.conv2d(Tensor(np.ones((1, 4, 4, 4))), w, groups=2, dilation=2)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, Tensor(np.ones((4, 1, 3, 3))), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="pair of ints"):
        F.conv2d(x, w, groups=2, stride=(1, 2, 3))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: F.conv2d(x, Tensor(np.ones((2, 2, 3, 3))), stride=2.5), "stride must be an int"),
        (lambda x: F.conv2d(x, Tensor(np.ones((2, 2, 3, 3))), padding=None), "padding must be"),
        (lambda x: F.max_pool2d(x, 2.5), "kernel_size must be an int"),
        (lambda x: F.adaptive_avg_pool2d(x, 2.5), "output_size must be an int >= 1"),
        (lambda x: F.adaptive_avg_pool2d(x, "ab"), "output_size must be an int >= 1"),
        (lambda x: F.interpolate(x, scale_factor=0.0), "scale_factor must be a finite number"),
        (lambda x: F.interpolate(x, scale_factor=float("inf")), "scale_factor must be a finite"),
        (lambda x: F.interpolate(x, size=2.5), "size must be an int"),
    ],
)
def test_layer_functions_name_settings_that_are_not_numbers(call, match):
    """These escaped as NumPy's or Python's own errors ("'float' object is not iterable")."""
    with pytest.raises(ValueError, match=match):
        call(Tensor(np.ones((1, 2, 6, 6))))


# ----------------------------------------------------------------------------- pooling
@st.composite
def pool_geometry(draw, dilated: bool = True):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    hw = tuple(draw(st.integers(max(r - 2 * p, 1), r + 3)) for r, p in zip(reach, padding))
    options = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": draw(st.booleans()),
    }
    if dilated:
        options["dilation"] = dilation
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *hw), options


@given(pool_geometry(), st.data())
def test_max_pool2d_padding_ceil_mode_dilation(geometry, data):
    shape, options = geometry
    x = data.draw(arrays(shape, unique=True, spacing=0.01))  # no ties: a unique winner
    fn = lambda t: F.max_pool2d(t, **options)  # noqa: E731
    if not np.isfinite(fn(Tensor(x)).data).all():
        # a window made only of padding: -inf as in PyTorch, and no gradient (PyTorch routes an
        # arbitrary one to the input there, so gradients are not compared in this corner)
        torch = pytest.importorskip("torch")
        expected = torch_f().max_pool2d(torch.tensor(x), **options).numpy()
        np.testing.assert_array_equal(fn(Tensor(x)).data, expected)
        return
    assert tg.gradcheck(fn, [Tensor(x, requires_grad=True)])
    against_torch(fn, lambda t: torch_f().max_pool2d(t, **options), [x])


@given(pool_geometry(dilated=False), st.booleans(), st.data())
def test_avg_pool2d(geometry, count_include_pad, data):
    shape, options = geometry
    options["count_include_pad"] = count_include_pad
    x = data.draw(arrays(shape))
    assert tg.gradcheck(lambda t: F.avg_pool2d(t, **options), [Tensor(x, requires_grad=True)])
    against_torch(
        lambda t: F.avg_pool2d(t, **options), lambda t: torch_f().avg_pool2d(t, **options), [x]
    )


@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.sampled_from([1, 2, 3, (2, 5), (None, 1), (7, 4)]),
    st.data(),
)
def test_adaptive_avg_pool2d(h, w, size, data):
    x = data.draw(arrays((1, 2, h, w)))
    assert tg.gradcheck(lambda t: F.adaptive_avg_pool2d(t, size), [Tensor(x, requires_grad=True)])
    against_torch(
        lambda t: F.adaptive_avg_pool2d(t, size),
        lambda t: torch_f().adaptive_avg_pool2d(t, size),
        [x],
    )


def test_pooling_second_order_and_errors():
    x = Tensor(
        np.random.default_rng(3).permutation(30).reshape(1, 1, 5, 6) / 10.0, requires_grad=True
    )
    assert tg.gradgradcheck(lambda t: F.max_pool2d(t, 3, 2, padding=1, ceil_mode=True), [x])
    assert tg.gradgradcheck(lambda t: F.avg_pool2d(t, (2, 3), 1, padding=(1, 1)), [x])
    with pytest.raises(tg.ShapeError, match=r"input \(1, 1, 2, 2\).*does not fit"):
        F.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3)
    with pytest.raises(ValueError, match="at most half the kernel"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(tg.ShapeError, match=r"\(N, C, H, W\)"):
        F.adaptive_avg_pool2d(Tensor(np.ones((3, 3))), 1)


# ----------------------------------------------------------------------------- resizing, padding
@st.composite
def resize_case(draw):
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "bilinear"]))
    align = draw(st.sampled_from([None, True, False])) if mode == "bilinear" else None
    if draw(st.booleans()):
        options = {"size": (draw(st.integers(1, 7)), draw(st.integers(1, 7)))}
    else:
        options = {"scale_factor": draw(st.sampled_from([0.5, 1.5, 2.0, 3.0]))}
    return options | {"mode": mode, "align_corners": align}


@given(st.integers(1, 4), st.integers(2, 4), resize_case(), st.data())
def test_interpolate(h, w, options, data):
    x = data.draw(arrays((1, 2, h, w)))
    if "scale_factor" in options and min(h, w) * options["scale_factor"] < 1:
        return
    assert tg.gradcheck(lambda t: F.interpolate(t, **options), [Tensor(x, requires_grad=True)])
    against_torch(
        lambda t: F.interpolate(t, **options), lambda t: torch_f().interpolate(t, **options), [x]
    )


def test_interpolate_second_order_and_errors():
    x = Tensor(np.random.default_rng(4).standard_normal((1, 1, 3, 2)), requires_grad=True)
    assert tg.gradgradcheck(lambda t: F.interpolate(t, size=(4, 5), mode="bilinear"), [x])
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners only"):
        F.interpolate(x, size=2, align_corners=True)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(x, size=2, mode="bicubic")


@given(
    st.sampled_from(["constant", "reflect", "replicate", "circular"]),
    st.lists(st.integers(0, 2), min_size=2, max_size=6).filter(lambda p: len(p) % 2 == 0),
    st.data(),
)
def test_pad_modes(mode, amounts, data):
    shape = data.draw(st.sampled_from([(3, 3), (3, 3, 4), (1, 3, 3, 4)]))
    if len(amounts) // 2 > len(shape):
        amounts = amounts[: 2 * len(shape)]
    x = data.draw(arrays(shape))
    fn = lambda t: F.pad(t, amounts, mode=mode, value=0.5)  # noqa: E731
    assert tg.gradcheck(fn, [Tensor(x, requires_grad=True)])
    assert tg.gradgradcheck(fn, [Tensor(x, requires_grad=True)])
    if mode != "constant" and len(shape) - len(amounts) // 2 not in (1, 2):
        return  # PyTorch pads non-constant modes only on (C, ...) or (N, C, ...) inputs
    torch_kwargs = {"mode": mode} | ({"value": 0.5} if mode == "constant" else {})
    against_torch(fn, lambda t: torch_f().pad(t, amounts, **torch_kwargs), [x])


def test_pad_crops_with_negative_amounts_and_checks_sizes():
    x = Tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(F.pad(x, (-1, 1)).data[0], [1, 2, 3, 0])
    with pytest.raises(tg.ShapeError, match=r"at most 3 on an axis of size 4"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ValueError, match="even number"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="wrap")


# ----------------------------------------------------------------------------- normalisation
@given(st.sampled_from([(4, 3), (3, 2, 2), (2, 2, 2, 3)]), st.data())
def test_batch_norm_training_and_eval(shape, data):
    x = data.draw(arrays(shape))
    if (
        np.ptp(
            x.reshape(shape[0], shape[1], -1).transpose(1, 0, 2).reshape(shape[1], -1), axis=1
        ).min()
        < 0.1
    ):
        return  # a nearly constant channel makes the normalisation ill-conditioned
    c = shape[1]
    w, b = data.draw(arrays((c,))), data.draw(arrays((c,)))
    mean, var = data.draw(arrays((c,))), data.draw(arrays((c,), low=0.5, high=2.0))
    train = lambda *t: F.batch_norm(t[0], None, None, t[1], t[2], training=True)  # noqa: E731
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(train, inputs)
    assert tg.gradgradcheck(train, inputs)
    evaluate = lambda *t: F.batch_norm(t[0], Tensor(mean), Tensor(var), t[1], t[2])  # noqa: E731
    assert tg.gradcheck(evaluate, inputs)
    against_torch(
        train,
        lambda *t: torch_f().batch_norm(t[0], None, None, t[1], t[2], training=True),
        [x, w, b],
        rtol=1e-8,
    )
    torch = pytest.importorskip("torch")
    against_torch(
        evaluate,
        lambda *t: torch_f().batch_norm(t[0], torch.tensor(mean), torch.tensor(var), t[1], t[2]),
        [x, w, b],
    )


def test_batch_norm_updates_running_statistics_like_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((4, 3, 2, 2))
    ours = [Tensor(np.zeros(3)), Tensor(np.ones(3))]
    theirs = [torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    for _ in range(3):
        F.batch_norm(Tensor(x), *ours, training=True, momentum=0.2)
        torch_f().batch_norm(torch.tensor(x), *theirs, training=True, momentum=0.2)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.data, reference.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)
    with pytest.raises(tg.ShapeError, match=r"running_mean has shape \(2,\)"):
        F.batch_norm(Tensor(x), Tensor(np.zeros(2)), Tensor(np.ones(3)))


def test_batch_norm_bumps_the_running_statistics_it_updates():
    x = Tensor(np.random.default_rng(5).standard_normal((4, 3)))
    mean, var, weight = Tensor(np.zeros(3)), Tensor(np.ones(3)), Tensor(np.ones(3))
    F.batch_norm(x, mean, var, weight, training=True)
    assert (mean._version, var._version, weight._version, x._version) == (1, 1, 0, 0)
    F.batch_norm(x, mean, var, weight, training=False)
    assert (mean._version, var._version) == (1, 1)


@given(st.sampled_from([((3, 4), (4,)), ((2, 2, 3), (3,)), ((2, 2, 3), (2, 3))]), st.data())
def test_layer_norm(shapes, data):
    shape, normalized = shapes
    x = data.draw(arrays(shape))
    if np.ptp(x.reshape(-1, int(np.prod(normalized))), axis=1).min() < 0.1:
        return
    w, b = data.draw(arrays(normalized)), data.draw(arrays(normalized))
    fn = lambda *t: F.layer_norm(t[0], normalized, t[1], t[2])  # noqa: E731
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert tg.gradcheck(fn, inputs)
    assert tg.gradgradcheck(fn, inputs)
    against_torch(
        fn, lambda *t: torch_f().layer_norm(t[0], normalized, t[1], t[2]), [x, w, b], rtol=1e-8
    )


def test_layer_norm_shape_errors():
    with pytest.raises(tg.ShapeError, match=r"normalized_shape \(3,\).*\(2, 4\)"):
        F.layer_norm(Tensor(np.ones((2, 4))), 3)
    with pytest.raises(tg.ShapeError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.layer_norm(Tensor(np.ones((2, 4))), 4, Tensor(np.ones(3)))


# ----------------------------------------------------------------------------- dropout, embedding
def test_dropout_scales_keeps_expectation_and_is_reproducible():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.3, rng=0)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    np.testing.assert_array_equal(F.dropout(x, 0.3, rng=0).data, y.data)
    assert F.dropout(x, 0.3, training=False) is x
    assert not F.dropout(x, 1.0).data.any()
    assert tg.gradcheck(
        lambda t: F.dropout(t, 0.5, rng=1), [Tensor(np.ones((3, 2)), requires_grad=True)]
    )
    assert tg.gradgradcheck(
        lambda t: F.dropout(t * t, 0.5, rng=1), [Tensor(np.ones((3, 2)), requires_grad=True)]
    )
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        F.dropout(x, 1.5)


def test_embedding_gathers_accumulates_and_skips_padding():
    weight = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    indices = np.array([[0, 2], [2, 3]])
    out = F.embedding(indices, weight, padding_idx=3)
    np.testing.assert_array_equal(out.data, weight.data[indices])
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad.data[:, 0], [1, 0, 2, 0])
    assert tg.gradcheck(
        lambda w: F.embedding(indices, w), [Tensor(np.ones((4, 2)), requires_grad=True)]
    )
    against_torch(
        lambda w: F.embedding(indices, w, padding_idx=3),
        lambda w: torch_f().embedding(
            pytest.importorskip("torch").tensor(indices), w, padding_idx=3
        ),
        [np.ones((4, 2))],
    )
    with pytest.raises(IndexError, match=r"\[0, 4\).*0 to 4"):
        F.embedding([0, 4], weight)
    for bad in (np.array([0.5]), np.array([True, False]), np.array(["1"]), np.array([np.nan])):
        with pytest.raises(TypeError, match="embedding: indices must be integers"):
            F.embedding(bad, weight)  # a bool mask picked rows 1 and 0; a string was NumPy's


def test_float32_stays_float32_through_every_layer_function():
    x = Tensor(np.random.default_rng(6).standard_normal((2, 4, 6, 6)).astype(np.float32))
    w, wt = Tensor(np.ones((4, 2, 3, 3), np.float32)), Tensor(np.ones((4, 2, 3, 3), np.float32))
    c = Tensor(np.ones(4, np.float32))
    outputs = {
        "conv2d": F.conv2d(x, w, c, stride=(1, 2), padding=(2, 1), dilation=2, groups=2),
        "conv_transpose2d": F.conv_transpose2d(x, wt, None, (2, 1), 1, (1, 0), groups=2),
        "pad": F.pad(x, (1, 2, 0, 1), mode="reflect"),
        "max_pool2d": F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        "avg_pool2d": F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        "adaptive_avg_pool2d": F.adaptive_avg_pool2d(x, (4, 5)),
        "interpolate": F.interpolate(x, scale_factor=1.5, mode="bilinear"),
        "dropout": F.dropout(x, 0.5, rng=0),
        "batch_norm": F.batch_norm(
            x, Tensor(np.zeros(4, np.float32)), Tensor(np.ones(4, np.float32)), c, c, True
        ),
        "layer_norm": F.layer_norm(x, (6, 6)),
        "embedding": F.embedding([1, 2], Tensor(np.ones((3, 2), np.float32))),
    }
    assert {name: y.dtype for name, y in outputs.items() if y.dtype != np.float32} == {}


def test_max_pool2d_that_fits_exactly_is_one_op():
    """No crop (and no scatter in the backward pass) when the windows tile the input exactly."""
    x = tg.Tensor(
        np.arange(2 * 3 * 8 * 6, dtype=np.float64).reshape(2, 3, 8, 6), requires_grad=True
    )
    assert type(F.max_pool2d(x, 2)._node).__name__ == "MaxPool2d"
    assert F.max_pool2d(tg.Tensor(np.zeros((1, 1, 5, 5))), 2).shape == (1, 1, 2, 2)


# ----------------------------------------------------------------------------- layer classes
def test_linear_layout_matches_the_formula():
    layer = nn.Linear(3, 2, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-6)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_linear_shape_error_names_features():
    with pytest.raises(tg.ShapeError, match=r"4 features.*expects 3"):
        nn.Linear(3, 2)(Tensor(np.ones((5, 4))))


def test_flatten_and_sequential_indexing():
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 1))
    assert net(Tensor(np.ones((2, 2, 3), dtype=np.float32))).shape == (2, 1)
    assert len(net) == 2 and isinstance(net[1], nn.Linear)
    with pytest.raises(IndexError, match="2 modules"):
        net[5]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.Linear(1, 1), "relu")


def _fused_vs_composite(x, w, b):
    return F.linear(x, w, b)


@given(st.data())
def test_linear_op_gradients_first_and_second_order(data):
    batch = data.draw(st.sampled_from([(), (1,), (3,), (2, 2)]))
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = Tensor(data.draw(arrays((*batch, n_in))), requires_grad=True)
    w = Tensor(data.draw(arrays((n_out, n_in))), requires_grad=True)
    b = Tensor(data.draw(arrays((n_out,))), requires_grad=True)
    assert tg.gradcheck(F.linear, [x, w, b])
    assert tg.gradgradcheck(F.linear, [x, w, b])
    assert tg.gradcheck(F.linear, [x, w])
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data, rtol=1e-12)


def test_batchnorm_layer_matches_pytorch_over_training_and_eval():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1
        y = ours(Tensor(x))
        np.testing.assert_allclose(y.data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    state = ours.state_dict()
    reference = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert list(state) == list(reference)  # loads PyTorch BatchNorm state dicts by name
    for key in state:
        np.testing.assert_allclose(state[key], reference[key], rtol=1e-5)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(
        ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5
    )
    cumulative = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((5, 2)) for _ in range(3)]
    for batch in batches:
        cumulative(Tensor(batch))
    np.testing.assert_allclose(
        cumulative.running_mean.data, np.mean([b.mean(0) for b in batches], 0), rtol=1e-5
    )
    with pytest.raises(
        tg.ShapeError, match=r"BatchNorm2d\(3\): input shape \(2, 2, 2, 2\) has 2 channels"
    ):
        ours(Tensor(np.ones((2, 2, 2, 2))))
    with pytest.raises(tg.ShapeError, match="expects a 2 or 3-d input"):
        cumulative(Tensor(np.ones((2, 2, 2, 2))))


def test_layers_without_running_statistics_or_affine():
    bn = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    y = bn(Tensor(np.array([[1.0, 2.0], [3.0, 6.0]])))
    np.testing.assert_allclose(y.data, [[-1, -1], [1, 1]], rtol=1e-4)
    assert list(bn.parameters()) == [] and bn.state_dict() == {}
    assert nn.LayerNorm(3, elementwise_affine=False).state_dict() == {}


def test_dropout_layer_reproducible_and_identity_in_eval():
    x = Tensor(np.ones((4, 8)))
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=3)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)  # the layer's generator moves on
    assert a.eval()(x) is x
    with pytest.raises(ValueError, match="p must lie"):
        nn.Dropout(-0.1)


def test_layer_constructors_and_shapes():
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 6, 6)).astype(np.float32))
    conv = nn.Conv2d(4, 6, 3, stride=(1, 2), padding=(1, 0), groups=2, dilation=(2, 1))
    assert conv.weight.shape == (6, 2, 3, 3) and conv(x).shape == (2, 6, 4, 2)
    assert "groups=2" in repr(conv) and "dilation=(2, 1)" in repr(conv)
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    assert (
        up.weight.shape == (4, 2, 3, 3) and up.bias.shape == (2,) and up(x).shape == (2, 2, 12, 12)
    )
    assert nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)(x).shape == (2, 4, 4, 4)
    assert nn.AvgPool2d(2)(x).shape == (2, 4, 3, 3)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 4, 1, 1)
    assert nn.Upsample(scale_factor=2, mode="bilinear")(x).shape == (2, 4, 12, 12)
    assert nn.LayerNorm((6, 6))(x).shape == x.shape
    emb = nn.Embedding(10, 3, padding_idx=0, rng=0)
    assert emb(np.array([[0, 9]])).shape == (1, 2, 3) and not emb.weight.data[0].any()
    assert nn.Identity()(x) is x
    with pytest.raises(ValueError, match="groups=4 must divide in_channels=6"):
        nn.Conv2d(6, 8, 3, groups=4)


# ----------------------------------------------------------------------------- initialisers
def test_init_helpers():
    w = nn.init.normal((200, 100), std=0.15, rng=0)
    assert w.requires_grad and abs(w.data.std() - 0.15) < 0.01
    bound = np.sqrt(6 / (3 + 4))
    assert np.abs(nn.init.xavier_uniform((4, 3), rng=0).data).max() <= bound
    assert nn.init.zeros((2,)).data.sum() == 0
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.kaiming_normal((3,))


# ----------------------------------------------------------------------------- constructors
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: nn.Conv2d(2, 2, 3, stride=2, padding="same"),
            ValueError,
            "padding='same' is not supported for strided convolutions",
        ),
        (lambda: nn.Conv2d(2, 2, 3, padding="full"), ValueError, "'valid' or 'same'"),
        (lambda: nn.Conv2d(2, 2, 3, padding=-1), ValueError, "padding must be >= 0"),
        (lambda: nn.Conv2d(2, 2, 3, stride=0), ValueError, "stride must be >= 1"),
        (lambda: nn.Conv2d(2, 2, 3, dilation=(1, 0)), ValueError, "dilation must be >= 1"),
        (lambda: nn.Conv2d(2, 2, (3,)), ValueError, "kernel_size must be an int or a pair"),
        (lambda: nn.Conv2d(2, 2, 2.5), ValueError, "kernel_size must be an int or a pair"),
        (lambda: nn.Conv2d(2.0, 2, 3), ValueError, "in_channels must be a positive int"),
        (lambda: nn.Conv2d(0, 2, 3), ValueError, "in_channels must be a positive int"),
        (lambda: nn.Conv2d(4, 4, 3, groups=0), ValueError, "groups must be a positive int"),
        (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "groups=4 must divide"),
        (lambda: nn.Conv2d(2, 2, 3, dtype=np.int64), TypeError, "floating-point"),
        (lambda: nn.Conv2d(2, 2, 3, dtype="nonsense"), TypeError, "floating-point"),
        (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), ValueError, "pair of ints"),
        (
            lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2),
            ValueError,
            "output_padding",
        ),
        (lambda: nn.ConvTranspose2d(2, 2, 3, stride=(1, 0)), ValueError, "stride must be >= 1"),
        (lambda: nn.Linear(3, -1), ValueError, "out_features must be a positive int"),
        (lambda: nn.Linear(3, 2, dtype=np.int32), TypeError, "floating-point"),
        (lambda: nn.MaxPool2d(0), ValueError, "kernel_size must be >= 1"),
        (lambda: nn.MaxPool2d(2, padding=2), ValueError, "at most half the kernel"),
        (lambda: nn.MaxPool2d(2, stride=-1), ValueError, "stride must be >= 1"),
        (lambda: nn.MaxPool2d(2, dilation=0), ValueError, "dilation must be >= 1"),
        (lambda: nn.AvgPool2d((2, 2, 2)), ValueError, "kernel_size must be an int or a pair"),
        (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "output_size must be an int >= 1"),
        (lambda: nn.AdaptiveAvgPool2d((2, 2, 2)), ValueError, "output_size"),
        (lambda: nn.Upsample(), ValueError, "exactly one of size and scale_factor"),
        (lambda: nn.Upsample(size=2, mode="bicubic"), ValueError, "mode must be one of"),
        (lambda: nn.Upsample(scale_factor=-2), ValueError, "scale_factor must be a finite"),
        (lambda: nn.Upsample(size=(0, 2)), ValueError, "size must be >= 1"),
        (lambda: nn.Upsample(size=2, align_corners=True), ValueError, "align_corners only"),
        (lambda: nn.Dropout("0.5"), ValueError, r"p must lie in \[0, 1\]"),
        (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be a positive int"),
        (lambda: nn.BatchNorm1d(3, momentum=2.0), ValueError, r"momentum must lie in \[0, 1\]"),
        (lambda: nn.BatchNorm1d(3, eps=-1e-5), ValueError, "eps must be a number >= 0"),
        (lambda: nn.LayerNorm(()), ValueError, "at least one axis"),
        (lambda: nn.LayerNorm(3.5), TypeError, "normalized_shape must be an int or a tuple"),
        (lambda: nn.LayerNorm(None), TypeError, "normalized_shape must be an int or a tuple"),
        (lambda: nn.LayerNorm((3, 0)), ValueError, r"normalized_shape\[1\] must be a positive"),
        (lambda: nn.Embedding(4, 2, padding_idx=4), ValueError, r"padding_idx must be an int"),
        (lambda: nn.Embedding(4, 2, padding_idx=-5), ValueError, r"padding_idx must be an int"),
        (lambda: nn.Flatten("1"), TypeError, "start_axis must be an int"),
    ],
)
def test_layer_constructors_refuse_what_would_only_fail_at_the_first_call(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_pytorch_refuses_strided_same_padding_in_the_constructor_too():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        torch.nn.Conv2d(2, 2, 3, stride=2, padding="same")


_SETTING = st.one_of(
    st.integers(-1, 3),
    st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
    st.sampled_from(["same", "valid", "full", 2.5, None, (1, 2, 3), True]),
)


@st.composite
def layer_and_input(draw):
    """A layer built from random, often invalid settings, and an input it should accept."""
    kind = draw(st.sampled_from(["conv", "conv_t", "max", "avg", "adaptive", "upsample"]))
    s = {name: draw(_SETTING) for name in ("a", "b", "c", "d", "e")}
    x = Tensor(np.random.default_rng(0).standard_normal((1, 4, 12, 12)).astype(np.float32))
    builders = {
        "conv": lambda: nn.Conv2d(4, 2, s["a"], s["b"], s["c"], s["d"], rng=0),
        "conv_t": lambda: nn.ConvTranspose2d(4, 2, s["a"], s["b"], s["c"], s["e"], 1, True, s["d"]),
        "max": lambda: nn.MaxPool2d(s["a"], s["b"], s["c"], s["d"]),
        "avg": lambda: nn.AvgPool2d(s["a"], s["b"], s["c"]),
        "adaptive": lambda: nn.AdaptiveAvgPool2d(s["a"]),
        "upsample": lambda: nn.Upsample(s["a"], s["b"], draw(st.sampled_from(["nearest", "x"]))),
    }
    return kind, builders[kind], x


@given(layer_and_input())
def test_a_layer_that_constructs_accepts_a_big_enough_input(case):
    """The class of bug: settings a constructor accepted that fail at the first call. Whatever
    the settings, the constructor refuses them with a ValueError/TypeError, or the layer runs."""
    kind, build, x = case
    try:
        layer = build()
    except (ValueError, TypeError) as error:
        names = {"conv": "Conv2d", "conv_t": "ConvTranspose2d", "max": "MaxPool2d"}
        names |= {"avg": "AvgPool2d", "adaptive": "AdaptiveAvgPool2d", "upsample": "Upsample"}
        assert str(error).startswith(f"{names[kind]}: ")  # ours, naming the layer
        return
    y = layer(x)
    assert y.ndim == 4 and (np.isfinite(y.data).all() or kind == "max")
