"""PyTorch ``.pth`` state dicts, read without PyTorch and without running code from the file.

A ``.pth`` file is a pickle, and unpickling can call any importable function -- so a malicious
file could run code. This reader runs the pickle on :mod:`.unpickler`'s restricted machine, which
admits only the handful of globals a state dict needs (``collections.OrderedDict``, the
``torch._utils._rebuild_tensor*`` functions, the ``torch.*Storage`` types), each mapped to a
stand-in defined here that checks its arguments; everything else is refused with
:class:`WeightsError`.

Both layouts are supported:

* **zip** (``torch.save`` since 1.6): ``<name>/data.pkl`` holds the pickle; each storage is the
  raw bytes of ``<name>/data/<key>`` in the byte order named by ``<name>/byteorder``.
* **legacy** (older ``torch.save``, and e.g. torchvision's ``vgg16-397923af.pth``): one file with
  a magic-number pickle, a protocol-version pickle, a system-info pickle, the object pickle, a
  pickle listing the storage keys, then each storage as an 8-byte element count and its bytes.

Sizes are checked against the file before anything is read: a storage must be exactly as long as
it declares, and a tensor must lie inside its storage. Tensors come back as **read-only views**
of their storage, as PyTorch shares storage between tensors: a tensor referenced 1024 times, or a
stride-0 tensor expanded to a gigabyte, costs no more memory than the storage itself. Copy one
(``np.array(t)``) to get a private, writable array.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .archive import open_archive
from .errors import WeightsError
from .files import open_regular
from .unpickler import BadArguments, describe, load_pickle

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_MAX_DIMENSIONS = 64  # PyTorch's own limit on a tensor's number of dimensions

_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",  # no NumPy dtype: read as raw 16 bits, widened to float32
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "<i1",
    "ByteStorage": "<u1",
    "BoolStorage": "<?",
}


@dataclass(frozen=True, slots=True)
class _StorageType:
    """What ``torch.FloatStorage`` and friends stand for: a name and a dtype, nothing callable."""

    name: str

    def dtype(self, byteorder: str) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name]).newbyteorder(byteorder)


class _Storage:
    """One storage of one load: declared by a persistent id, its bytes attached afterwards."""

    def __init__(self, key: str, storage_type: _StorageType, numel: int) -> None:
        self.key, self.storage_type, self.numel = key, storage_type, numel
        self.data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRecipe:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _check_int(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value < 1 << 62:
        raise BadArguments(f"{what} is {describe(value)}, not a non-negative integer below 2**62")
    return value


def _check_shape(value: Any, what: str) -> tuple[int, ...]:
    if type(value) is not tuple or len(value) > _MAX_DIMENSIONS:
        raise BadArguments(f"{what} is {describe(value)}, not a tuple of at most 64 integers")
    return tuple(_check_int(n, what) for n in value)


def _rebuild_tensor(*args: Any) -> _TensorRecipe:
    """``_rebuild_tensor(storage, offset, size, stride)``; ``_v2`` adds requires_grad, hooks."""
    if len(args) < 4:
        raise BadArguments(f"{len(args)} arguments where a tensor needs at least 4")
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, _Storage):
        raise BadArguments(f"the storage is {describe(storage)}, not a storage")
    offset = _check_int(offset, "the storage offset")
    size, stride = _check_shape(size, "the size"), _check_shape(stride, "the stride")
    if len(size) != len(stride):
        raise BadArguments(f"size {size} and stride {stride} differ in length")
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if end > storage.numel:
        raise BadArguments(
            f"a tensor of size {size}, stride {stride} at offset {offset} reaches element "
            f"{end - 1} of storage {storage.key}, which has {storage.numel}"
        )
    return _TensorRecipe(storage, offset, size, stride)


def _rebuild_parameter(*args: Any) -> _TensorRecipe:
    """``_rebuild_parameter(data, requires_grad, backward_hooks[, state])``: the data."""
    if not args or not isinstance(args[0], _TensorRecipe):
        raise BadArguments("a parameter whose data is not a tensor")
    return args[0]


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    if args:
        raise BadArguments("OrderedDict with arguments (PyTorch passes none)")
    return collections.OrderedDict()


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Loader:
    """The storages of one load, declared by persistent ids and bounded by the bytes available."""

    def __init__(self, path: Path, budget: int, sizes: dict[str, int] | None = None) -> None:
        self.path, self.budget, self.sizes = path, budget, sizes
        self.storages: dict[str, _Storage] = {}

    def persistent_load(self, pid: Any) -> _Storage:
        if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
            raise BadArguments(f"{describe(pid)} is not ('storage', type, key, location, numel)")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise BadArguments(f"storage type {describe(storage_type)} is not a torch storage")
        if type(key) is not str:
            raise BadArguments(f"storage key {describe(key)} is not a string")
        if len(pid) == 6 and pid[5] is not None:
            raise BadArguments(f"storage {key!r} is a view of another storage (unsupported)")
        numel = _check_int(numel, f"the element count of storage {key!r}")
        known = self.storages.get(key)
        if known is not None:
            if known.storage_type != storage_type or known.numel != numel:
                raise BadArguments(f"storage {key!r} is declared twice, differently")
            return known
        nbytes = numel * storage_type.dtype("<").itemsize
        available = self.budget if self.sizes is None else self.sizes.get(key)
        if available is None:
            raise BadArguments(f"storage {key!r} has no data/{key} member in the archive")
        if nbytes > available:
            raise BadArguments(
                f"storage {key!r} declares {numel} elements ({nbytes} bytes) but the file "
                f"holds {available} bytes for it"
            )
        self.storages[key] = storage = _Storage(key, storage_type, numel)
        return storage

    def attach(self, storage: _Storage, raw: Any, byteorder: str) -> None:
        dtype = storage.storage_type.dtype(byteorder)
        data = np.frombuffer(raw, dtype=dtype, count=storage.numel)
        if storage.storage_type.name == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        elif not dtype.isnative:
            data = data.astype(dtype.newbyteorder("="))
        data.flags.writeable = False
        storage.data = data

    def tensor(self, recipe: _TensorRecipe, name: str) -> np.ndarray:
        data = recipe.storage.data
        if data is None:
            raise WeightsError(
                f"{self.path}: tensor {name!r}: storage {recipe.storage.key!r} has no data"
            )
        return np.lib.stride_tricks.as_strided(
            data[recipe.offset :],
            shape=recipe.size,
            strides=tuple(s * data.itemsize for s in recipe.stride),
            writeable=False,
        )


def _state_dict(obj: Any, loader: _Loader) -> dict[str, np.ndarray]:
    """The ``{name: array}`` at the top of the pickle (or under its ``state_dict`` key).

    Only that one dict is looked at -- the reader never walks the rest of what the pickle built,
    however large, deep or cyclic it is. Values that are not tensors (counters, hyperparameters)
    are left out.
    """
    path = loader.path
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds {describe(obj)}, not a state dict")
    arrays = {}
    for key, value in obj.items():
        if isinstance(value, _TensorRecipe):
            if type(key) is not str:
                raise WeightsError(f"{path}: a tensor is stored under {describe(key)}, not a name")
            arrays[key] = loader.tensor(value, key)
    if not arrays:
        raise WeightsError(f"{path}: the state dict holds no tensors")
    return arrays


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with open_archive(path) as archive:
        pickles = [n for n in archive.members if n.endswith("data.pkl") and n.count("/") <= 1]
        if len(pickles) != 1:
            raise WeightsError(f"{path}: a zip file with {len(pickles)} data.pkl records")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "<"
        if f"{prefix}byteorder" in archive.members:
            order = bytes(archive.read(f"{prefix}byteorder", None)).strip()
            if order not in (b"little", b"big"):
                raise WeightsError(f"{path}: byteorder record says {order[:16]!r}")
            byteorder = "<" if order == b"little" else ">"
        data_prefix = f"{prefix}data/"
        sizes = {
            name[len(data_prefix) :]: info.file_size
            for name, info in archive.members.items()
            if name.startswith(data_prefix)
        }
        loader = _Loader(path, budget=0, sizes=sizes)
        source = memoryview(archive.read(pickles[0]))
        obj, _ = load_pickle(source, path, _ALLOWED, loader.persistent_load)
        for key, storage in loader.storages.items():
            nbytes = storage.numel * storage.storage_type.dtype("<").itemsize
            loader.attach(storage, archive.read(f"{data_prefix}{key}", nbytes), byteorder)
        return _state_dict(obj, loader)


def _load_legacy(path: Path) -> dict[str, np.ndarray]:
    with open_regular(path, WeightsError, "weights file") as handle:
        source = memoryview(handle.read())
    loader = _Loader(path, budget=len(source))
    position = 0

    def unpickle() -> Any:
        nonlocal position
        obj, position = load_pickle(source, path, _ALLOWED, loader.persistent_load, position)
        return obj

    magic = unpickle()
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise WeightsError(f"{path}: not a PyTorch file (wrong magic number)")
    version = unpickle()
    if type(version) is not int or version != LEGACY_PROTOCOL:
        raise WeightsError(f"{path}: unsupported legacy PyTorch protocol {describe(version)}")
    unpickle()  # endianness and type sizes: little-endian is assumed, as PyTorch does
    obj = unpickle()
    keys = unpickle()
    if type(keys) is not list or not all(type(k) is str for k in keys):
        raise WeightsError(f"{path}: the storage key list is {describe(keys)}, not a list of names")
    for key in keys:
        storage = loader.storages.get(key)
        if storage is None or storage.data is not None:
            raise WeightsError(f"{path}: storage {key!r} is listed but unknown or listed twice")
        itemsize = storage.storage_type.dtype("<").itemsize
        count = int.from_bytes(source[position : position + 8], "little")
        position += 8
        nbytes = count * itemsize
        if count != storage.numel or position + nbytes > len(source):
            raise WeightsError(
                f"{path}: storage {key!r} declares {count} elements ({nbytes} bytes; "
                f"{storage.numel} in the pickle) but {max(len(source) - position, 0)} bytes "
                "remain in the file"
            )
        loader.attach(storage, source[position : position + nbytes], "<")
        position += nbytes
    return _state_dict(obj, loader)


def is_legacy(head: bytes) -> bool:
    """Whether the first bytes are the pickled legacy magic number."""
    return (
        head[:2] == b"\x80\x02"
        and head[2:3] == b"\x8a"
        and LEGACY_MAGIC.to_bytes(10, "little") in head[:16]
    )


def read_pth(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: read-only ndarray}`` from a PyTorch state-dict file in either layout."""
    path = Path(path)
    with open_regular(path, WeightsError, "weights file") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # (a legacy file's data may contain zip records)
    return _load_zip(path) if is_zip else _load_legacy(path)
