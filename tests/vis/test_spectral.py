"""The improved mode's spectral parameterisation: its images are pixels, drawn as they are, with
the average colour held at mid-grey."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import nn
from tinygrad_edu.models.vgg import VGG16, to_input_space, vgg16
from tinygrad_edu.tensor import Tensor
from tinygrad_edu.vis import visualize_filters
from tinygrad_edu.vis.ascent import AscentSettings
from tinygrad_edu.vis.images import picture_of_pixels
from tinygrad_edu.vis.improved import ImprovedOptions, Spectral, improved_ascent
from tinygrad_edu.vis.targets import as_target

REAL_WEIGHTS = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "weights"
    / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
SPACES = ("caffe", "torch", "unit")
#: the most a picture's mean R, G and B may differ (of 255): no visible colour cast
MAX_CAST = 12
SPECTRAL = {"mode": "improved", "parameterization": "spectral"}


def channel_mean_spread(picture: np.ndarray) -> float:
    """max - min of the picture's mean R, G and B."""
    means = picture.reshape(-1, 3).mean(axis=0)
    return float(means.max() - means.min())


def chroma(picture: np.ndarray) -> float:
    """Mean over pixels of max - min over the channels, once each channel's mean is moved to
    the picture's overall mean (so that a cast does not count as colour)."""
    pixels = picture.astype(np.float64)
    means = pixels.reshape(-1, 3).mean(axis=0)
    pixels = np.clip(pixels - means + means.mean(), 0, 255)
    return float((pixels.max(axis=2) - pixels.min(axis=2)).mean())


def small_model(space: str) -> VGG16 | nn.Sequential:
    """VGG16 with random weights in the Keras or torchvision space; a small RGB CNN in "unit"."""
    if space == "unit":
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=0), nn.ReLU())
    return VGG16(input_space=space, rng=0).requires_grad_(False)


def _picture(space: str, spectrum: np.ndarray) -> np.ndarray:
    target = as_target(nn.Sequential(nn.Conv2d(3, 1, 1)), input_space=space)
    param = Spectral(spectrum.shape[-1], target)
    return picture_of_pixels(param.to_input(Tensor(spectrum[None])).data[0], space)


@pytest.mark.parametrize("space", SPACES)
def test_a_zero_spectrum_is_a_mid_grey_picture(space):
    picture = _picture(space, np.zeros((3, 16, 16), np.float32))
    assert np.all(np.abs(picture.astype(int) - 127.5) <= 0.5)  # 255 * sigmoid(0), rounded


@pytest.mark.parametrize("space", SPACES)
def test_the_spectrum_cannot_tint_the_picture(space):
    constant = np.zeros((3, 16, 16), np.float32)
    constant[:, 0, 0] = [3.0, -2.0, 1.0]  # each channel's average, far from zero
    assert channel_mean_spread(_picture(space, constant)) <= 1  # mid-grey, up to rounding
    pattern = np.random.default_rng(0).standard_normal((3, 16, 16)).astype(np.float32)
    picture = _picture(space, pattern)
    assert np.ptp(picture) > 100 and channel_mean_spread(picture) <= MAX_CAST / 4


@pytest.mark.parametrize("space", SPACES)
def test_pixels_round_trip_through_the_input_space(space):
    pixels = np.random.default_rng(1).integers(0, 256, (6, 7, 3)).astype(np.float64)
    values = pixels / 255 if space == "unit" else to_input_space(pixels, space)
    values = values.transpose(2, 0, 1)
    np.testing.assert_array_equal(picture_of_pixels(values, space), pixels.astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(3, H, W\) input in the 'caffe' space"):
        picture_of_pixels(values[:1], "caffe")


def test_one_channel_pixels_are_drawn_grey():
    grey = np.array([[[0.0, 0.5, 1.0]]])  # (1, 1, 3): unit-space values of one channel
    np.testing.assert_array_equal(
        picture_of_pixels(grey, "unit")[0], [[0] * 3, [128] * 3, [255] * 3]
    )


@pytest.mark.parametrize("space", SPACES)
def test_spectral_pictures_are_the_ascents_own_pixels(space):
    model, layer = small_model(space), "0" if space == "unit" else "block2_conv1"
    filters, settings = [0, 1, 2], AscentSettings(steps=2, size=32, batch=3)
    options = ImprovedOptions(parameterization="spectral")
    raw = {
        r.filter: r.image
        for r in improved_ascent(as_target(model), layer, filters, settings, options)
    }
    pictures = visualize_filters(model, layer, filters, steps=2, size=32, **SPECTRAL)
    assert pictures, "no filter kept"
    # half a grey level, in input units
    tolerance = {"caffe": 0.5, "torch": 0.5 / 255 / 0.224, "unit": 0.5 / 255}[space]
    for f, picture, _ in pictures:
        pixels = picture.astype(np.float64)
        back = pixels / 255 if space == "unit" else to_input_space(pixels, space)
        np.testing.assert_allclose(back.transpose(2, 0, 1), raw[f], atol=tolerance * 1.01, rtol=0)
        assert channel_mean_spread(picture) <= MAX_CAST


@pytest.mark.skipif(not REAL_WEIGHTS.exists(), reason="real VGG16 weights not in ../shared/weights")
def test_real_weights_spectral_pictures_are_vivid_without_a_cast():
    model = vgg16(REAL_WEIGHTS).freeze()
    options = {"steps": 20, "size": 64, "mode": "improved"}  # 60 spectral steps, as the CLI's
    pixel = dict((f, p) for f, p, _ in visualize_filters(model, "block2_conv2", 4, **options))
    spectral = visualize_filters(model, "block2_conv2", 4, parameterization="spectral", **options)
    assert len(spectral) == 4
    for f, picture, _ in spectral:
        assert channel_mean_spread(picture) <= MAX_CAST, f
        assert chroma(picture) >= 0.8 * chroma(pixel[f]), f
