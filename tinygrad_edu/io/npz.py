"""``.npz`` archives read and written by hand: every name round-trips and nothing is trusted.

``np.load`` returns a member that is not ``.npy`` as raw bytes, allocates whatever shape a header
declares, and ``np.savez(file, **arrays)`` swallows a key called ``allow_pickle`` (and ``file``
clashes with its own argument). Here:

* **reading** accepts only ``<key>.npy`` members holding numeric arrays (bool, integer, float,
  complex; no object, string or structured dtypes, so nothing is unpickled); each header's shape
  must be one NumPy can make (:func:`shape_problem`), and its size times the item size must
  equal the member's bytes, *before* any data is read;
* **writing** stores every key under ``<key>.npy``, whatever the key is, uncompressed -- the same
  files ``np.savez`` makes, readable by ``np.load``.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .archive import open_archive, read_exactly

NUMERIC_KINDS = "biufc"
_MAX_HEADER = 10_000  # NumPy's own default limit on a .npy header
#: the most dimensions a NumPy array can have (64 since NumPy 2, 32 before)
MAX_DIMENSIONS = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
_MAX_BYTES = np.iinfo(np.intp).max
#: what NumPy's header parser raises on a damaged header (it tokenizes and evaluates a literal)
_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError, tokenize.TokenError)


def shape_problem(shape: tuple, itemsize: int) -> str | None:
    """Why no NumPy array can have ``shape`` with items of ``itemsize`` bytes, or ``None``.

    A shape is at most :data:`MAX_DIMENSIONS` non-negative integers (not bools) whose product
    of nonzero sizes, in bytes, fits in an ``intp`` (NumPy refuses it even with a zero
    dimension).
    """
    if len(shape) > MAX_DIMENSIONS:
        return f"has {len(shape)} dimensions (NumPy allows at most {MAX_DIMENSIONS})"
    for size in shape:
        if type(size) is not int or size < 0:
            return f"holds {size!r}, not a size (an integer >= 0)"
    if math.prod(size for size in shape if size) * itemsize > _MAX_BYTES:
        return f"is larger than any array can be ({_MAX_BYTES} bytes)"
    return None


def check_key(key: object) -> str:
    """``key`` if it can name a zip member, else :class:`TypeError` / :class:`ValueError`."""
    if not isinstance(key, str):
        raise TypeError(f"save: state dict keys must be strings, got {type(key).__name__}")
    if "\x00" in key:
        raise ValueError(f"save: key {key!r} contains a NUL character, which zip names cannot")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"save: key {key!r} is not encodable as UTF-8") from None
    return key


def write_npz(handle: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to the open binary ``handle``."""
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(check_key(key) + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def read_npz(path: Path, error: type[Exception]) -> dict[str, np.ndarray]:
    """``{key: ndarray}`` from an ``.npz``; anything else raises ``error`` naming the file."""
    arrays = {}
    with open_archive(path, error) as archive:
        for name in archive.members:
            if not name.endswith(".npy"):
                raise error(f"{path}: member {name!r} is not a .npy array")
            arrays[name[: -len(".npy")]] = _read_member(archive, name, error)
    return arrays


def _read_member(archive, name: str, error: type[Exception]) -> np.ndarray:
    path, size = archive.path, archive.check(name).file_size
    with archive.open(name) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_HEADER)
            else:
                raise ValueError(f".npy format version {version} is not supported")
        except _HEADER_ERRORS as err:
            raise error(f"{path}: member {name!r} has no valid .npy header ({err})") from None
        shape, fortran_order, dtype = header
        if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.shape:
            raise error(f"{path}: member {name!r} holds dtype {dtype}, not numbers")
        problem = shape_problem(shape, dtype.itemsize)
        if problem:
            raise error(f"{path}: member {name!r} declares shape {shape}, which {problem}")
        nbytes = math.prod(shape) * dtype.itemsize
        remaining = size - stream.tell()
        if nbytes != remaining:
            raise error(
                f"{path}: member {name!r} declares shape {shape} of {dtype} ({nbytes} bytes) but "
                f"holds {remaining} bytes of data"
            )
        buffer = read_exactly(stream, nbytes, error, path, name)
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape, order="F" if fortran_order else "C")
