"""PyTorch ``.pth`` state dicts, read without PyTorch and without running code from the file.

A ``.pth`` file is a pickle, and unpickling can call any importable function -- so a malicious
file could run code. This reader uses a restricted unpickler that admits only the handful of
globals a state dict needs (``collections.OrderedDict``, the ``torch._utils._rebuild_tensor*``
functions, the ``torch.*Storage`` types), maps each to a harmless stand-in defined here, and
refuses everything else with :class:`WeightsError`.

Both layouts are supported:

* **zip** (``torch.save`` since 1.6): ``<name>/data.pkl`` holds the pickle; each storage is the
  raw little-endian bytes of ``<name>/data/<key>``.
* **legacy** (older ``torch.save``, and e.g. torchvision's ``vgg16-397923af.pth``): one file with
  a magic-number pickle, a protocol-version pickle, a system-info pickle, the object pickle, a
  pickle listing the storage keys, then each storage as an 8-byte element count and its bytes.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import WeightsError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",  # no NumPy dtype: widened to float32 on load
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> Any:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    """A storage named in the pickle; its bytes are attached once they have been read."""

    key: str
    storage_type: _StorageType
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRecipe:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRecipe:
    return _TensorRecipe(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored):
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, path: Path, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.path, self.storages = path, storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise WeightsError(
                f"{self.path}: refused to load '{module}.{name}' -- a state dict needs only "
                "tensors and OrderedDict, so this file is not a plain state dict (or is "
                "malicious); nothing from it was executed"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightsError(f"{self.path}: unexpected persistent id {pid!r} in the pickle")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(f"{self.path}: storage {key!r} has no known storage type")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type, int(numel))
        return self.storages[key]


def _bytes_to_array(raw: bytes, storage: _Storage, path: Path) -> np.ndarray:
    dtype = storage.storage_type.dtype
    if dtype == "bfloat16":
        needed = storage.numel * 2
        if len(raw) < needed:
            raise WeightsError(f"{path}: storage {storage.key} is truncated")
        halves = np.frombuffer(raw[:needed], dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32)
    dtype = np.dtype(dtype).newbyteorder("<")
    needed = storage.numel * dtype.itemsize
    if len(raw) < needed:
        raise WeightsError(
            f"{path}: storage {storage.key} holds {len(raw)} bytes, {needed} expected (truncated?)"
        )
    return np.frombuffer(raw[:needed], dtype=dtype).astype(dtype.newbyteorder("="))


def _materialise(obj: Any, path: Path) -> Any:
    """Replace every tensor recipe by a NumPy array (bounds-checked against its storage)."""
    if isinstance(obj, _TensorRecipe):
        data = obj.storage.data
        if data is None:
            raise WeightsError(f"{path}: the bytes of storage {obj.storage.key} are missing")
        last = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride) if n > 0)
        if (
            obj.offset < 0
            or any(s < 0 for s in obj.stride)
            or (all(obj.size) and last >= len(data))
        ):
            raise WeightsError(
                f"{path}: a tensor of size {obj.size} reaches outside its storage {obj.storage.key}"
            )
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[obj.offset :] if data.size else data,
            shape=obj.size,
            strides=tuple(s * itemsize for s in obj.stride),
            writeable=False,
        )
        return np.array(view)
    if isinstance(obj, dict):
        return {key: _materialise(value, path) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(value, path) for value in obj)
    return obj


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pickles:
            raise WeightsError(f"{path}: a zip file without data.pkl is not a PyTorch file")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path, storages).load()
        for key, storage in storages.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise WeightsError(
                    f"{path}: storage data/{key} is missing from the archive"
                ) from None
            storage.data = _bytes_to_array(raw, storage, path)
    return _materialise(obj, path)


def _load_legacy(path: Path) -> Any:
    with open(path, "rb") as handle:
        storages: dict[str, _Storage] = {}

        def unpickle() -> Any:
            return _RestrictedUnpickler(handle, path, storages).load()

        if unpickle() != LEGACY_MAGIC:
            raise WeightsError(f"{path}: not a PyTorch file (wrong magic number)")
        if unpickle() != LEGACY_PROTOCOL:
            raise WeightsError(f"{path}: unsupported legacy PyTorch protocol version")
        unpickle()  # system info: endianness and type sizes
        obj = unpickle()
        keys = unpickle()
        for key in keys:
            storage = storages.get(str(key))
            header = handle.read(8)
            if storage is None or len(header) < 8:
                raise WeightsError(f"{path}: storage {key} is missing or the file is truncated")
            count = int.from_bytes(header, "little")
            itemsize = (
                2
                if storage.storage_type.dtype == "bfloat16"
                else np.dtype(storage.storage_type.dtype).itemsize
            )
            storage.numel = count
            storage.data = _bytes_to_array(handle.read(count * itemsize), storage, path)
    return _materialise(obj, path)


def _state_dict(obj: Any, path: Path) -> dict[str, np.ndarray]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    arrays = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not arrays:
        raise WeightsError(f"{path}: the state dict holds no tensors")
    return arrays


def is_legacy(head: bytes) -> bool:
    """Whether the first bytes are the pickled legacy magic number."""
    return (
        head[:2] == b"\x80\x02"
        and head[2:3] == b"\x8a"
        and LEGACY_MAGIC.to_bytes(10, "little") in head[:16]
    )


def read_pth(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: ndarray}`` from a PyTorch state-dict file in either layout."""
    path = Path(path)
    loader: Callable[[Path], Any] = _load_zip if zipfile.is_zipfile(path) else _load_legacy
    try:
        return _state_dict(loader(path), path)
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError) as err:
        raise WeightsError(
            f"{path}: not a readable PyTorch file ({type(err).__name__}: {err})"
        ) from None
