"""Fuzzing the loaders: genuine small files of every format, mutated byte by byte.

Whatever the damage, loading must either succeed with numeric arrays or raise the project's own
error (:class:`WeightsError`, :class:`CheckpointError`) -- never another exception -- and must not
allocate far beyond the file's size (measured with ``tracemalloc``, which sees NumPy's buffers).
``HYPOTHESIS_PROFILE=thorough`` explores 500 mutations per format instead of the CI profile's 20.
"""

from __future__ import annotations

import math
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.keras_writer import write_keras3, write_keras_legacy
from tests.pth_writer import write_legacy
from tinygrad_edu.io.checkpoint import CheckpointError, load
from tinygrad_edu.io.errors import WeightsError
from tinygrad_edu.io.weights import read_weights

FIXTURES = Path(__file__).parent / "fixtures"
STATE = {
    "conv.weight": np.linspace(-1, 1, 54, dtype=np.float32).reshape(2, 3, 3, 3),
    "conv.bias": np.array([0.5, -0.25]),
    "steps": np.array(7),
}


def _genuine(kind: str, directory: Path) -> bytes:
    """The bytes of a small genuine file of ``kind``."""
    path = directory / kind
    if kind in ("tiny_zip.pth", "tiny_legacy.pth"):  # written by PyTorch itself
        return (FIXTURES / kind).read_bytes()
    if kind == "writer_legacy.pth":
        write_legacy(STATE, path)
    elif kind == "keras_legacy.h5":
        pytest.importorskip("h5py")
        write_keras_legacy(path, {"c1": [STATE["conv.weight"], STATE["conv.bias"]], "pool": []})
    elif kind == "keras3.h5":
        pytest.importorskip("h5py")
        write_keras3(path, {"c1": [STATE["conv.weight"], STATE["conv.bias"]]})
    elif kind == "tensors.safetensors":
        safetensors_numpy = pytest.importorskip("safetensors.numpy")
        safetensors_numpy.save_file(STATE, str(path))
    elif kind == "stored.npz":
        np.savez(path, **STATE)
    elif kind == "deflated.npz":
        np.savez_compressed(path, **STATE)
    return path.read_bytes()


KINDS = [
    "tiny_zip.pth",
    "tiny_legacy.pth",
    "writer_legacy.pth",
    "keras_legacy.h5",
    "keras3.h5",
    "tensors.safetensors",
    "stored.npz",
    "deflated.npz",
]
# deflate may legitimately expand up to 1032x; every other format is read without expansion
EXPANSION = {"deflated.npz": 1100}


def _mutations(size: int):
    edits = st.lists(
        st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=8
    )
    return st.tuples(edits, st.one_of(st.none(), st.integers(0, size)))


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def _apply(original: bytes, mutation) -> bytes:
    edits, cut = mutation
    data = bytearray(original)
    for position, value in edits:
        data[position] = value
    return bytes(data if cut is None else data[:cut])


def _check_bounded_load(path: Path, size: int, kind: str, loader) -> None:
    tracemalloc.start()
    try:
        try:
            result = loader(path)
        except (WeightsError, CheckpointError):
            result = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if result is not None:
        arrays = result[1] if isinstance(result, tuple) else result
        assert all(isinstance(a, np.ndarray) and a.dtype.kind in "biufc" for a in arrays.values())
    limit = EXPANSION.get(kind, 8) * size + (1 << 20)  # + 1 MiB of interpreter overhead
    assert peak <= limit, f"{kind}: loading a {size}-byte file allocated {peak} bytes"


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_files_load_or_raise_our_error(kind, workdir):
    original = _genuine(kind, workdir)
    read_weights_path = workdir / f"mutated-{kind}"

    @given(_mutations(len(original)))
    def check(mutation):
        data = _apply(original, mutation)
        read_weights_path.write_bytes(data)
        loaders = [read_weights]
        if kind.endswith(".npz"):
            loaders.append(load)
        for loader in loaders:
            _check_bounded_load(read_weights_path, len(data), kind, loader)

    check()


@pytest.mark.parametrize("kind", ["tiny_zip.pth", "stored.npz"])
def test_mutated_zip_directories(kind, workdir):
    """Aim at the zip structure itself: sizes, offsets and names in the central directory."""
    original = _genuine(kind, workdir)
    directory_start = original.find(b"PK\x01\x02")  # the central directory's first entry
    assert directory_start > 0
    path = workdir / f"directory-{kind}"
    span = len(original) - directory_start

    @given(
        st.lists(st.tuples(st.integers(0, span - 1), st.integers(0, 255)), min_size=1, max_size=4)
    )
    def check(edits):
        data = bytearray(original)
        for offset, value in edits:
            data[directory_start + offset] = value
        path.write_bytes(bytes(data))
        _check_bounded_load(path, len(data), kind, read_weights)

    check()


# ----------------------------------------------------------------------------- .npy headers
def _npy_member(header: str, data: bytes) -> bytes:
    """A version 1.0 ``.npy`` file with ``header`` (any text) padded as NumPy pads it."""
    text = header.encode("latin1", errors="replace")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


_SIZES = st.one_of(
    st.integers(0, 4),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, -1]),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.none(),
)
_SHAPES = st.one_of(
    st.lists(_SIZES, max_size=6).map(tuple),
    st.lists(st.integers(0, 2), min_size=60, max_size=70).map(tuple),  # around NumPy's 64
    st.lists(st.sampled_from([0, 1, 2**64, 2**63]), min_size=1, max_size=4).map(tuple),
    st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=3)),
)
_DESCRS = st.one_of(
    st.sampled_from(["<f8", ">f4", "|b1", "<i8", "<c16", "<u2", "|u1", "<f2"]),
    st.sampled_from(["|O", "<U3", "|S2", "|V8", "<M8[s]", "zz", "", "<f3"]),
    st.just([("a", "<f8")]),
    st.just(("<f8", (2,))),
    st.integers(),
    st.none(),
)
_ORDERS = st.one_of(st.booleans(), st.integers(-1, 2), st.none(), st.text(max_size=2))


@st.composite
def _npy_headers(draw):
    """A header (dict text, sometimes damaged) and data: exactly as long as it declares, or not."""
    header = {"descr": draw(_DESCRS), "fortran_order": draw(_ORDERS), "shape": draw(_SHAPES)}
    keys = draw(st.sets(st.sampled_from(list(header)), min_size=2))  # sometimes one is missing
    text = repr({k: header[k] for k in header if k in keys} | draw(st.sampled_from([{}, {"x": 1}])))
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]  # a truncated header
    size = None
    try:
        shape, dtype = header["shape"], np.dtype(header["descr"])
        if all(type(n) is int and 0 <= n <= 50 for n in shape) and math.prod(shape) <= 1000:
            size = math.prod(shape) * dtype.itemsize
    except (TypeError, ValueError):
        pass
    length = (
        draw(st.integers(0, 64)) if size is None else size + draw(st.sampled_from([0, 0, -1, 1]))
    )
    return text, bytes(max(length, 0))


@given(_npy_headers())
def test_npy_headers_load_as_declared_or_raise_our_error(workdir, header):
    """Impossible shapes (negative, bools, 65 axes, 2**64 beside a zero), damaged descriptors and
    orders, truncated data: each is the loader's own error, never NumPy's."""
    text, data = header
    path = workdir / "header.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", _npy_member(text, data))
    for loader, error in ((load, CheckpointError), (read_weights, WeightsError)):
        try:
            result = loader(path)
        except error:
            continue
        arrays = result[1] if isinstance(result, tuple) else result
        assert arrays["w"].nbytes == len(data) and arrays["w"].dtype.kind in "biufc"
