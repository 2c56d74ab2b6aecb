"""``.npz`` archives read and written by hand: every name round-trips and nothing is trusted.

``np.load`` returns a member that is not ``.npy`` as raw bytes, allocates whatever shape a header
declares, and ``np.savez(file, **arrays)`` swallows a key called ``allow_pickle`` (and ``file``
clashes with its own argument). Here:

* **reading** accepts only ``<key>.npy`` members holding numeric arrays (bool, integer, float,
  complex; no object, string or structured dtypes, so nothing is unpickled); each header's shape
  times item size must equal the member's bytes *before* any data is read;
* **writing** stores every key under ``<key>.npy``, whatever the key is, uncompressed -- the same
  files ``np.savez`` makes, readable by ``np.load``.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .archive import open_archive, read_exactly

NUMERIC_KINDS = "biufc"
_MAX_HEADER = 10_000  # NumPy's own default limit on a .npy header


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
        except ValueError as err:
            raise error(f"{path}: member {name!r} has no valid .npy header ({err})") from None
        shape, fortran_order, dtype = header
        if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.shape:
            raise error(f"{path}: member {name!r} holds dtype {dtype}, not numbers")
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
