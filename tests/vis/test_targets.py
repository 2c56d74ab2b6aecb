"""Targets: how feature visualisation sees VGG16 and any nn.Sequential CNN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, nn
from tinygrad_edu.models.vgg import vgg16
from tinygrad_edu.vis import visualize_filters
from tinygrad_edu.vis.ascent import AscentSettings, classic_ascent
from tinygrad_edu.vis.images import deprocess_image
from tinygrad_edu.vis.improved import ImprovedOptions, improved_ascent
from tinygrad_edu.vis.targets import as_target


def small_cnn(seed: int = 0, dtype=np.float64) -> nn.Sequential:
    """conv-BN-ReLU, pool, a nested block (grouped conv, Sigmoid), conv-Tanh."""
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, rng=seed, dtype=dtype),
        nn.BatchNorm2d(6, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Sequential(
            nn.Conv2d(6, 8, 3, padding=1, groups=2, rng=seed + 1, dtype=dtype),
            nn.Dropout(0.5, rng=seed),
            nn.Sigmoid(),
        ),
        nn.Conv2d(8, 5, 3, stride=2, dilation=2, padding=2, rng=seed + 2, dtype=dtype),
        nn.Tanh(),
    )
    norm = model[1]
    rng = np.random.default_rng(seed)
    norm.running_mean.data[:] = rng.normal(size=6)
    norm.running_var.data[:] = rng.uniform(0.5, 2, size=6)
    norm.weight.data[:] = rng.normal(size=6)
    norm.bias.data[:] = rng.normal(size=6)
    return model


@pytest.fixture(scope="module")
def vgg():
    return vgg16(rng=0).requires_grad_(False)


def test_layers_are_named_as_named_modules_and_described():
    target = as_target(small_cnn())
    assert list(target.layers) == ["0", "4.0", "5"]
    assert [target.channels(name) for name in target.layers] == [6, 8, 5]
    assert target.layer("0").describe() == "Conv2d(3 -> 6, 3x3) + BatchNorm2d + ReLU"
    assert target.layer("4.0").describe() == "Conv2d(6 -> 8, 3x3) + Sigmoid"
    assert target.input_space == "unit" and target.input_channels == 3


def test_vgg_layers_keep_their_keras_names(vgg):
    target = as_target(vgg)
    assert list(target.layers) == vgg.conv_layer_names
    assert target.channels("block5_conv3") == 512 and target.input_space == "caffe"
    assert target.layer("block1_conv1").describe() == "Conv2d(3 -> 64, 3x3) + ReLU"


def _whole_layer(model: nn.Sequential, modules_until: int, x: Tensor) -> np.ndarray:
    model.eval()
    flat = [m for m in _flat(model)]
    for module in flat[:modules_until]:
        x = module(x)
    model.train()
    return x.data


def _flat(model):
    for module in model:
        if isinstance(module, nn.Sequential):
            yield from _flat(module)
        else:
            yield module


@settings(deadline=None)
@given(
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    layer=st.sampled_from([("0", 3, 2), ("4.0", 7, 6), ("5", 9, 8)]),
)
def test_the_response_is_the_whole_layers_channel(batch, seed, layer):
    """One kernel per image (BatchNorm folded in) equals running the layer whole, in float64,
    with and without the final nonlinearity; the model is back in training mode after."""
    name, activated_end, pre_end = layer
    model = small_cnn(seed % 7)
    target = as_target(model)
    rng = np.random.default_rng(seed)
    x = Tensor(rng.normal(size=(batch, 3, 12, 12)))
    filters = rng.integers(0, target.channels(name), batch)
    for activated, end in ((True, activated_end), (False, pre_end)):
        ours = target.response(x, name, filters, activated=activated).data
        whole = _whole_layer(model, end, x)[np.arange(batch), filters]
        np.testing.assert_allclose(ours, whole, rtol=1e-10, atol=1e-12)
    assert all(m.training for m in _flat(model))


def test_vgg_response_is_the_keras_layer(vgg):
    target = as_target(vgg)
    x = Tensor(np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32) * 50)
    filters = [5, 0, 63]
    whole = vgg(x, until="block2_conv1").data[np.arange(3), filters]
    ours = target.response(x, "block2_conv1", filters).data
    np.testing.assert_allclose(ours, whole, rtol=1e-4, atol=1e-3)
    pre = vgg(x, until=f"features.{vgg.conv_index('block2_conv1')}").data[np.arange(3), filters]
    np.testing.assert_allclose(
        target.response(x, "block2_conv1", filters, activated=False).data, pre, rtol=1e-4, atol=1e-3
    )


@pytest.mark.parametrize("mode", ["classic", "improved", "spectral"])
def test_a_filters_image_does_not_depend_on_its_batch_mates(vgg, mode):
    """Same batch size, other companions, other order: the same image to the last bit."""
    target = as_target(vgg)
    settings_ = AscentSettings(steps=3, size=32, batch=4)

    def run(filters):
        if mode == "classic":
            results = classic_ascent(target, "block3_conv1", filters, settings_)
        else:
            options = ImprovedOptions(
                octaves=(1.0,), parameterization="spectral" if mode == "spectral" else "pixel"
            )
            results = improved_ascent(target, "block3_conv1", filters, settings_, options)
        return {r.filter: r for r in results}

    first = run([7, 1, 2, 3, 4, 5])
    second = run([9, 7, 11])
    third = run([5, 6, 7])
    alone = run([7])  # a batch of one image would take other kernels (matrix-vector products)
    for other in (second, third, alone):
        np.testing.assert_array_equal(first[7].image, other[7].image)
        assert first[7].curve == other[7].curve
    np.testing.assert_array_equal(first[5].image, third[5].image)


def test_a_sequential_cnn_is_visualised_in_unit_space_and_grey():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.Conv2d(4, 4, 3, rng=1), nn.ReLU()
    )
    target = as_target(model)
    start = target.start_image(2, 16, seed=0)
    assert start.shape == (1, 16, 16) and 0.45 < start.mean() < 0.55
    results = visualize_filters(model, "2", 4, steps=3, size=16)
    assert results
    for _, image, loss in results:
        assert image.shape == (16, 16, 3) and loss > 0
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


def test_deprocess_draws_one_channel_grey_and_refuses_other_shapes():
    x = np.random.default_rng(0).normal(size=(1, 5, 5))
    picture = deprocess_image(x, "unit")
    assert picture.shape == (5, 5, 3) and (picture[..., 0] == picture[..., 2]).all()
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(1, H, W\).*\(2, 5, 5\)"):
        deprocess_image(np.zeros((2, 5, 5)))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: nn.Linear(3, 2), TypeError, "VGG16 or an nn.Sequential CNN, got Linear"),
        (lambda: nn.Sequential(nn.ReLU()), ValueError, "no Conv2d layer"),
        (
            lambda: nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2, track_running_stats=False)),
            None,
            None,
        ),
    ],
)
def test_models_that_cannot_be_visualised_are_refused(make, error, message):
    if error is None:  # accepted as a target; the response explains the problem
        target = as_target(make())
        with pytest.raises(ValueError, match="running statistics"):
            target.response(Tensor(np.zeros((1, 3, 8, 8), np.float32)), "0", [0])
        return
    with pytest.raises(error, match=message):
        as_target(make())


def test_bad_layer_names_and_input_spaces_are_refused(vgg):
    with pytest.raises(ValueError, match=r"not a convolution layer of the VGG16.*block1_conv1"):
        as_target(vgg).layer("block1_pool")
    with pytest.raises(ValueError, match=r"input space 'caffe' is for RGB images.*1 channels"):
        as_target(nn.Sequential(nn.Conv2d(1, 2, 3)), input_space="caffe")
    with pytest.raises(ValueError, match="input_space must be one of"):
        as_target(nn.Sequential(nn.Conv2d(3, 2, 3)), input_space="hsv")
    with pytest.raises(ValueError, match="filters for a batch"):
        as_target(vgg).response(Tensor(np.zeros((2, 3, 8, 8), np.float32)), "block1_conv1", [1])
