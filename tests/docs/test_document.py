"""The project against the document it grew from: its data, its formulas, its training run, and
the arithmetic of its Keras filter-visualisation script.

Every reference here is transcribed in this file from the document (its formulas and code), in
plain NumPy; nothing reference-side is imported from the package.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tinygrad_edu.cli import build_parser, main
from tinygrad_edu.models.text_color import (
    COLOR_NAMES,
    COLORS,
    LABELS,
    build_mlp,
    handderived,
    to_augmented,
)
from tinygrad_edu.models.text_color.colors import label_checks
from tinygrad_edu.models.text_color.training import (
    DOCUMENT_LR,
    DOCUMENT_MAX_ITERATION,
    DOCUMENT_SEED,
    DOCUMENT_TARGET,
    train,
)
from tinygrad_edu.models.vgg import vgg16
from tinygrad_edu.vis import best, deprocess_image, stitch, visualize_filters
from tinygrad_edu.vis.ascent import normalize

# ----------------------------------------------------------------------------- the data, as printed
DOCUMENT_INPUT = [
    [0, 1, 0],  # pure green
    [0, 1, 1],
    [1, 0, 0],  # pure red
    [0.95294118, 0.99607843, 0.99607843],
    [0.93333333, 0.93333333, 0.93333333],
    [0.90588235, 0.65098039, 0.80392157],
    [0, 0, 0],  # pure black
    [0.87058824, 0.87058824, 0.80392157],
    [0.26666667, 0.26666667, 0.93333333],
    [0.92941176, 0.88627451, 0.0745098],
]
DOCUMENT_EXPECTED_OUTPUT = [1, 1, 0, 0, 0, 0, 1, 0, 1, 0]


def test_colors_and_labels_are_the_documents_exactly():
    assert COLORS.dtype == LABELS.dtype == np.float64
    np.testing.assert_array_equal(COLORS, np.array(DOCUMENT_INPUT))
    np.testing.assert_array_equal(LABELS, np.array(DOCUMENT_EXPECTED_OUTPUT, float)[:, None])
    assert (COLOR_NAMES[0], COLOR_NAMES[2], COLOR_NAMES[6]) == (
        "pure green",
        "pure red",
        "pure black",
    )


def test_where_the_labels_and_wcag_part_ways():
    checks = label_checks()
    assert [c.name for c in checks if not c.agrees] == ["pure green", "#00ffff"]
    green = checks[0]
    assert green.label == 1 and green.wcag == 0
    assert green.white_contrast == pytest.approx(1.37, abs=0.005)
    assert green.black_contrast == pytest.approx(15.30, abs=0.005)


# ------------------------------------------------------------ the document's algorithm, transcribed
def document_sigmoid(before_act, derivative=False):
    if not derivative:
        return 1 / (1 + np.exp(-before_act))
    output = document_sigmoid(before_act)
    return output * (1 - output)


def document_backpropagation(weights, inputs, output, learning_rate=0.2):
    """The document's ``forwardPropagation`` + ``backpropagation``: updates ``weights`` in place
    and returns its ``error = np.sum(diff**2)`` (computed before the update)."""
    layer_count = len(weights)
    n = inputs.shape[0]
    layer_input, layer_output = [], []
    for i in range(layer_count):
        below = inputs.T if i == 0 else layer_output[-1]
        layer_input.append(weights[i].dot(np.vstack([below, np.ones([1, n])])))
        layer_output.append(document_sigmoid(layer_input[-1]))
    delta = []
    for i in reversed(range(layer_count)):
        if i == layer_count - 1:
            diff = layer_output[i] - output.T
            error = np.sum(diff**2)
            delta.append(diff * document_sigmoid(layer_input[i], True))
        else:
            delta_j = weights[i + 1].T.dot(delta[-1])
            delta.append(delta_j[:-1, :] * document_sigmoid(layer_input[i], True))
    for i in range(layer_count):
        delta_i = layer_count - 1 - i
        if i == 0:
            layeroutput = np.vstack([inputs.T, np.ones([1, n])])
        else:
            below = layer_output[i - 1]
            layeroutput = np.vstack([below, np.ones([1, below.shape[1]])])
        weight_delta = np.sum(
            layeroutput[None, :, :].transpose(2, 0, 1)
            * delta[delta_i][None, :, :].transpose(2, 1, 0),
            axis=0,
        )
        weights[i] -= learning_rate * weight_delta
    return error, delta


def document_run(weights, max_iteration, target):
    """The loop that prints "Minimum error reached at iteration N": weights after each iteration,
    and the errors."""
    history, errors = [], []
    for _ in range(max_iteration + 1):
        err, _ = document_backpropagation(weights, COLORS, LABELS, DOCUMENT_LR)
        history.append([w.copy() for w in weights])
        errors.append(err)
        if target is not None and err <= target:
            break
    return history, np.array(errors)


def _engine_run(max_iteration, target):
    model = build_mlp(rng=DOCUMENT_SEED)
    initial = to_augmented(model)
    history = []
    run = train(
        model,
        COLORS,
        LABELS,
        max_iteration=max_iteration,
        target=target,
        on_step=lambda i, m: history.append(to_augmented(m)),
    )
    return initial, history, run


def _assert_same_trajectory(ours, theirs):
    assert len(ours) == len(theirs)
    worst = max(
        float(np.abs(a - b).max()) for mine, doc in zip(ours, theirs) for a, b in zip(mine, doc)
    )
    assert worst <= 1e-12, f"weights drift apart by {worst:.3g}"


def test_document_run_reproduced_step_by_step():
    """Same initial matrices, same weights after every iteration (to 1e-12), same stopping
    iteration: the document's 9066, over its budget of iterations 0..100000."""
    initial, ours, run = _engine_run(DOCUMENT_MAX_ITERATION, DOCUMENT_TARGET)
    theirs, their_errors = document_run([w.copy() for w in initial], DOCUMENT_MAX_ITERATION, 1e-3)
    _assert_same_trajectory(ours, theirs)
    np.testing.assert_allclose(2 * run.errors, their_errors, rtol=1e-12, atol=0)
    assert run.reached_target and run.last_iteration == len(theirs) - 1 == 9066


def test_budget_runs_iterations_zero_to_max_without_target():
    initial, ours, run = _engine_run(40, None)
    theirs, their_errors = document_run([w.copy() for w in initial], 40, None)
    assert run.last_iteration == 40 and not run.reached_target
    _assert_same_trajectory(ours, theirs)
    np.testing.assert_allclose(2 * run.errors, their_errors, rtol=1e-12, atol=0)


def test_handderived_is_the_documents_backpropagation():
    rng = np.random.default_rng(7)
    for sizes in [(3, 5, 2, 1), (3, 4, 1), (3, 2, 3, 2)]:
        matrices = [rng.normal(0, 1.0, (o, i + 1)) for i, o in itertools.pairwise(sizes)]
        X = rng.uniform(0, 1, (6, 3))
        Y = rng.uniform(0, 1, (6, sizes[-1]))
        before = [m.copy() for m in matrices]
        err, their_deltas = document_backpropagation(before, X, Y, learning_rate=1.0)
        ours = handderived.deltas(matrices, X, Y)
        assert [d.shape for d in ours] == [(s, 6) for s in reversed(sizes[1:])]
        for a, b in zip(ours, their_deltas):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
        for m, g, updated in zip(matrices, handderived.weight_gradients(matrices, X, Y), before):
            np.testing.assert_allclose(m - g, updated, rtol=1e-13, atol=1e-15)
        # erratum: the code's error line has no 1/2, the maths' E has it
        assert err == pytest.approx(2 * handderived.error(matrices, X, Y), rel=1e-13)


# --------------------------------------------------------------- the Keras script, transcribed
KERAS_EPSILON = 1e-7


def script_normalize(x):
    return x / (np.sqrt(np.mean(np.square(x))) + np.float32(KERAS_EPSILON))


def script_deprocess_image(x):
    x = x.copy()
    x -= x.mean()
    x /= x.std() + KERAS_EPSILON
    x *= 0.1
    x += 0.5
    x = np.clip(x, 0, 1)
    x *= 255
    return np.clip(x, 0, 255).astype("uint8")


def test_normalize_and_deprocess_use_keras_epsilon():
    tiny = np.full((1, 3, 4, 4), 3e-7, np.float32)  # an RMS where 1e-7 and 1e-5 differ
    np.testing.assert_array_equal(normalize(tiny)[0], script_normalize(tiny[0]))
    x = np.random.default_rng(0).normal(0, 2e-7, (3, 8, 8))  # a std where the epsilon matters
    hwc = x.transpose(1, 2, 0)
    np.testing.assert_array_equal(deprocess_image(x, "torch"), script_deprocess_image(hwc))
    # the one difference: Keras' BGR array is shown as RGB (the script saves it unswapped)
    np.testing.assert_array_equal(
        deprocess_image(x, "caffe"), script_deprocess_image(hwc)[..., ::-1]
    )


@pytest.fixture(scope="module")
def model():
    return vgg16(rng=0).requires_grad_(False)


def script_filter(model, layer, filter_index, size, steps, seed):
    """The script's loop for one filter: noise fed as is, loss = mean post-ReLU activation,
    normalised gradient step, *then* the ``loss <= 0`` check; keep when the last loss > 0."""
    from tinygrad_edu import Tensor, grad

    rng = np.random.default_rng([seed, filter_index])  # the script draws from np.random
    input_img_data = (rng.random((3, size, size)) - 0.5) * 20 + 128
    loss_value = 0.0
    for _ in range(steps):
        x = Tensor(input_img_data[None].astype(np.float32), requires_grad=True)
        loss = model(x, until=layer)[0, filter_index].mean()  # `until` returns post-ReLU
        (grads,) = grad(loss, [x])
        loss_value = loss.item()
        input_img_data = input_img_data + script_normalize(grads.data[0]) * 1.0
        if loss_value <= 0.0:
            break
    if loss_value > 0:
        return script_deprocess_image(input_img_data.transpose(1, 2, 0))[..., ::-1], loss_value
    return None


def test_classic_ascent_is_the_scripts_loop(model):
    layer, size, steps = "block2_conv1", 24, 3
    ours = {
        f: (image, loss) for f, image, loss in visualize_filters(model, layer, 8, steps, 1.0, size)
    }
    theirs = {}
    for f in range(8):
        kept = script_filter(model, layer, f, size, steps, seed=0)
        if kept is not None:
            theirs[f] = kept
    assert ours.keys() == theirs.keys() and ours
    for f, (image, loss) in ours.items():
        assert loss == pytest.approx(theirs[f][1], rel=1e-5)
        # float32 convolutions summed in another order: a pixel may round to its neighbour
        assert np.abs(image.astype(int) - theirs[f][0].astype(int)).max() <= 1


def script_stitch(kept_filters, img_width, img_height, n=4, margin=5):
    width = n * img_width + (n - 1) * margin
    height = n * img_height + (n - 1) * margin
    stitched_filters = np.zeros((width, height, 3))
    for i in range(n):
        for j in range(n):
            img, _ = kept_filters[i * n + j]
            width_margin = (img_width + margin) * i
            height_margin = (img_height + margin) * j
            stitched_filters[
                width_margin : width_margin + img_width,
                height_margin : height_margin + img_height,
                :,
            ] = img
    return stitched_filters


def test_best_sixteen_by_final_loss_on_a_4x4_grid_with_5px_margins():
    rng = np.random.default_rng(1)
    results = [
        (f, rng.integers(0, 256, (12, 12, 3), np.uint8), float(rng.random())) for f in range(30)
    ]
    kept_filters = sorted(
        [(img, loss) for _, img, loss in results], key=lambda x: x[1], reverse=True
    )
    kept_filters = kept_filters[: 4 * 4]
    chosen = best(results, 16)
    assert [loss for _, _, loss in chosen] == [loss for _, loss in kept_filters]
    grid = stitch([image for _, image, _ in chosen], n=4, margin=5)
    assert grid.shape == (4 * 12 + 3 * 5, 4 * 12 + 3 * 5, 3)
    np.testing.assert_array_equal(grid, script_stitch(kept_filters, 12, 12))


def test_cli_defaults_and_file_name_are_the_scripts(model, tmp_path):
    args = build_parser().parse_args(["visualize"])
    assert (args.filters, args.steps, args.step_size, args.size, args.grid) == (
        200,
        20,
        1.0,
        128,
        4,
    )
    weights = tmp_path / "random.npz"
    np.savez(weights, **model.state_dict())
    argv = ["visualize", "--weights", str(weights), "--layers", "block1_conv1", "--filters", "16"]
    argv += ["--steps", "1", "--size", "16", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    assert (tmp_path / "block1_conv1_4x4.png").exists()
