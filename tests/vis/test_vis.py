"""Filter visualisation: ascent, batching, images, grids, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu.cli import main
from tinygrad_edu.kernels import jit
from tinygrad_edu.models.vgg import VGG16, vgg16
from tinygrad_edu.vis import best, deprocess_image, save_png, stitch, visualize_filters
from tinygrad_edu.vis.ascent import AscentSettings, classic_ascent
from tinygrad_edu.vis.images import grey_noise
from tinygrad_edu.vis.targets import as_target

REAL_WEIGHTS = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "weights"
    / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


@pytest.fixture(scope="module")
def model():
    return vgg16(rng=0).requires_grad_(False)


@pytest.fixture(scope="module")
def target(model):
    return as_target(model)


def _alive(model, layer, candidates, size=32):
    """Filters whose loss is positive after one step (random weights leave some dead)."""
    runs = classic_ascent(
        as_target(model),
        layer,
        candidates,
        AscentSettings(steps=1, size=size, batch=len(candidates)),
    )
    return [r.filter for r in runs if r.loss > 0]


def test_activation_rises_over_the_steps(model, target):
    filters = _alive(model, "block2_conv1", list(range(16)))[:3]
    assert filters, "no live filter to test with"
    runs = classic_ascent(target, "block2_conv1", filters, AscentSettings(steps=6, size=32))
    first = classic_ascent(target, "block2_conv1", filters, AscentSettings(steps=1, size=32))
    for once, run in zip(first, runs):
        assert run.loss > once.loss > 0
        assert len(run.curve) == 6 and run.curve[0] == once.loss and run.curve[-1] == run.loss


def test_batched_equals_one_filter_at_a_time(target):
    """Each image of a batch ascends on its own: the same images, bit for bit, as one filter at a
    time. On the NumPy kernels, whose arithmetic for an image does not depend on the images
    beside it; the fused kernels' small transposed GEMMs (OpenBLAS) may round differently with
    the batch, and four ascent steps can carry such a roundoff through a flipped ReLU into a few
    pixels (docs/performance.md, Accuracy)."""
    filters = list(range(6))
    with jit.numpy_path():
        together = classic_ascent(
            target, "block2_conv2", filters, AscentSettings(steps=4, size=32, batch=4)
        )
        alone = [
            classic_ascent(target, "block2_conv2", [f], AscentSettings(steps=4, size=32, batch=1))[
                0
            ]
            for f in filters
        ]
    for a, b in zip(together, alone):
        assert a.filter == b.filter
        assert a.loss == pytest.approx(b.loss, rel=1e-6)  # means reduced in another grouping
        np.testing.assert_array_equal(a.image, b.image)


def test_dead_filters_stop_early_and_are_dropped(model, target):
    runs = classic_ascent(target, "block3_conv1", list(range(12)), AscentSettings(steps=5, size=32))
    kept = visualize_filters(model, "block3_conv1", 12, steps=5, size=32)
    assert {r.filter for r in runs if r.loss > 0} == {f for f, _, _ in kept}
    assert all(loss > 0 for _, _, loss in kept)
    assert all(len(r.curve) < 5 for r in runs if r.loss <= 0)


def test_results_are_reproducible_and_seeded(model):
    a = visualize_filters(model, "block1_conv2", [0, 1], steps=2, size=32, seed=3)
    b = visualize_filters(model, "block1_conv2", [0, 1], steps=2, size=32, seed=3)
    c = visualize_filters(model, "block1_conv2", [0, 1], steps=2, size=32, seed=4)
    for (_, x, _), (_, y, _), (_, z, _) in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)


def test_visualize_returns_uint8_rgb_images(model):
    results = visualize_filters(model, "block1_conv1", 4, steps=2, size=32)
    for _f, image, loss in results:
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and loss > 0
    assert best(results, 2) == sorted(results, key=lambda r: r[2], reverse=True)[:2]


def test_improved_mode_raises_the_activation(model):
    filters = _alive(model, "block2_conv1", list(range(16)))[:2]
    for options in ({}, {"parameterization": "spectral"}):
        short = visualize_filters(
            model, "block2_conv1", filters, steps=1, size=32, mode="improved", **options
        )
        longer = visualize_filters(
            model, "block2_conv1", filters, steps=6, size=32, mode="improved", **options
        )
        assert sum(r[2] for r in longer) > sum(r[2] for r in short), options
        assert all(r[1].shape == (32, 32, 3) for r in longer)


def test_total_variation_makes_smoother_images(target):
    from tinygrad_edu.vis.improved import ImprovedOptions, improved_ascent

    def roughness(tv):
        options = ImprovedOptions(tv=tv, blur_every=0, octaves=(1.0,))
        (result,) = improved_ascent(
            target, "block2_conv1", [0], AscentSettings(steps=6, size=32, batch=1), options
        )
        x = result.image
        return np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()

    assert roughness(1.0) < roughness(0.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layer": "block1_pool"}, ValueError, "not a convolution layer.*block1_conv1"),
        ({"filters": [70]}, ValueError, r"filters 0\.\.63; got \[70\]"),
        ({"filters": 0}, ValueError, "at least 1"),
        ({"steps": 0}, ValueError, "steps >= 1"),
        ({"mode": "fancy"}, ValueError, "'classic' or 'improved'"),
        ({"tv": 0.1}, TypeError, "only apply to mode='improved'"),
        ({"batch": 0}, ValueError, "batch"),
    ],
)
def test_bad_arguments_are_explained(model, kwargs, error, message):
    arguments = {"layer": "block1_conv1", "filters": 2, "steps": 1, "size": 32, **kwargs}
    with pytest.raises(error, match=message):
        visualize_filters(model, **arguments)


# ----------------------------------------------------------------------------- images
def test_grey_noise_is_the_documents_start():
    x = grey_noise("caffe", 5, 16, seed=0)
    assert x.shape == (3, 16, 16) and x.dtype == np.float64  # NumPy's random array, as the script
    assert x.min() >= 118 and x.max() <= 138
    np.testing.assert_array_equal(x, grey_noise("caffe", 5, 16, seed=0))
    torch_space = grey_noise("torch", 5, 16, seed=0)
    np.testing.assert_allclose(
        VGG16(input_space="torch", initialise=False).deprocess(
            torch_space[None].astype(np.float32)
        ),
        VGG16(input_space="caffe", initialise=False).deprocess(x[None].astype(np.float32)),
        atol=1e-3,
    )


def test_deprocess_centres_scales_and_returns_rgb():
    x = np.zeros((3, 4, 4))
    x[0] = 10.0  # Keras channel 0 is blue
    image = deprocess_image(x, "caffe")
    assert image.dtype == np.uint8 and image.shape == (4, 4, 3)
    assert image[0, 0, 2] > image[0, 0, 0]  # blue ends up last in RGB
    spread = deprocess_image(np.random.default_rng(0).standard_normal((3, 64, 64)) * 1000)
    assert abs(spread.mean() - 127.5) < 2 and 20 < spread.std() < 30  # std 0.1 of the range


def test_stitch_places_images_with_black_margins():
    images = [np.full((10, 12, 3), 50 * (i + 1), np.uint8) for i in range(3)]
    grid = stitch(images, n=2, margin=5)
    assert grid.shape == (2 * 10 + 5, 2 * 12 + 5, 3)
    assert (
        (grid[:10, :12] == 50).all()
        and (grid[:10, 17:] == 100).all()
        and (grid[15:, :12] == 150).all()
    )
    assert (grid[10:15] == 0).all() and (grid[:, 12:17] == 0).all() and (grid[15:, 17:] == 0).all()


def test_stitch_errors():
    with pytest.raises(ValueError, match="do not fit"):
        stitch([np.zeros((2, 2, 3), np.uint8)] * 5, n=2)
    with pytest.raises(ValueError, match=r"image 1 has shape \(3, 2, 3\)"):
        stitch([np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8)], n=2)


def test_save_png_round_trip(tmp_path):
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    save_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "x.png")), image)
    with pytest.raises(ValueError, match="uint8"):
        save_png(tmp_path / "y.png", image.astype(float))


@pytest.mark.skipif(not REAL_WEIGHTS.exists(), reason="real VGG16 weights not in ../shared/weights")
def test_real_weights_block1_conv1_short_run():
    results = visualize_filters(vgg16(REAL_WEIGHTS), "block1_conv1", 8, steps=3, size=48)
    assert len(results) >= 4 and all(loss > 0 for _, _, loss in results)


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def random_weights(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("weights") / "vgg_random.npz"
    np.savez(path, **model.state_dict())
    return path


def test_cli_writes_grids_and_summary(random_weights, tmp_path, capsys):
    argv = [
        "visualize",
        "--weights",
        str(random_weights),
        "--layers",
        "block1_conv1",
        "block1_conv2",
    ]
    argv += [
        "--filters",
        "6",
        "--steps",
        "2",
        "--size",
        "32",
        "--grid",
        "2",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(argv) == 0
    from PIL import Image

    for layer in ("block1_conv1", "block1_conv2"):
        grid = np.asarray(Image.open(tmp_path / f"{layer}_2x2.png"))
        assert grid.shape == (2 * 32 + 5, 2 * 32 + 5, 3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["layer"] for row in summary["layers"]] == ["block1_conv1", "block1_conv2"]
    assert all(
        row["filters_scanned"] == 6 and len(row["in_grid"]) <= 4 for row in summary["layers"]
    )
    assert "total" in capsys.readouterr().out


def test_cli_document_layers_and_unknown_names(capsys):
    from tinygrad_edu.cli.visualize import DOCUMENT_LAYERS, resolve_layers

    assert resolve_layers(["document"]) == list(DOCUMENT_LAYERS)
    assert resolve_layers(["block1_conv1", "document"])[0] == "block1_conv1"
    assert main(["visualize", "--layers", "block6_conv1", "--weights", "unused.h5"]) == 2
    err = capsys.readouterr().err
    assert "unknown layer 'block6_conv1'" in err and "block5_conv3" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--step-size", "nan"),
        ("--step-size", "inf"),
        ("--step-size", "-1"),
        ("--step-size", "0"),
        ("--steps", "0"),
        ("--filters", "-3"),
        ("--size", "0"),
        ("--grid", "0"),
        ("--batch", "0"),
        ("--tv", "nan"),
        ("--tv", "-0.5"),
    ],
)
def test_cli_refuses_meaningless_numbers_in_one_line(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["visualize", option, value, "--weights", "unused.h5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and f"argument {option}" in err and repr(value) in err


def test_cli_out_that_is_a_file_is_a_one_line_error(random_weights, tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    argv = ["visualize", "--weights", str(random_weights), "--layers", "block1_conv1"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err
    assert out.read_text() == "not a folder"


def test_cli_refuses_improved_options_in_classic_mode(capsys):
    code = main(
        [
            "visualize",
            "--layers",
            "block1_conv1",
            "--parameterization",
            "spectral",
            "--weights",
            "x.h5",
        ]
    )
    assert code == 2 and "--mode improved only" in capsys.readouterr().err
