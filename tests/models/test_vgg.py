"""VGG16: weights from every format, layer addressing, bad files, input spaces, references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tinygrad_edu as tg
from tests.keras_writer import write_keras3, write_keras_legacy
from tests.pth_writer import write_legacy, write_zip
from tinygrad_edu import Tensor
from tinygrad_edu.io.errors import WeightsError
from tinygrad_edu.models.vgg import VGG16, vgg16

h5py = pytest.importorskip("h5py")
REAL_WEIGHTS = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "weights"
    / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


def keras_layers(state: dict[str, np.ndarray], model: VGG16) -> dict[str, list[np.ndarray]]:
    """torchvision-named arrays -> Keras layers, converted independently of the loader."""
    layers = {}
    for name, (module, _) in model.keras_layers.items():
        if "_conv" in name:
            layers[name] = [
                state[f"{module}.weight"].transpose(2, 3, 1, 0),
                state[f"{module}.bias"],
            ]
        else:
            layers[name] = []
    return layers


@pytest.fixture(scope="module")
def reference():
    model = vgg16(rng=1)
    return model, model.state_dict()


@pytest.fixture(scope="module")
def files(reference, tmp_path_factory):
    model, state = reference
    folder = tmp_path_factory.mktemp("vgg")
    from safetensors.numpy import save_file

    save_file(state, str(folder / "vgg.safetensors"))
    np.savez(folder / "vgg.npz", **state)
    return {
        "keras_legacy": write_keras_legacy(folder / "legacy.h5", keras_layers(state, model)),
        "keras3": write_keras3(folder / "vgg.weights.h5", keras_layers(state, model)),
        "pth_zip": write_zip(state, folder / "zip.pth"),
        "pth_legacy": write_legacy(state, folder / "legacy.pth"),
        "safetensors": folder / "vgg.safetensors",
        "npz": folder / "vgg.npz",
    }


@pytest.mark.parametrize(
    "kind", ["keras_legacy", "keras3", "pth_zip", "pth_legacy", "safetensors", "npz"]
)
def test_every_format_loads_the_same_weights(kind, files, reference):
    model = vgg16(files[kind])
    expected = reference[1]
    loaded = model.state_dict()
    assert list(loaded) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    assert model.input_space == ("caffe" if kind.startswith("keras") else "torch")
    assert not any(p.requires_grad for p in model.parameters())


def test_a_frozen_model_loads_weights_and_stays_frozen(files, reference):
    from tinygrad_edu.io.weights import read_weights

    model = vgg16(rng=2).freeze()
    versions = [p._version for p in model.parameters()]
    kind, arrays = read_weights(files["npz"])
    model.load_weights(arrays, kind)
    assert [p._version for p in model.parameters()] == [v + 1 for v in versions]  # new values
    for key, value in reference[1].items():
        np.testing.assert_array_equal(model.state_dict()[key], value, err_msg=key)
    assert not any(p.requires_grad for p in model.parameters())


def test_layer_names_and_stopping_points(reference):
    model = reference[0]
    assert model.layer_names[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert len(model.layer_names) == 18 and model.layer_names[-1] == "block5_pool"
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    sizes = {
        "block1_conv2": 32,
        "block2_pool": 8,
        "block4_conv3": 4,
        "block5_conv3": 2,
        "block5_pool": 1,
    }
    for name, side in sizes.items():
        out = model(x, until=name)
        assert out.shape[2:] == (side, side), name
    pre_relu = model(x, until="features.28")  # torchvision index: the conv itself
    np.testing.assert_array_equal(np.maximum(pre_relu.data, 0), model(x, until="block5_conv3").data)


def test_forward_stops_at_the_requested_layer(reference):
    x = Tensor(np.zeros((1, 3, 16, 16), dtype=np.float32), requires_grad=True)
    with tg.trace() as t:
        reference[0](x, until="block1_conv2").sum().backward()
    assert sum(s.op in ("conv2d", "conv2d_relu") for s in t.steps) == 2


def test_unknown_layer_lists_the_valid_names(reference):
    with pytest.raises(
        ValueError, match=r"unknown VGG16 layer 'block6_conv1'.*block1_conv1.*block5_pool"
    ):
        reference[0](Tensor(np.zeros((1, 3, 8, 8), dtype=np.float32)), until="block6_conv1")


def test_bad_input_shape(reference):
    with pytest.raises(tg.ShapeError, match=r"\(N, 3, H, W\)"):
        reference[0](Tensor(np.zeros((1, 4, 8, 8), dtype=np.float32)))


# ----------------------------------------------------------------------------- bad files
def test_missing_layer_names_layer_and_file(files, reference, tmp_path):
    model, state = reference
    layers = keras_layers(state, model)
    del layers["block5_conv3"]
    path = write_keras_legacy(tmp_path / "partial.h5", layers)
    with pytest.raises(WeightsError, match=r"partial\.h5.*block5_conv3"):
        vgg16(path)


def test_wrong_shape_names_layer_and_both_shapes(reference, tmp_path):
    model, state = reference
    layers = keras_layers(state, model)
    layers["block3_conv2"][0] = np.zeros((3, 3, 128, 256), np.float32)
    path = write_keras_legacy(tmp_path / "wrong.h5", layers)
    with pytest.raises(
        WeightsError, match=r"wrong\.h5.*block3_conv2.*\(256, 128, 3, 3\).*\(256, 256, 3, 3\)"
    ):
        vgg16(path)


def test_other_architecture_is_refused(tmp_path):
    path = write_zip(
        {"layer1.0.conv1.weight": np.zeros((64, 64, 3, 3), np.float32)}, tmp_path / "resnet.pth"
    )
    with pytest.raises(WeightsError, match=r"resnet\.pth.*block1_conv1.*layer1\.0\.conv1\.weight"):
        vgg16(path)


def test_truncated_and_foreign_files(files, tmp_path):
    data = files["keras_legacy"].read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"truncated\.h5"):
        vgg16(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("not weights at all\n" * 10)
    with pytest.raises(WeightsError, match=r"notes\.txt.*not a recognised weights file"):
        vgg16(text)


# ----------------------------------------------------------------------------- input spaces
def test_keras_preprocessing_is_bgr_minus_the_mean_pixel():
    model = VGG16(input_space="caffe")
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    x = model.preprocess(red)
    assert x.shape == (1, 3, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x.data[0, :, 0, 0], [-103.939, -116.779, 255 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(model.deprocess(x), red, atol=1e-4)


def test_torchvision_preprocessing_is_rgb_standardised():
    model = VGG16(input_space="torch")
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3)).astype(np.uint8)
    x = model.preprocess(images)
    expected = (images / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(x.data, expected.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.deprocess(x), images, atol=1e-3)


# ----------------------------------------------------------------------------- references
def _naive_features(
    x: np.ndarray, state: dict[str, np.ndarray], model: VGG16, until: str
) -> np.ndarray:
    """An independent float64 reference: sliding windows and einsum, no im2col, no Winograd."""
    x = x.astype(np.float64)
    for name, (module, _) in model.keras_layers.items():
        if "_conv" in name:
            padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
            x = np.einsum(
                "nchwij,kcij->nkhw", windows, state[f"{module}.weight"].astype(np.float64)
            )
            x = np.maximum(x + state[f"{module}.bias"][None, :, None, None], 0)
        else:
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        if name == until:
            return x
    raise AssertionError(until)


@pytest.mark.skipif(not REAL_WEIGHTS.exists(), reason="real VGG16 weights not in ../shared/weights")
def test_real_imagenet_weights_match_an_independent_reference():
    model = vgg16(REAL_WEIGHTS)
    np.testing.assert_allclose(
        model.features[0].bias.data[:4], [0.73429835, 0.09340367, 0.06775674, 0.8862966]
    )
    rng = np.random.default_rng(0)
    image = model.preprocess(rng.integers(0, 256, (1, 32, 32, 3)).astype(np.uint8))
    ours = model(image, until="block5_conv3").data
    reference = _naive_features(image.data, model.state_dict(), model, "block5_conv3")
    assert (reference > 0).any()
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-3 * np.abs(reference).max())


def _torch_features(model: VGG16, until: str):
    torch = pytest.importorskip("torch")
    layers = []
    for module in model.features:
        if isinstance(module, tg.nn.Conv2d):
            conv = torch.nn.Conv2d(module.in_channels, module.out_channels, 3, padding=1)
            conv = conv.to(torch.float64 if module.weight.dtype == np.float64 else torch.float32)
            conv.weight.data = torch.from_numpy(module.weight.data.copy())
            conv.bias.data = torch.from_numpy(module.bias.data.copy())
            layers.append(conv)
        elif isinstance(module, tg.nn.ReLU):
            layers.append(torch.nn.ReLU())
        else:
            layers.append(torch.nn.MaxPool2d(2))
    return torch, torch.nn.Sequential(*layers[: model.keras_layers[until][1] + 1])


@pytest.mark.parametrize("source", ["random-float64", "real-float32"])
def test_activations_and_input_gradients_agree_with_pytorch(source, reference):
    """float64 on random weights checks the algorithm to rounding error; float32 on the real
    weights checks the production path (where ReLU boundaries may flip on rounding)."""
    if source.startswith("real") and not REAL_WEIGHTS.exists():
        pytest.skip("real VGG16 weights not in ../shared/weights")
    model = vgg16(REAL_WEIGHTS) if source.startswith("real") else vgg16(rng=1)
    dtype = np.float64 if source.endswith("64") else np.float32
    for parameter in model.parameters():
        parameter.data = parameter.data.astype(dtype)
    torch, net = _torch_features(model, "block5_conv3")
    x = model.preprocess(np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8))
    x = Tensor(x.data.astype(dtype), requires_grad=True)
    ours = model(x, until="block5_conv3")
    xt = torch.from_numpy(x.data.copy()).requires_grad_(True)
    theirs = net(xt)
    tolerance = 1e-9 if dtype == np.float64 else 2e-3
    scale = float(theirs.detach().abs().max())
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), atol=tolerance * scale)
    weights = np.random.default_rng(2).standard_normal(ours.shape).astype(dtype)
    (gx,) = tg.grad(ours, [x], grad_outputs=Tensor(weights))
    (gxt,) = torch.autograd.grad(theirs, [xt], torch.from_numpy(weights))
    g_scale = float(gxt.abs().max())
    assert g_scale > 0
    np.testing.assert_allclose(gx.data, gxt.numpy(), atol=tolerance * g_scale)


@pytest.mark.slow
def test_classifier_loads_from_keras_and_torchvision_layouts_alike(tmp_path):
    """fc1 reads the flattened 7x7x512 map: Keras in (h, w, c) order, torchvision in (c, h, w).

    The full model with its top is 138M parameters: each loaded model is compared and dropped
    before the next is loaded, and each file deleted once read."""
    rng = np.random.default_rng(3)
    top = VGG16(include_top=True, initialise=False)
    state = {}
    for key, parameter in top.named_parameters():
        state[key] = rng.random(parameter.shape, dtype=np.float32)
        state[key] -= 0.5
    layers = keras_layers(state, top)
    del top
    fc1 = (
        state["classifier.0.weight"]
        .reshape(4096, 512, 7, 7)
        .transpose(0, 2, 3, 1)
        .reshape(4096, -1)
    )
    layers["fc1"] = [fc1.T, state["classifier.0.bias"]]
    layers["fc2"] = [state["classifier.3.weight"].T, state["classifier.3.bias"]]
    layers["predictions"] = [state["classifier.6.weight"].T, state["classifier.6.bias"]]
    keras_file = write_keras_legacy(tmp_path / "top.h5", layers)
    del layers, fc1
    for path in (keras_file, write_zip(state, tmp_path / "top.pth")):
        model = vgg16(path)
        path.unlink()
        loaded = dict(model.named_parameters())
        for key, value in state.items():  # exact equality (and shape), key by key
            assert np.array_equal(loaded[key].data, value), (path.name, key)
    x = Tensor(rng.standard_normal((1, 3, 224, 224)).astype(np.float32))
    logits = model(x)  # the torchvision-loaded model
    assert logits.shape == (1, 1000)
    assert model(x, until="fc2").shape == (1, 4096)
    with pytest.raises(tg.ShapeError, match="7x7"):
        model(Tensor(np.zeros((1, 3, 64, 64), np.float32)))


@pytest.mark.skipif(not REAL_WEIGHTS.exists(), reason="real VGG16 weights not in ../shared/weights")
def test_named_weights_come_from_the_cache(tmp_path, monkeypatch):
    """A cached file whose bytes pass the published hash is used without the network. (The
    workspace's copy holds the canonical arrays but was written anew, so its md5 differs from
    Keras's file: the test publishes the copy's own md5.)"""
    import hashlib
    import shutil

    from tinygrad_edu.io import download

    shutil.copyfile(REAL_WEIGHTS, tmp_path / REAL_WEIGHTS.name)
    md5 = hashlib.md5(REAL_WEIGHTS.read_bytes(), usedforsecurity=False).hexdigest()
    offline = download.RemoteFile("http://127.0.0.1:9/" + REAL_WEIGHTS.name, REAL_WEIGHTS.name, md5)
    monkeypatch.setitem(download.KNOWN, "keras", offline)
    monkeypatch.setenv("TINYGRAD_EDU_CACHE", str(tmp_path))
    model = vgg16("keras")
    assert model.input_space == "caffe" and len(model.conv_layer_names) == 13


def test_named_weights_offline_say_how_to_use_a_local_file(tmp_path, monkeypatch):
    from tinygrad_edu.io import download

    monkeypatch.setenv("TINYGRAD_EDU_CACHE", str(tmp_path))
    offline = download.RemoteFile(
        "http://127.0.0.1:9/vgg16-397923af.pth", "vgg16-397923af.pth", sha256_prefix="397923af"
    )
    monkeypatch.setitem(download.KNOWN, "torchvision", offline)
    with pytest.raises(
        download.DownloadError,
        match=r"127\.0\.0\.1:9/vgg16-397923af\.pth.*weights='/path/to/vgg16-397923af\.pth'",
    ):
        vgg16("torchvision")
    assert list(tmp_path.iterdir()) == []
