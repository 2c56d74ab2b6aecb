"""Hostile weight files, built here byte by byte: nothing runs, leaks, explodes or carries over.

Each test builds its attack in ``tmp_path`` and asserts the loader's named error, that no marker
file appeared (for code-execution attempts), that peak memory stays within a small multiple of
the file's size (``tracemalloc`` sees NumPy's buffers), and -- for attacks whose cost would be
exponential or unbounded -- that loading returns at all (a hang detector with a generous limit,
not a speed test).
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import threading
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.pth_writer import write_zip
from tinygrad_edu.io.errors import WeightsError
from tinygrad_edu.io.pth import LEGACY_MAGIC, read_pth
from tinygrad_edu.io.weights import read_weights

FIXTURES = Path(__file__).parent / "fixtures"
MiB = 1 << 20


# ----------------------------------------------------------------------------- helpers
def _bounded(load, path: Path, factor: int = 4):
    """Run ``load(path)`` in a thread; it must finish, and peak memory stay within bounds."""
    outcome: dict = {}

    def run():
        tracemalloc.start()
        try:
            outcome["value"] = load(path)
        except BaseException as err:  # handed back to the test thread
            outcome["error"] = err
        finally:
            outcome["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), f"loading {path.name} did not return (a hang)"
    limit = factor * path.stat().st_size + MiB
    assert outcome["peak"] <= limit, f"{path.name}: peak {outcome['peak']} > {limit} bytes"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class P:
    """A tiny pickle assembler: each method returns the bytes of one construct."""

    @staticmethod
    def glob(module: str, name: str) -> bytes:
        return pickle.GLOBAL + f"{module}\n{name}\n".encode()

    @staticmethod
    def text(s: str) -> bytes:
        raw = s.encode()
        return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw

    @staticmethod
    def integer(n: int) -> bytes:
        if 0 <= n < 1 << 31:
            return pickle.BININT + struct.pack("<i", n)
        raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        return pickle.LONG1 + bytes([len(raw)]) + raw

    @staticmethod
    def tuple_(*items: bytes) -> bytes:
        return pickle.MARK + b"".join(items) + pickle.TUPLE

    @classmethod
    def storage(cls, key: str, numel: int | bytes, kind: str = "FloatStorage") -> bytes:
        count = numel if isinstance(numel, bytes) else cls.integer(numel)
        pid = cls.tuple_(
            cls.text("storage"), cls.glob("torch", kind), cls.text(key), cls.text("cpu"), count
        )
        return pid + pickle.BINPERSID

    @classmethod
    def tensor(cls, storage: bytes, size, stride, offset: int = 0) -> bytes:
        shape = cls.tuple_(*(cls.integer(n) for n in size))
        strides = cls.tuple_(*(cls.integer(s) for s in stride))
        hooks = cls.glob("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
        args = cls.tuple_(storage, cls.integer(offset), shape, strides, pickle.NEWFALSE, hooks)
        return cls.glob("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE

    @classmethod
    def state_dict(cls, **entries: bytes) -> bytes:
        body = b"".join(cls.text(k) + v for k, v in entries.items())
        return pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK + body + pickle.SETITEMS

    STOP = pickle.STOP


def _zip_pth(path: Path, pkl: bytes, storages: dict[str, bytes] | None = None, deflate=False):
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("archive/data.pkl", pkl + P.STOP)
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def _legacy_pth(path: Path, pkl: bytes, keys: list[str], storages: list[bytes]) -> Path:
    with open(path, "wb") as out:
        for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
            out.write(pickle.dumps(header, protocol=2))
        out.write(pkl + P.STOP)
        out.write(pickle.dumps(keys, protocol=2))
        for raw in storages:
            out.write(raw)
    return path


def _one_float_storage(key: str = "0", value: float = 1.5) -> dict[str, bytes]:
    return {key: np.array([value], "<f4").tobytes()}


# ----------------------------------------------------------------------------- code execution
def _exec_attempts(marker: Path) -> dict[str, bytes]:
    command = P.text(f"touch {marker}")
    system = P.glob("os", "system")
    return {
        "GLOBAL + REDUCE": system + P.tuple_(command) + pickle.REDUCE,
        "STACK_GLOBAL": P.text("os")
        + P.text("system")
        + pickle.STACK_GLOBAL
        + P.tuple_(command)
        + pickle.REDUCE,
        "INST": pickle.MARK + command + pickle.INST + b"os\nsystem\n",
        "OBJ": pickle.MARK + system + command + pickle.OBJ,
        "NEWOBJ": P.glob("subprocess", "Popen") + P.tuple_(command) + pickle.NEWOBJ,
        "builtins.eval": P.glob("builtins", "eval")
        + P.tuple_(P.text(f"open('{marker}', 'w')"))
        + pickle.REDUCE,
        "BUILD __setstate__": P.glob("collections", "OrderedDict")
        + pickle.EMPTY_TUPLE
        + pickle.REDUCE
        + P.tuple_(P.text("x"))
        + pickle.BUILD,
        "stand-in called with a payload": P.glob("torch._utils", "_rebuild_parameter")
        + P.tuple_(system)
        + pickle.REDUCE,
    }


@pytest.mark.parametrize("attempt", list(_exec_attempts(Path("m"))))
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_code_execution_attempts_are_refused(attempt, layout, tmp_path):
    marker = tmp_path / "pwned"
    pkl = P.state_dict(weight=_exec_attempts(marker)[attempt])
    path = tmp_path / "evil.pth"
    if layout == "zip":
        _zip_pth(path, pkl)
    else:
        _legacy_pth(path, pkl, [], [])
    with pytest.raises(WeightsError, match=r"evil\.pth"):
        read_weights(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- shared state
def test_build_onto_a_stand_in_cannot_corrupt_later_loads(tmp_path):
    storage_global = P.glob("torch", "FloatStorage")
    state = pickle.EMPTY_DICT + P.text("name") + P.text("HalfStorage") + pickle.SETITEM
    for attack, message in [
        (storage_global + state + pickle.BUILD, "BUILD on a _StorageType"),
        (storage_global + P.text("name") + P.text("x") + pickle.SETITEM, "SETITEM on a _Stor"),
        (P.glob("torch._utils", "_rebuild_tensor_v2") + state + pickle.BUILD, "BUILD on a func"),
        (storage_global + pickle.EMPTY_LIST + pickle.APPEND, "APPEND on a _StorageType"),
    ]:
        path = _zip_pth(tmp_path / "poison.pth", P.state_dict(x=attack))
        with pytest.raises(WeightsError, match=message):
            read_pth(path)
    genuine = read_pth(FIXTURES / "tiny_zip.pth")
    assert genuine["conv.weight"].dtype == np.float32
    with np.load(FIXTURES / "tiny_expected.npz") as expected:
        np.testing.assert_array_equal(genuine["conv.weight"], expected["conv.weight"])


def test_loaded_arrays_are_private_to_each_load(tmp_path):
    first, second = read_pth(FIXTURES / "tiny_zip.pth"), read_pth(FIXTURES / "tiny_zip.pth")
    assert not np.shares_memory(first["conv.weight"], second["conv.weight"])
    with pytest.raises(ValueError, match="read-only"):
        first["row"][0] = 99.0  # views of a shared storage cannot be scribbled on
    copy = np.array(first["row"])
    copy[0] = 99.0
    assert read_pth(FIXTURES / "tiny_zip.pth")["row"][0] != 99.0


# ----------------------------------------------------------------------------- amplification
def test_exponential_nesting_costs_nothing(tmp_path):
    """``x = (x, x)`` 200 times: 2**200 leaves if anything walked, hashed or compared it."""
    x = pickle.BINGET + b"\x00"
    nested = pickle.EMPTY_TUPLE + pickle.BINPUT + b"\x00" + pickle.POP
    nested += (x + x + pickle.TUPLE2 + pickle.BINPUT + b"\x00" + pickle.POP) * 200 + x
    pkl = P.state_dict(w=P.tensor(P.storage("0", 1), (1,), (1,)), junk=nested)
    path = _zip_pth(tmp_path / "nested.pth", pkl, _one_float_storage())
    assert list(_bounded(read_pth, path)) == ["w"]
    as_key = P.state_dict() + nested + P.integer(1) + pickle.SETITEM  # a (x, x) dict key
    path = _zip_pth(tmp_path / "nested_key.pth", as_key)
    with pytest.raises(WeightsError, match="dict key that is a tuple"):
        _bounded(read_pth, path)


def test_one_tensor_referenced_1024_times_is_stored_once(tmp_path):
    elements = 64 * 1024  # 256 KiB of storage; 1024 copies would be 256 MiB
    tensor = P.tensor(P.storage("0", elements), (elements,), (1,)) + pickle.BINPUT + b"\x07"
    refs = b"".join(P.text(f"t{i}") + pickle.BINGET + b"\x07" for i in range(1, 1024))
    pkl = P.state_dict(t0=tensor)[:-1] + refs + pickle.SETITEMS
    path = _zip_pth(tmp_path / "refs.pth", pkl, {"0": np.ones(elements, "<f4").tobytes()})
    arrays = _bounded(read_pth, path)
    assert len(arrays) == 1024 and all(a.shape == (elements,) for a in arrays.values())


def test_stride_zero_tensor_is_a_view_not_a_gigabyte(tmp_path):
    pkl = P.state_dict(w=P.tensor(P.storage("0", 1), (1 << 15, 1 << 15), (0, 0)))
    path = _zip_pth(tmp_path / "expand.pth", pkl, _one_float_storage())
    w = _bounded(read_pth, path)["w"]
    assert w.shape == (1 << 15, 1 << 15) and w[12345, 999] == 1.5 and not w.flags.writeable


def test_zip_member_far_larger_than_its_storage_is_refused_unread(tmp_path):
    pkl = P.state_dict(w=P.tensor(P.storage("0", 1), (1,), (1,)))
    path = _zip_pth(tmp_path / "inflate.pth", pkl, {"0": bytes(32 * MiB)}, deflate=True)
    assert path.stat().st_size < 100_000
    with pytest.raises(WeightsError, match=r"'archive/data/0' holds 33554432 bytes but 4 are"):
        _bounded(read_pth, path)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_storage_declaring_2_to_the_40_elements_is_refused(layout, tmp_path):
    pkl = P.state_dict(w=P.tensor(P.storage("0", 1 << 40), (4,), (1,)))
    if layout == "zip":
        path = _zip_pth(tmp_path / "huge.pth", pkl, {"0": bytes(16)})
    else:
        path = _legacy_pth(tmp_path / "huge.pth", pkl, ["0"], [(1 << 40).to_bytes(8, "little")])
    with pytest.raises(WeightsError, match=r"storage '0' declares 1099511627776 elements"):
        _bounded(read_pth, path)


def test_legacy_storage_count_beyond_the_file_is_refused(tmp_path):
    pkl = P.state_dict(w=P.tensor(P.storage("0", 4), (4,), (1,)))
    count = (1 << 40).to_bytes(8, "little")
    path = _legacy_pth(tmp_path / "count.pth", pkl, ["0"], [count + bytes(16)])
    with pytest.raises(WeightsError, match=r"declares 1099511627776 elements .* remain"):
        _bounded(read_pth, path)


# ----------------------------------------------------------------------------- malformed pickles
MALFORMED = {
    "storage is an int": (
        P.glob("torch._utils", "_rebuild_tensor_v2")
        + P.tuple_(P.integer(5), P.integer(0), P.tuple_(), P.tuple_())
        + pickle.REDUCE,
        "the storage is 5",
    ),
    "infinite numel": (
        P.tensor(P.storage("0", pickle.BINFLOAT + struct.pack(">d", float("inf"))), (1,), (1,)),
        "element count of storage '0' is inf",
    ),
    "stride 2**70": (
        P.tensor(P.storage("0", 1), (2,), (1 << 70,)),
        "the stride is an integer of 71 bits",
    ),
    "negative size": (P.tensor(P.storage("0", 1), (-1,), (1,)), "the size is -1"),
    "offset beyond storage": (
        P.tensor(P.storage("0", 1), (1,), (1,), offset=1),
        "reaches element 1 of storage 0",
    ),
    "size and stride differ": (P.tensor(P.storage("0", 1), (1, 1), (1,)), "differ in length"),
    "REDUCE on a storage type": (
        P.glob("torch", "FloatStorage") + pickle.EMPTY_TUPLE + pickle.REDUCE,
        "not an allowed function",
    ),
    "arguments not a tuple": (
        P.glob("collections", "OrderedDict") + pickle.EMPTY_LIST + pickle.REDUCE,
        "not a tuple",
    ),
    "OrderedDict from pairs": (
        P.glob("collections", "OrderedDict") + P.tuple_(pickle.EMPTY_LIST) + pickle.REDUCE,
        "OrderedDict with arguments",
    ),
    "persistent id not a tuple": (P.integer(3) + pickle.BINPERSID, "not \\('storage'"),
    "storage key not a string": (
        P.tuple_(
            P.text("storage"),
            P.glob("torch", "FloatStorage"),
            P.integer(0),
            P.text("cpu"),
            P.integer(1),
        )
        + pickle.BINPERSID,
        "storage key 0 is not a string",
    ),
    "storage without data member": (
        P.tensor(P.storage("9", 1), (1,), (1,)),
        "no data/9 member",
    ),
    "memo entry never stored": (pickle.BINGET + b"\x05", "memo entry 5"),
    "stack underflow": (pickle.TUPLE2, "the stack is empty"),
    "unsupported opcode": (pickle.PERSID + b"x\n", "unsupported pickle instruction 0x50"),
    "string longer than the file": (pickle.BINUNICODE + struct.pack("<I", 1 << 31), "needs"),
    "invalid UTF-8": (pickle.SHORT_BINUNICODE + b"\x02\xff\xfe", "not valid utf-8"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_pickles_raise_weights_error(case, tmp_path):
    attack, message = MALFORMED[case]
    path = _zip_pth(tmp_path / "bad.pth", P.state_dict(w=attack), _one_float_storage())
    with pytest.raises(WeightsError, match=message) as caught:
        _bounded(read_pth, path)
    assert "bad.pth" in str(caught.value)


def test_deep_and_cyclic_structures_are_harmless(tmp_path):
    deep = pickle.EMPTY_LIST * 100_000 + pickle.APPEND * 99_999  # 100k nested lists
    cyclic = pickle.EMPTY_LIST + pickle.BINPUT + b"\x09" + pickle.BINGET + b"\x09" + pickle.APPEND
    pkl = P.state_dict(w=P.tensor(P.storage("0", 1), (1,), (1,)), deep=deep, cyclic=cyclic)
    path = _zip_pth(tmp_path / "deep.pth", pkl, _one_float_storage())
    assert list(_bounded(read_pth, path, factor=64)) == ["w"]
    path = _zip_pth(tmp_path / "deep_top.pth", deep)
    with pytest.raises(WeightsError, match="holds a list, not a state dict"):
        _bounded(read_pth, path, factor=64)


def test_pickles_that_are_not_state_dicts(tmp_path):
    for pkl, message in [
        (P.integer(3), "holds 3, not a state dict"),
        (P.state_dict(a=P.integer(1)), "holds no tensors"),
        (
            pickle.PROTO
            + b"\x02"
            + pickle.EMPTY_DICT
            + P.integer(1)
            + P.tensor(P.storage("0", 1), (1,), (1,))
            + pickle.SETITEM,
            "a tensor is stored under 1",
        ),
    ]:
        path = _zip_pth(tmp_path / "odd.pth", pkl, _one_float_storage())
        with pytest.raises(WeightsError, match=message):
            read_pth(path)


# ----------------------------------------------------------------------------- HDF5
h5py = pytest.importorskip("h5py")


def _keras(path: Path, layers: dict[str, list]) -> Path:
    from tests.keras_writer import write_keras_legacy

    return write_keras_legacy(path, layers)


def test_hdf5_external_storage_never_reads_other_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 4)
    path = tmp_path / "external.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv"]
        group = f.create_group("conv")
        group.attrs["weight_names"] = [b"kernel"]
        group.create_dataset("kernel", shape=(32,), dtype="u1", external=[(str(secret), 0, 128)])
    with pytest.raises(WeightsError, match=r"external file.*refused") as caught:
        read_weights(path)
    assert "root:x" not in str(caught.value)


@pytest.mark.parametrize("link", ["external", "soft"])
def test_hdf5_links_are_not_followed(link, tmp_path):
    other = _keras(tmp_path / "other.h5", {"conv": [np.ones(3, np.float32)]})
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv"]
        f.create_group("real")
        f["conv"] = (
            h5py.ExternalLink(str(other), "/conv")
            if link == "external"
            else (h5py.SoftLink("/real"))
        )
    with pytest.raises(WeightsError, match=r"'conv' is a (External|Soft)Link.*not followed"):
        read_weights(path)


def test_hdf5_virtual_dataset_is_refused(tmp_path):
    other = tmp_path / "source.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.arange(4, dtype=np.float32))
    path = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(4,), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(4,))
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv"]
        group = f.create_group("conv")
        group.attrs["weight_names"] = [b"kernel"]
        group.create_virtual_dataset("kernel", layout)
    with pytest.raises(WeightsError, match="virtual"):
        read_weights(path)


@pytest.mark.parametrize("chunked", [False, True])
def test_hdf5_dataset_declaring_tebibytes_is_refused_unread(chunked, tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv"]
        group = f.create_group("conv")
        group.attrs["weight_names"] = [b"kernel"]
        group.create_dataset("kernel", shape=(1 << 40,), dtype="f4", chunks=chunked or None)
    with pytest.raises(WeightsError, match=r"declares shape \(1099511627776,\) .* occupies 0"):
        _bounded(read_weights, path)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda f: f.create_dataset("model_weights", data=3.0), "model_weights is a Dataset"),
        (lambda f: f.attrs.create("layer_names", [1, 2]), "layer_names of / is int64"),
        (lambda f: f.attrs.create("layer_names", b"conv"), r"of shape \(\)"),
        (lambda f: f.attrs.create("layer_names", [b"missing"]), "'missing' is missing"),
        (lambda f: f.attrs.create("layer_names", [b"a//b"]), "not a plain path"),
    ],
)
def test_malformed_keras_structure(build, message, tmp_path):
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        build(f)
    with pytest.raises(WeightsError, match=message):
        read_weights(path)


def test_string_weights_in_the_last_layer_are_refused_before_any_assignment(tmp_path):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"first", b"last"]
        for name in ("first", "last"):
            f.create_group(name).attrs["weight_names"] = [b"kernel"]
        f["first"].create_dataset("kernel", data=np.ones(3, np.float32))
        f["last"].create_dataset("kernel", data=np.array([b"a", b"b", b"c"]))
    with pytest.raises(WeightsError, match=r"/last/kernel holds \|S1"):
        read_weights(path)


def test_a_crashing_hdf5_parser_is_a_weights_error(tmp_path, monkeypatch):
    """The C library runs in a child process: its crash (fuzzing found one) cannot take us down."""
    from tinygrad_edu.io import keras_h5

    if os.name != "posix":
        pytest.skip("needs a POSIX shell to play a crashing interpreter")
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    monkeypatch.setattr(keras_h5, "_PYTHON", str(crashing))
    path = _keras(tmp_path / "k.h5", {"conv": [np.ones(3, np.float32)]})
    with pytest.raises(WeightsError, match=r"k\.h5: the HDF5 library failed .* status -11"):
        read_weights(path)


def test_a_hanging_hdf5_parser_is_stopped(tmp_path, monkeypatch):
    from tinygrad_edu.io import keras_h5

    if os.name != "posix":
        pytest.skip("needs a POSIX shell to play a hanging interpreter")
    hanging = tmp_path / "python"  # a stand-in for a parser stuck in a loop
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(keras_h5, "_PYTHON", str(hanging))
    monkeypatch.setattr(keras_h5, "PARSE_TIMEOUT", 0.5)
    path = _keras(tmp_path / "never.h5", {"conv": [np.ones(3, np.float32)]})
    with pytest.raises(WeightsError, match=r"never\.h5: parsing .* took over 0\.5 s"):
        keras_h5.read_keras_h5(path)


# ----------------------------------------------------------------------------- not regular files
def _special(kind: str, directory: Path) -> Path:
    """A path where ``kind`` lives: opening most of these for reading blocks or makes no sense."""
    if kind == "device":
        return Path(os.devnull)
    path = directory / kind
    if kind == "directory":
        path.mkdir()
    elif kind in ("fifo", "symlink to a fifo"):
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs os.mkfifo")
        os.mkfifo(directory / "pipe")
        if kind == "fifo":
            return directory / "pipe"
        path.symlink_to(directory / "pipe")
    elif kind == "socket":
        socket = pytest.importorskip("socket")
        if not hasattr(socket, "AF_UNIX"):
            pytest.skip("needs Unix sockets")
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(str(path))
        except OSError:
            pytest.skip("the temporary path is too long for a Unix socket")
        server.close()
    return path


def _loaders():
    from tinygrad_edu.io import keras_h5, weights
    from tinygrad_edu.io.npz import read_npz

    return {
        "tg.load": tg.load,
        "read_weights": read_weights,
        "read_pth": read_pth,
        "read_keras_h5": keras_h5.read_keras_h5,
        "read_npz": lambda path: read_npz(path, WeightsError),
        "safetensors": weights._read_safetensors,
    }


SPECIAL = ["fifo", "symlink to a fifo", "directory", "device", "socket"]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("loader", list(_loaders()))
def test_every_loader_refuses_what_is_not_a_regular_file(loader, kind, tmp_path):
    """A FIFO used to keep ``tg.load`` waiting forever; now every loader names what it found."""
    path = _special(kind, tmp_path)
    error = tg.CheckpointError if loader == "tg.load" else WeightsError
    described = {"fifo": "a FIFO", "symlink to a fifo": "a FIFO", "directory": "a directory"}
    described.update(device="a character device", socket="a socket")
    with pytest.raises(error, match=rf"is {described[kind]}.*not a regular file"):
        _bounded(_loaders()[loader], path)


@pytest.mark.parametrize("loader", list(_loaders()))
def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(
    loader, tmp_path, monkeypatch
):
    """The check by name can race with a rename: the open itself cannot block, and the open
    descriptor is checked again."""
    from tinygrad_edu.io import files

    path = _special("fifo", tmp_path)
    monkeypatch.setattr(files, "check_regular", lambda *args, **kwargs: None)
    error = tg.CheckpointError if loader == "tg.load" else WeightsError
    if loader == "read_keras_h5":  # the child process checks by itself
        from tinygrad_edu.io import keras_h5

        monkeypatch.setattr(keras_h5, "check_regular", lambda *args, **kwargs: None)
        error = WeightsError
    with pytest.raises(error, match="is a FIFO"):
        _bounded(_loaders()[loader], path)


# ----------------------------------------------------------------------------- npz, checkpoints
def test_npz_member_that_is_not_npy_is_refused(tmp_path):
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", _npy(np.ones(2)))
        archive.writestr("notes.txt", b"raw bytes")
    with pytest.raises(WeightsError, match="neither"):
        read_weights(path)
    with pytest.raises(tg.CheckpointError, match=r"raw\.npz: member 'notes.txt' is not a \.npy"):
        tg.load(path)


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def test_npz_header_declaring_tebibytes_is_refused_unread(tmp_path):
    genuine = _npy(np.zeros(2, "<f8"))  # magic, header length, header, 16 bytes of data
    huge = genuine.replace(b"(2,)", b"(1099511627776,)")
    huge = huge[:8] + struct.pack("<H", len(huge) - 10 - 16) + huge[10:]
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", huge)
    for load, error in ((lambda p: read_weights(p), WeightsError), (tg.load, tg.CheckpointError)):
        with pytest.raises(error, match=r"declares shape \(1099511627776,\).*holds 16 bytes"):
            _bounded(load, path)


@pytest.mark.parametrize(
    "shape, message",
    [
        ("(-1,)", r"holds -1, not a size"),
        ("(-1, -2)", r"holds -1, not a size"),
        ("(True,)", r"holds True, not a size"),
        ("(" + "1, " * 65 + ")", r"has 65 dimensions \(NumPy allows at most 64\)"),
        (f"({2**64}, 0)", r"larger than any array can be"),
        (f"({2**40}, {2**40})", r"larger than any array can be"),
        ("(1.0,)", r"no valid \.npy header \(shape is not valid"),
    ],
)
def test_npz_headers_with_impossible_shapes_are_our_error(shape, message, tmp_path):
    """NumPy's own errors used to escape from these (``reshape`` refused them)."""
    genuine = _npy(np.zeros(0, "<f8"))
    header = genuine[10:].replace(b"(0,)", shape.encode()).rstrip()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path = tmp_path / "shape.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", genuine[:8] + struct.pack("<H", len(header)) + header)
    for load, error in ((read_weights, WeightsError), (tg.load, tg.CheckpointError)):
        with pytest.raises(error, match=r"shape\.npz: member 'w\.npy' .*" + message):
            _bounded(load, path)


def test_npz_object_arrays_and_npy_files(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, evil=np.array([object()], dtype=object))
    with pytest.raises(WeightsError, match="holds dtype object"):
        read_weights(pickled)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(tg.CheckpointError, match=r"single\.npy is a single \.npy array"):
        tg.load(single)


@pytest.mark.parametrize(
    "key", ["allow_pickle", "file", "", "a/b", "../up", "x.npy", "ünï cödé", "args", "kwds"]
)
def test_checkpoint_keys_round_trip_whatever_their_names(key, tmp_path):
    state = {key: np.arange(3.0), "other": np.ones(2, np.int32)}
    loaded = tg.load(tg.save(state, tmp_path / "k.npz"))
    assert list(loaded) == [key, "other"]
    np.testing.assert_array_equal(loaded[key], state[key])
    with np.load(tmp_path / "k.npz") as archive:  # still an ordinary .npz for NumPy
        np.testing.assert_array_equal(archive[key], state[key])


def test_checkpoint_keys_that_no_zip_can_hold_are_refused(tmp_path):
    for key in ("a\x00b", "\udc80"):
        with pytest.raises(ValueError, match="save: key"):
            tg.save({key: np.ones(1)}, tmp_path / "k.npz")
    with pytest.raises(TypeError, match="not numbers"):
        tg.save({"s": np.array(["text"])}, tmp_path / "k.npz")
    assert not (tmp_path / "k.npz").exists()


# ----------------------------------------------------------------------------- safetensors
def test_safetensors_header_reaching_past_the_file(tmp_path):
    pytest.importorskip("safetensors")
    import json

    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 1 << 32]}})
    path = tmp_path / "lie.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(16))
    with pytest.raises(WeightsError, match=r"lie\.safetensors"):
        _bounded(read_weights, path)


def test_genuine_pytorch_writes_still_load(tmp_path):
    """The restrictions above must not reject anything ``torch.save`` writes for a state dict."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    state = model.state_dict()  # an OrderedDict carrying _metadata (pickled with BUILD)
    for legacy in (False, True):
        path = tmp_path / f"model-{legacy}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        arrays = read_pth(path)
        assert list(arrays) == list(state)
        for key, value in state.items():
            np.testing.assert_array_equal(arrays[key], value.numpy())
    checkpoint = {"state_dict": state, "epoch": 3, "optimizer": {"lr": 0.1, "steps": [1, 2]}}
    torch.save(checkpoint, tmp_path / "checkpoint.pth")
    assert set(read_pth(tmp_path / "checkpoint.pth")) == set(state)
    tied = collections.OrderedDict(a=state["0.weight"], b=state["0.weight"])
    torch.save(tied, tmp_path / "tied.pth")
    arrays = read_pth(tmp_path / "tied.pth")
    assert np.shares_memory(arrays["a"], arrays["b"])  # shared storage stays shared


def test_write_zip_helper_round_trips(tmp_path):
    path = write_zip({"w": np.arange(4, dtype=np.float32)}, tmp_path / "w.pth")
    np.testing.assert_array_equal(read_pth(path)["w"], np.arange(4))


@given(st.dictionaries(st.text(max_size=12), st.integers(0, 3), max_size=4))
def test_any_text_key_round_trips_or_is_refused_up_front(tmp_path_factory, keys):
    path = tmp_path_factory.mktemp("keys") / "k.npz"
    state = {key: np.full(size, 1.5) for key, size in keys.items()}
    storable = all("\x00" not in k and not any(0xD800 <= ord(c) <= 0xDFFF for c in k) for k in keys)
    if not storable:
        with pytest.raises(ValueError, match="save: key"):
            tg.save(state, path)
        assert not path.exists()
        return
    loaded = tg.load(tg.save(state, path))
    assert list(loaded) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value)
