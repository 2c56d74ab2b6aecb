"""Weight files: every format read without a framework; bad and malicious files refused."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.keras_writer import write_keras3, write_keras_legacy
from tests.pth_writer import write_legacy, write_zip
from tinygrad_edu.io.errors import WeightsError
from tinygrad_edu.io.keras_h5 import read_keras_h5
from tinygrad_edu.io.pth import read_pth
from tinygrad_edu.io.weights import detect_format, read_weights

FIXTURES = Path(__file__).parent / "fixtures"
h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "tiny_expected.npz") as archive:
        return {k: archive[k] for k in archive.files}


# ----------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("name", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_files_written_by_pytorch_read_exactly(name, expected):
    arrays = read_pth(FIXTURES / name)
    assert list(arrays) == list(expected)
    for key, value in expected.items():
        assert arrays[key].dtype == value.dtype and arrays[key].shape == value.shape, key
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)


@pytest.mark.parametrize("writer", [write_zip, write_legacy])
def test_test_writer_produces_what_pytorch_reads(writer, tmp_path):
    torch = pytest.importorskip("torch")
    state = {
        "w": np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32),
        "n": np.array(3),
    }
    path = writer(state, tmp_path / "w.pth")
    loaded = torch.load(path, weights_only=True)
    for key, value in state.items():
        assert isinstance(loaded[key], torch.Tensor) and loaded[key].shape == value.shape
        np.testing.assert_array_equal(loaded[key].numpy(), value)
        np.testing.assert_array_equal(read_pth(path)[key], value)


def _malicious_pickle(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    return pickle.dumps({"weight": Payload()}, protocol=2)


def test_malicious_zip_pth_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", _malicious_pickle(marker))
    with pytest.raises(WeightsError, match=r"refused to load '(posix|os|nt)\.system'"):
        read_pth(path)
    assert not marker.exists()


def test_malicious_legacy_pth_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as out:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            out.write(pickle.dumps(header, protocol=2))
        out.write(_malicious_pickle(marker))
    with pytest.raises(WeightsError, match="refused to load"):
        read_weights(path)
    assert not marker.exists()


def test_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    path = write_zip({"w": np.zeros(4, dtype=np.float32)}, tmp_path / "w.pth")
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members["archive/data/0"] = members["archive/data/0"][:8]  # storage now holds 2, not 4
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(WeightsError, match=r"truncated|outside"):
        read_pth(path)


@pytest.mark.parametrize("name", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_truncated_pth_names_the_file(name, tmp_path):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=name):
        read_weights(path)


# ----------------------------------------------------------------------------- Keras
@pytest.mark.parametrize("writer", [write_keras_legacy, write_keras3])
def test_keras_layouts(writer, tmp_path):
    kernel, bias = np.ones((3, 3, 2, 4), np.float32), np.arange(4, dtype=np.float32)
    path = writer(tmp_path / "k.h5", {"block1_conv1": [kernel, bias], "block1_pool": []})
    assert detect_format(path) == "keras_h5"
    arrays = read_keras_h5(path)
    assert set(arrays) == {"block1_conv1/0", "block1_conv1/1"}
    np.testing.assert_array_equal(arrays["block1_conv1/1"], bias)


def test_hdf5_without_keras_weights(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError, match="without Keras weights"):
        read_weights(tmp_path / "other.h5")


# ----------------------------------------------------------------------------- others
def test_npz_and_safetensors(tmp_path):
    state = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2)}
    np.savez(tmp_path / "s.npz", **state)
    from safetensors.numpy import save_file

    save_file(state, str(tmp_path / "s.safetensors"))
    for name, kind in (("s.npz", "npz"), ("s.safetensors", "safetensors")):
        found, arrays = read_weights(tmp_path / name)
        assert found == kind
        for key, value in state.items():
            np.testing.assert_array_equal(arrays[key], value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"hello, I am a text file\n" * 3, "not a recognised weights file")],
)
def test_not_a_weights_file(tmp_path, content, message):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        read_weights(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no weights file"):
        read_weights("/nonexistent/vgg.h5")


def test_recipe_bounds_are_checked_before_any_read():
    from tinygrad_edu.io import pth
    from tinygrad_edu.io.unpickler import BadArguments

    storage = pth._Storage("0", pth._StorageType("FloatStorage"), 4)  # no bytes attached yet
    with pytest.raises(BadArguments, match="reaches element 4 of storage 0, which has 4"):
        pth._rebuild_tensor(storage, 1, (2, 2), (2, 1))
