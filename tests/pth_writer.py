"""Test support: write state dicts in PyTorch's real .pth layouts, without PyTorch.

Used to build full-size VGG16 files in the tests. ``test_weights_io`` checks that real
``torch.load`` reads what this writes (when PyTorch is installed), so it cannot drift from the
genuine format; the small fixtures in ``io/fixtures/`` were written by PyTorch itself.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
}


class _Global:
    """Pickles as GLOBAL '<module> <name>' without importing anything."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists that REDUCE callables are callable
        raise NotImplementedError


class _Storage:
    """Stands for a tensor's storage; the pickler turns it into a persistent id."""

    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, np.array(array, order="C")  # (ascontiguousarray makes 0-d 1-d)
        self.storage = _Storage(key, self.array)

    def __reduce__(self):
        stride = tuple(s // self.array.itemsize for s in self.array.strides)
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        return rebuild, (
            self.storage,
            0,
            self.array.shape,
            stride,
            False,
            collections.OrderedDict(),
        )


class _Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, legacy: bool) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def save_torch_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = save_torch_global

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            storage = _Global("torch", _STORAGE_NAMES[obj.array.dtype])
            pid = ("storage", storage, obj.key, "cpu", obj.array.size)
            return (*pid, None) if self.legacy else pid
        return None


def _pickle(obj, legacy: bool) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, legacy).dump(obj)
    return buffer.getvalue()


def _tensors(state: dict[str, np.ndarray]) -> collections.OrderedDict:
    return collections.OrderedDict(
        (k, _Tensor(str(i), v)) for i, (k, v) in enumerate(state.items())
    )


def write_zip(state: dict[str, np.ndarray], path: Path) -> Path:
    tensors = _tensors(state)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", _pickle(tensors, legacy=False))
        archive.writestr("archive/byteorder", "little")
        for t in tensors.values():
            archive.writestr(
                f"archive/data/{t.key}", t.array.astype(t.array.dtype.newbyteorder("<")).tobytes()
            )
        archive.writestr("archive/version", "3\n")
    return path


def write_legacy(state: dict[str, np.ndarray], path: Path) -> Path:
    tensors = _tensors(state)
    with open(path, "wb") as out:
        for header in (
            0x1950A86A20F9469CFC6C,
            1001,
            {"protocol_version": 1001, "little_endian": True},
        ):
            out.write(pickle.dumps(header, protocol=2))
        out.write(_pickle(tensors, legacy=True))
        out.write(pickle.dumps([t.key for t in tensors.values()], protocol=2))
        for t in tensors.values():
            out.write(t.array.size.to_bytes(8, "little"))
            out.write(t.array.tobytes())
    return path
